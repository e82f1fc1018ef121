// The block store against the real MinIO (round trips, streaming, hash verification, temporary
// credentials from MinIO's own STS), and against a small local HTTP server for what MinIO
// cannot be made to do: answer SlowDown, 503 and 500, refuse rotated credentials, serve
// virtual-hosted addressing.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, LookupFunction } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { parseXml, XmlElement } from '@rgrove/parse-xml';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { BlockStore, BlockStoreError, blockKey, uploadTagHeader, type BlockStoreOptions } from './block-store.ts';
import { BlockHashMismatchError } from './hash-verifier.ts';
import { emptyPayloadSha256, S3Signer } from './s3-signing.ts';
import { minioClient } from '../../../e2e/harness/stack.ts';

const stack = inject('stack');
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('BlockStore on MinIO', () => {
  const minio = stack.minio;
  const options: BlockStoreOptions = {
    endpoint: new URL(minio.endpoint),
    bucket: minio.bucket,
    region: 'us-east-1',
    accessKey: minio.accessKey,
    secretKey: minio.secretKey,
  };
  const store = new BlockStore(options);

  it('round-trips a 4 MiB block streamed in small chunks, and knows its size', async () => {
    const block = randomBytes(4 * 1024 * 1024);
    const chunks = Array.from({ length: block.length / 65536 }, (_, i) => block.subarray(i * 65536, (i + 1) * 65536));
    await store.ping();
    expect(await new BlockStore(options).sizeOf(sha(block))).toBeUndefined();
    await store.put(sha(block), block.length, Readable.from(chunks));
    // A fresh store does not know the block: the size comes from a HEAD.
    expect(await new BlockStore(options).sizeOf(sha(block))).toBe(block.length);
    expect((await readAll((await store.read(sha(block))).body)).equals(block)).toBe(true);
  });

  it('refuses a body that does not hash to its name, and stores nothing under that name', async () => {
    const claimed = randomBytes(1000);
    const sent = randomBytes(1000);
    await expect(store.put(sha(claimed), sent.length, Readable.from([sent]))).rejects.toBeInstanceOf(BlockHashMismatchError);
    expect(await new BlockStore(options).sizeOf(sha(claimed))).toBeUndefined();
    await expect(store.read(sha(claimed))).rejects.toThrow(/missing from the store/);
  });

  it('keeps the sha256 as the checksum of what it stores, and a read is store-checked only when that names the block (ADR 77)', async () => {
    const block = randomBytes(100_000);
    await store.put(sha(block), block.length, Readable.from([block]));
    const read = await store.read(sha(block));
    expect(read.storeChecked).toBe(true);
    expect((await readAll(read.body)).equals(block)).toBe(true);
    // Asked to hash every read, the store does not ask S3 for the checksum.
    const hashing = await new BlockStore({ ...options, readCheck: 'hash' }).read(sha(block));
    expect(hashing.storeChecked).toBe(false);
    expect((await readAll(hashing.body)).equals(block)).toBe(true);

    // Other bytes put under the block's key behind the partition's back: without a checksum,
    // and with a checksum that is right for them but does not name the block.
    const other = randomBytes(block.length);
    const s3 = minioClient(stack);
    await s3.putObject(minio.bucket, blockKey(sha(block)), other, other.length);
    expect((await store.read(sha(block))).storeChecked).toBe(false);
    await s3.putObject(minio.bucket, blockKey(sha(block)), other, other.length, {
      'x-amz-checksum-sha256': createHash('sha256').update(other).digest('base64'),
    });
    const overwritten = await store.read(sha(block));
    expect(overwritten.body).toBeDefined();
    expect(overwritten.storeChecked).toBe(false);
    overwritten.body.destroy();
  });

  it('presigns a PUT that the store takes only with the right bytes, length and tag, and describes what it then holds (ADR 80)', async () => {
    const block = randomBytes(256 * 1024);
    const name = sha(block);
    const put = await store.presignedPut(name, block.length, 'tag-a', new URL(minio.endpoint), 60);
    expect(Object.keys(put.headers).sort()).toEqual(['x-amz-checksum-sha256', uploadTagHeader]);
    expect(await store.describe(name)).toBeUndefined();
    // Other bytes of the same length: the store refuses them against the signed checksum.
    const other = randomBytes(block.length);
    const wrong = await fetch(put.url, { method: 'PUT', headers: put.headers, body: other });
    expect([wrong.status, await wrong.text()]).toEqual([400, expect.stringContaining('<Code>XAmzContentChecksumMismatch</Code>')]);
    // Without the tag header, or with another tag: the signature does not hold.
    const refused = expect.stringMatching(/<Code>(AccessDenied|SignatureDoesNotMatch|InvalidArgument|InvalidRequest)<\/Code>/) as unknown;
    const untagged = await fetch(put.url, {
      method: 'PUT',
      headers: { 'x-amz-checksum-sha256': put.headers['x-amz-checksum-sha256']! },
      body: block,
    });
    expect([untagged.status, await untagged.text()]).toEqual([400, refused]);
    const retagged = await fetch(put.url, { method: 'PUT', headers: { ...put.headers, [uploadTagHeader]: 'tag-b' }, body: block });
    expect([retagged.status, await retagged.text()]).toEqual([403, refused]);
    // A longer body (the block and more): its length is signed.
    const longer = await fetch(put.url, { method: 'PUT', headers: put.headers, body: Buffer.concat([block, Buffer.alloc(1)]) });
    expect([longer.status, await longer.text()]).toEqual([403, refused]);
    expect(await store.describe(name)).toBeUndefined();
    const ok = await fetch(put.url, { method: 'PUT', headers: put.headers, body: block });
    expect(ok.status).toBe(200);
    expect(await store.describe(name)).toEqual({ size: block.length, storeChecked: true, uploadTag: 'tag-a' });
    // A block the partition writes itself carries no tag.
    const own = randomBytes(1000);
    await store.put(sha(own), own.length, Readable.from([own]));
    expect(await store.describe(sha(own))).toEqual({ size: own.length, storeChecked: true, uploadTag: undefined });
  });

  it('says which bucket does not exist', async () => {
    await expect(new BlockStore({ ...options, bucket: 'no-such-bucket' }).ping()).rejects.toThrow('bucket no-such-bucket does not exist');
  });

  it('reads S3 error XML from MinIO: a wrong secret is SignatureDoesNotMatch', async () => {
    const wrong = new BlockStore({ ...options, secretKey: 'not-the-secret-key' });
    const failure = await wrong.read(sha(randomBytes(8))).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(BlockStoreError);
    expect((failure as BlockStoreError).s3).toMatchObject({ status: 403, code: 'SignatureDoesNotMatch' });
  });

  it('signs with temporary credentials and their session token (from MinIO’s STS AssumeRole)', async () => {
    const temporary = await assumeRole(minio);
    const block = randomBytes(1024);
    const withToken = new BlockStore({ ...options, ...temporary });
    await withToken.put(sha(block), block.length, Readable.from([block]));
    expect((await readAll((await withToken.read(sha(block))).body)).equals(block)).toBe(true);
    // The same key pair without its token is refused: the token was sent and checked.
    const withoutToken = new BlockStore({ ...options, ...temporary, sessionToken: undefined });
    await expect(withoutToken.read(sha(block))).rejects.toMatchObject({ s3: { status: 403 } });
  });
});

/** Temporary credentials from MinIO's STS (AssumeRole, signed with the root credentials). */
async function assumeRole(minio: typeof stack.minio): Promise<{ accessKey: string; secretKey: string; sessionToken: string }> {
  const url = new URL(minio.endpoint);
  const body = 'Action=AssumeRole&Version=2011-06-15&DurationSeconds=900';
  const signer = new SignatureV4({
    service: 'sts',
    region: 'us-east-1',
    credentials: { accessKeyId: minio.accessKey, secretAccessKey: minio.secretKey },
    sha256: Hash.bind(null, 'sha256'),
  });
  const signed = await signer.sign({
    method: 'POST',
    protocol: 'http:',
    hostname: url.hostname,
    path: '/',
    query: {},
    headers: { host: url.host, 'content-type': 'application/x-www-form-urlencoded' },
    body,
  });
  const res = await fetch(minio.endpoint, { method: 'POST', headers: signed.headers, body });
  const text = await res.text();
  expect(res.status, text).toBe(200);
  const find = (node: XmlElement, name: string): string | undefined => {
    for (const child of node.children) {
      if (!(child instanceof XmlElement)) continue;
      const found = child.name === name ? child.text : find(child, name);
      if (found !== undefined) return found;
    }
    return undefined;
  };
  const root = parseXml(text).root!;
  const [accessKey, secretKey, sessionToken] = ['AccessKeyId', 'SecretAccessKey', 'SessionToken'].map((name) => find(root, name));
  if (accessKey === undefined || secretKey === undefined || sessionToken === undefined)
    throw new Error(`AssumeRole answered without credentials: ${text}`);
  return { accessKey, secretKey, sessionToken };
}

/** What the local server saw of one request. */
interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

/** A local S3 stand-in: each request is answered by `answer`, and recorded. */
class FakeS3 {
  readonly seen: Seen[] = [];
  answer: (req: Seen, res: ServerResponse) => void = (_req, res) => res.writeHead(200, { 'content-length': '0' }).end();
  readonly #server: Server;

  constructor() {
    this.#server = createServer((req, res) => {
      const seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers };
      this.seen.push(seen);
      req.resume();
      req.once('end', () => this.answer(seen, res));
    });
  }

  async start(): Promise<URL> {
    this.#server.listen(0, '127.0.0.1');
    await once(this.#server, 'listening');
    return new URL(`http://localhost:${(this.#server.address() as AddressInfo).port}`);
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    this.#server.close();
    await once(this.#server, 'close');
  }
}

function s3Error(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>r1</RequestId></Error>`;
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body), ...headers }).end(body);
}

const accessKeyOf = (seen: Seen): string | undefined => /Credential=([^/]+)\//.exec(seen.headers.authorization ?? '')?.[1];

describe('BlockStore against a local S3 stand-in', () => {
  const fake = new FakeS3();
  let endpoint: URL;
  let options: BlockStoreOptions;
  const dirs: string[] = [];

  beforeAll(async () => {
    endpoint = await fake.start();
    // Short waits: the policy is what is tested, not the defaults' lengths.
    options = { endpoint, bucket: 'blocks-test', region: 'us-east-1', accessKey: 'AK1', secretKey: 'SK1', retry: { baseDelayMs: 5 } };
  });
  afterEach(() => {
    fake.seen.length = 0;
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  afterAll(() => fake.stop());

  it('repeats a HEAD answered SlowDown and 503 until it succeeds', async () => {
    const answers = [
      (res: ServerResponse) => s3Error(res, 503, 'SlowDown', 'Please reduce your request rate.'),
      (res: ServerResponse) => res.writeHead(503, { 'content-length': '0' }).end(),
      (res: ServerResponse) => res.writeHead(200, { 'content-length': '1234' }).end(),
    ];
    fake.answer = (_req, res) => answers.shift()!(res);
    expect(await new BlockStore(options).sizeOf('a'.repeat(64))).toBe(1234);
    expect(fake.seen.map((s) => s.method)).toEqual(['HEAD', 'HEAD', 'HEAD']);
  });

  it('repeats a GET answered 500 InternalError, then streams the body of the answer that worked', async () => {
    const answers = [
      (res: ServerResponse) => s3Error(res, 500, 'InternalError', 'We encountered an internal error. Please try again.'),
      (res: ServerResponse) => res.writeHead(200, { 'content-length': '5' }).end('hello'),
    ];
    fake.answer = (_req, res) => answers.shift()!(res);
    expect((await readAll((await new BlockStore(options).read('b'.repeat(64))).body)).toString()).toBe('hello');
    expect(fake.seen).toHaveLength(2);
  });

  it('gives up after its attempts with what S3 said, XML entities decoded', async () => {
    fake.answer = (_req, res) => s3Error(res, 503, 'SlowDown', 'rate &lt; limit &amp; more');
    const failure = await new BlockStore({ ...options, retry: { attempts: 3, baseDelayMs: 5 } })
      .read('c'.repeat(64))
      .catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(BlockStoreError);
    expect((failure as BlockStoreError).s3).toEqual({ status: 503, code: 'SlowDown', message: 'rate < limit & more', requestId: 'r1' });
    expect((failure as BlockStoreError).message).toContain('503 SlowDown: rate < limit & more');
    expect(fake.seen).toHaveLength(3);
  });

  it('waits for Retry-After before repeating', async () => {
    const answers = [
      (res: ServerResponse) => s3Error(res, 503, 'SlowDown', 'later', { 'retry-after': '1' }),
      (res: ServerResponse) => res.writeHead(200, { 'content-length': '1' }).end(),
    ];
    fake.answer = (_req, res) => answers.shift()!(res);
    const started = performance.now();
    await new BlockStore(options).sizeOf('d'.repeat(64));
    expect(performance.now() - started).toBeGreaterThanOrEqual(1000);
    expect(fake.seen).toHaveLength(2);
  });

  it.each([
    [400, 'InvalidRequest'],
    [500, 'NotImplemented'],
    [403, 'AccessDenied'],
  ])('does not repeat %d %s', async (status, code) => {
    fake.answer = (_req, res) => s3Error(res, status, code, 'no');
    await expect(new BlockStore(options).read('e'.repeat(64))).rejects.toMatchObject({ s3: { status, code } });
    expect(fake.seen).toHaveLength(1);
  });

  it('tries a PUT once (its body is not kept) and reports SlowDown', async () => {
    fake.answer = (_req, res) => s3Error(res, 503, 'SlowDown', 'slow');
    const block = randomBytes(100);
    await expect(new BlockStore(options).put(sha(block), block.length, Readable.from([block]))).rejects.toMatchObject({
      s3: { status: 503, code: 'SlowDown' },
    });
    expect(fake.seen.map((s) => s.method)).toEqual(['PUT']);
  });

  it('sends the session token, signed', async () => {
    fake.answer = (_req, res) => res.writeHead(200, { 'content-length': '3' }).end();
    await new BlockStore({ ...options, sessionToken: 'token-1' }).sizeOf('f'.repeat(64));
    expect(fake.seen[0]!.headers['x-amz-security-token']).toBe('token-1');
    expect(fake.seen[0]!.headers.authorization).toMatch(/SignedHeaders=[^,]*x-amz-security-token/);
  });

  it('re-reads rotated credential files when S3 refuses the old key, and repeats the request once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshwork-s3-rotation-'));
    dirs.push(dir);
    const write = (name: string, value: string): string => {
      writeFileSync(join(dir, `${name}.new`), value);
      renameSync(join(dir, `${name}.new`), join(dir, name));
      return join(dir, name);
    };
    const files = { accessKey: write('access', 'AK1'), secretKey: write('secret', 'SK1'), sessionToken: write('token', 'T1') };
    let valid = { key: 'AK1', token: 'T1' };
    fake.answer = (req, res) => {
      if (accessKeyOf(req) !== valid.key) s3Error(res, 403, 'InvalidAccessKeyId', 'The access key does not exist.');
      else if (req.headers['x-amz-security-token'] !== valid.token) s3Error(res, 403, 'ExpiredToken', 'The provided token has expired.');
      else res.writeHead(200, { 'content-length': '7' }).end('content');
    };
    const store = new BlockStore({ ...options, accessKey: 'AK1', secretKey: 'SK1', sessionToken: 'T1', credentialFiles: files });
    expect((await readAll((await store.read('1'.repeat(64))).body)).toString()).toBe('content');

    // The key is rotated: S3 refuses the old one, the files hold the new one.
    valid = { key: 'AK2', token: 'T2' };
    write('access', 'AK2');
    write('secret', 'SK2');
    write('token', 'T2');
    fake.seen.length = 0;
    expect((await readAll((await store.read('2'.repeat(64))).body)).toString()).toBe('content');
    expect(fake.seen.map(accessKeyOf).at(-1)).toBe('AK2');
    expect(fake.seen.at(-1)!.headers['x-amz-security-token']).toBe('T2');

    // Only the token expires and is renewed: ExpiredToken, then the new token.
    valid = { key: 'AK2', token: 'T3' };
    write('token', 'T3');
    fake.seen.length = 0;
    expect((await readAll((await store.read('3'.repeat(64))).body)).toString()).toBe('content');
    expect(fake.seen.at(-1)!.headers['x-amz-security-token']).toBe('T3');
    expect(fake.seen.length).toBeLessThanOrEqual(2);

    // Refused while the files hold nothing newer: one more look at them, no loop.
    valid = { key: 'AK3', token: 'T3' };
    fake.seen.length = 0;
    await expect(store.read('4'.repeat(64))).rejects.toMatchObject({ s3: { status: 403, code: 'InvalidAccessKeyId' } });
    expect(fake.seen).toHaveLength(1);
  });

  it('addresses the bucket as a virtual host when asked, and signs that host', async () => {
    const resolved: string[] = [];
    const lookup = ((
      hostname: string,
      lookupOptions: { all?: boolean },
      callback: (err: null, address: unknown, family?: number) => void,
    ) => {
      resolved.push(hostname);
      // Node asks for every address (happy eyeballs) or for one.
      if (lookupOptions.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
      else callback(null, '127.0.0.1', 4);
    }) as LookupFunction;
    fake.answer = (_req, res) => res.writeHead(200, { 'content-length': '9' }).end();
    const store = new BlockStore({ ...options, addressing: 'virtual', lookup });
    await store.ping();
    expect(await store.sizeOf('a'.repeat(64))).toBe(9);
    expect(resolved).toContain('blocks-test.localhost');
    expect(fake.seen.map((s) => [s.headers.host, s.url])).toEqual([
      [`blocks-test.localhost:${endpoint.port}`, '/'],
      [`blocks-test.localhost:${endpoint.port}`, `/${blockKey('a'.repeat(64))}`],
    ]);
    // The signature covers the virtual host: signing the same request again gives the same header.
    const seen = fake.seen[1]!;
    const again = await new S3Signer('us-east-1', () => Promise.resolve({ accessKeyId: 'AK1', secretAccessKey: 'SK1' })).sign(
      {
        method: 'HEAD',
        hostname: 'blocks-test.localhost',
        path: seen.url,
        headers: { host: seen.headers.host!, 'x-amz-content-sha256': emptyPayloadSha256 },
      },
      new Date(String(seen.headers['x-amz-date']).replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z')),
    );
    expect(seen.headers.authorization).toBe(again.authorization);
  });

  it('uses path-style addressing by default', async () => {
    fake.answer = (_req, res) => res.writeHead(200, { 'content-length': '9' }).end();
    await new BlockStore(options).sizeOf('a'.repeat(64));
    expect(fake.seen.map((s) => [s.headers.host, s.url])).toEqual([
      [`localhost:${endpoint.port}`, `/blocks-test/${blockKey('a'.repeat(64))}`],
    ]);
  });
});
