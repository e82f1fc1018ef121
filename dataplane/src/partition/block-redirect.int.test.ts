// Block downloads redirected to the store (ADR 71): with MESHWORK_S3_DOWNLOAD_REDIRECT_ENDPOINT
// set, `GET /v1/blocks/{sha256}` checks the caller exactly as before and then answers `307` to a
// presigned URL at that address, so the bytes come from the store, not through the partition.
// Against a real partition process, etcd and MinIO (the URL is used against MinIO itself).
import { createHash, randomBytes } from 'node:crypto';
import { Agent } from 'node:http';
import { Writable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, MeshworkClient } from '@meshwork/client';
import { downloadBlocksToStream, nodeHttpFetch } from '@meshwork/client/node';
import { S3Signer } from '../stores/s3-signing.ts';
import { startEtcd, type EtcdServer } from '../../../e2e/harness/etcd.ts';
import { startMinio, type MinioServer } from '../../../e2e/harness/minio.ts';
import { startPartition, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';

let etcd: EtcdServer;
let minio: MinioServer;
let partition: RunningPartition;
let alice: MeshworkClient;
let aliceToken: string;
let bob: MeshworkClient;
const agent = new Agent({ keepAlive: true });
const data = randomBytes(300_000);
let sha256: string;

beforeAll(async () => {
  [etcd, minio] = await Promise.all([startEtcd({ name: 'etcd-redirect' }), startMinio({ bucket: 'redirect' })]);
  partition = await startPartition(
    { etcdEndpoint: etcd.endpoint, minio },
    {
      partition: 'redirect',
      slots: '0-4095',
      env: { MESHWORK_S3_DOWNLOAD_REDIRECT_ENDPOINT: minio.endpoint, MESHWORK_S3_DOWNLOAD_REDIRECT_SECONDS: '120' },
    },
  );
  const admin = new MeshworkClient({ baseUrl: partition.url, token: partition.adminToken });
  aliceToken = (await admin.createUser('alice')).token;
  alice = admin.as(aliceToken);
  bob = admin.as((await admin.createUser('bob')).token);
  sha256 = (await alice.putBlock(data)).sha256;
});

afterAll(async () => {
  agent.destroy();
  await partition?.stop();
  await Promise.all([etcd?.stop(), minio?.stop()]);
});

const blockUrl = (sha: string): string => `${partition.url}/v1/blocks/${sha}`;

/** A URL at which MinIO takes a PUT of `key` carrying `x-amz-checksum-sha256: checksum` (it checks the body against it and keeps it). */
async function presignedPut(key: string, checksum: string): Promise<URL> {
  const signer = new S3Signer('us-east-1', () => Promise.resolve({ accessKeyId: minio.accessKey, secretAccessKey: minio.secretKey }));
  const host = `${minio.host}:${minio.port}`;
  const path = `/${minio.bucket}/${key}`;
  const query = await signer.presign(
    { method: 'PUT', hostname: minio.host, host, path, headers: { 'x-amz-checksum-sha256': checksum } },
    60,
  );
  return new URL(`${minio.endpoint}${path}?${query.toString()}`);
}

describe('block downloads redirected to the store', () => {
  it('answers 307 to a presigned URL at the configured address that nobody may cache', async () => {
    const res = await fetch(blockUrl(sha256), { headers: { authorization: `Bearer ${aliceToken}` }, redirect: 'manual' });
    expect(res.status).toBe(307);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('etag')).toBeNull();
    const location = new URL(res.headers.get('location')!);
    expect(location.origin).toBe(minio.endpoint);
    expect(location.pathname).toBe(`/${minio.bucket}/blocks/${sha256}`);
    expect(location.searchParams.get('X-Amz-Expires')).toBe('120');
    expect(location.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
    // The URL alone is enough: no credentials of any kind go to the store.
    const direct = await fetch(location);
    expect(direct.status).toBe(200);
    expect(Buffer.from(await direct.arrayBuffer()).equals(data)).toBe(true);
  });

  it('is a URL for that block only: another key under the same signature is refused by the store', async () => {
    const other = (await alice.putBlock(randomBytes(1000))).sha256;
    const res = await fetch(blockUrl(sha256), { headers: { authorization: `Bearer ${aliceToken}` }, redirect: 'manual' });
    const forged = new URL(res.headers.get('location')!);
    forged.pathname = `/${minio.bucket}/blocks/${other}`;
    expect((await fetch(forged)).status).toBe(403);
  });

  it('signs the URL for x-amz-checksum-mode when the request carries it: the store then names the checksum it kept', async () => {
    const asked = await fetch(blockUrl(sha256), {
      headers: { authorization: `Bearer ${aliceToken}`, 'x-amz-checksum-mode': 'ENABLED' },
      redirect: 'manual',
    });
    expect(asked.status).toBe(307);
    const location = new URL(asked.headers.get('location')!);
    expect(location.searchParams.get('X-Amz-SignedHeaders')).toBe('host;x-amz-checksum-mode');
    const withHeader = await fetch(location, { headers: { 'x-amz-checksum-mode': 'ENABLED' } });
    expect(withHeader.status).toBe(200);
    expect(withHeader.headers.get('x-amz-checksum-sha256')).toBe(Buffer.from(sha256, 'hex').toString('base64'));
    expect(Buffer.from(await withHeader.arrayBuffer()).equals(data)).toBe(true);
    // The header is part of the signature: the URL is refused without it (MinIO: 400, a signed header missing).
    const without = await fetch(location);
    expect(without.status).toBeGreaterThanOrEqual(400);
    expect(without.status).toBeLessThan(500);
    expect(Buffer.from(await without.arrayBuffer()).equals(data)).toBe(false);
    // fetch keeps the header across the redirect.
    const followed = await fetch(blockUrl(sha256), {
      headers: { authorization: `Bearer ${aliceToken}`, 'x-amz-checksum-mode': 'ENABLED' },
    });
    expect(followed.status).toBe(200);
    expect(followed.headers.get('x-amz-checksum-sha256')).toBe(Buffer.from(sha256, 'hex').toString('base64'));
    await followed.body?.cancel();
    // Any other value is not the store's: the URL is signed for host only.
    const other = await fetch(blockUrl(sha256), {
      headers: { authorization: `Bearer ${aliceToken}`, 'x-amz-checksum-mode': 'enabled' },
      redirect: 'manual',
    });
    expect(new URL(other.headers.get('location')!).searchParams.get('X-Amz-SignedHeaders')).toBe('host');
  });

  it('is followed by the client, over the global fetch and over nodeHttpFetch, with the same bytes', async () => {
    expect(Buffer.from(await alice.getBlock(sha256)).equals(data)).toBe(true);
    const pooled = new MeshworkClient({ baseUrl: partition.url, token: aliceToken, fetch: nodeHttpFetch(agent) });
    expect(Buffer.from(await pooled.getBlock(sha256)).equals(data)).toBe(true);
  });

  it('checks the caller first: no redirect for a block the caller does not possess', async () => {
    const err = await bob.getBlock(sha256).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(404);
    const raw = await fetch(blockUrl(sha256), { redirect: 'manual' });
    expect(raw.status).toBe(401);
    expect(raw.headers.get('location')).toBeNull();
  });

  it('still answers HEAD and a matching If-None-Match itself', async () => {
    const head = await fetch(blockUrl(sha256), { method: 'HEAD', headers: { authorization: `Bearer ${aliceToken}` }, redirect: 'manual' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(data.length));
    const etag = head.headers.get('etag')!;
    const cached = await fetch(blockUrl(sha256), {
      headers: { authorization: `Bearer ${aliceToken}`, 'if-none-match': etag },
      redirect: 'manual',
    });
    expect(cached.status).toBe(304);
  });

  it('lets a client read a whole file block by block from the store, checking every block', async () => {
    const pooled = new MeshworkClient({ baseUrl: partition.url, token: aliceToken, fetch: nodeHttpFetch(agent) });
    const objectId = (await pooled.createObject({ name: 'Files' })).id;
    const parts = [randomBytes(200_000), randomBytes(150_000), randomBytes(1)];
    const refs = [];
    for (const part of parts) refs.push(await pooled.putBlock(part));
    await pooled.putEntry(objectId, 'three.bin', { kind: 'file', blocks: refs }, { ifNoneMatch: '*' });
    const answer = await pooled.getEntry(objectId, 'three.bin');
    if (answer.notModified) throw new Error('unexpected 304');
    const collect = (): { sink: Writable; bytes: () => Buffer } => {
      const chunks: Buffer[] = [];
      const sink = new Writable({
        write(chunk: Buffer, _e, done) {
          chunks.push(chunk);
          done();
        },
      });
      return { sink, bytes: () => Buffer.concat(chunks) };
    };
    const blocks = answer.entry.blocks ?? [];
    // By default the store vouches for every block (it checked each one's checksum when it was written).
    const whole = collect();
    expect(await downloadBlocksToStream(pooled, blocks, whole.sink)).toEqual({ bytes: 350_001, storeChecked: 3 });
    expect(whole.bytes().equals(Buffer.concat(parts))).toBe(true);
    expect(whole.sink.writableFinished).toBe(true);
    // With `hash`, the client hashes every block itself.
    const hashed = collect();
    expect(await downloadBlocksToStream(pooled, blocks, hashed.sink, { check: 'hash' })).toEqual({ bytes: 350_001, storeChecked: 0 });
    expect(hashed.bytes().equals(Buffer.concat(parts))).toBe(true);

    // The store's copy of the second block changes underneath, written with no checksum: the
    // store vouches for nothing, so the client hashes the block, notices and stops.
    await minio.client().putObject(minio.bucket, `blocks/${refs[1]!.sha256}`, randomBytes(150_000));
    for (const check of ['store', 'hash'] as const) {
      const broken = collect();
      await expect(downloadBlocksToStream(pooled, blocks, broken.sink, { check })).rejects.toThrow(/do not hash to its name/);
      expect(broken.sink.destroyed).toBe(true);
      expect(broken.bytes().length).toBeLessThanOrEqual(350_000);
    }
  });

  it('hashes a block the store keeps another checksum for: another object under the block key is noticed', async () => {
    const pooled = new MeshworkClient({ baseUrl: partition.url, token: aliceToken, fetch: nodeHttpFetch(agent) });
    const objectId = (await pooled.createObject({ name: 'Swapped' })).id;
    const ref = await pooled.putBlock(randomBytes(100_000));
    await pooled.putEntry(objectId, 'one.bin', { kind: 'file', blocks: [ref] }, { ifNoneMatch: '*' });
    // Other bytes of the same size, stored with a correct checksum of their own.
    const other = randomBytes(100_000);
    const otherChecksum = createHash('sha256').update(other).digest('base64');
    const stored = await fetch(await presignedPut(`blocks/${ref.sha256}`, otherChecksum), {
      method: 'PUT',
      headers: { 'x-amz-checksum-sha256': otherChecksum },
      body: other,
    });
    expect(stored.status).toBe(200);
    const sink = new Writable({ write: (_c, _e, done) => done() });
    await expect(downloadBlocksToStream(pooled, [ref], sink)).rejects.toThrow(/do not hash to its name/);
  });
});

describe('block locations (ADR 79)', () => {
  /** A client over nodeHttpFetch that records each request it sends (method, origin and path), and may change a request's URL first. */
  function recordingClient(rewrite: (url: URL) => URL = (u) => u): { client: MeshworkClient; sent: string[] } {
    const sent: string[] = [];
    const inner = nodeHttpFetch(agent);
    const recording: typeof fetch = (input, init) => {
      const url = rewrite(new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url));
      sent.push(`${init?.method ?? 'GET'} ${url.origin === minio.endpoint ? 'store' : 'partition'} ${url.pathname}`);
      return inner(url, init);
    };
    return { client: new MeshworkClient({ baseUrl: partition.url, token: aliceToken, fetch: recording }), sent };
  }

  it('answers a presigned URL for each block the caller may read, and names the others unreadable', async () => {
    const absent = 'f'.repeat(64);
    const before = Date.now();
    const res = await fetch(`${partition.url}/v1/blocks/locations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${aliceToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ blocks: [sha256, absent, sha256] }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const answer = (await res.json()) as {
      blocks: { sha256: string; size: number; url: string }[];
      unreadable: string[];
      expiresAt: string;
    };
    expect(answer.unreadable).toEqual([absent]);
    expect(answer.blocks).toHaveLength(1);
    expect(answer.blocks[0]).toMatchObject({ sha256, size: data.length });
    expect(Date.parse(answer.expiresAt) - before).toBeGreaterThanOrEqual(119_000);
    expect(Date.parse(answer.expiresAt) - Date.now()).toBeLessThanOrEqual(120_000);
    const url = new URL(answer.blocks[0]!.url);
    expect(url.pathname).toBe(`/${minio.bucket}/blocks/${sha256}`);
    expect(url.searchParams.get('X-Amz-SignedHeaders')).toBe('host');
    expect(Buffer.from(await (await fetch(url)).arrayBuffer()).equals(data)).toBe(true);

    // Bob has not proved possession: the block is unreadable to him, exactly as the absent one.
    const bobs = await bob.blockLocations([sha256, absent]);
    expect(bobs.blocks).toEqual([]);
    expect(bobs.unreadable).toEqual([sha256, absent]);
  });

  it('signs the URLs for x-amz-checksum-mode when asked, and refuses a query of more than 500 blocks', async () => {
    const located = await alice.blockLocations([sha256], { checksumMode: true });
    const url = new URL(located.blocks[0]!.url!);
    expect(url.searchParams.get('X-Amz-SignedHeaders')).toBe('host;x-amz-checksum-mode');
    const stored = await alice.storedBlockContent({ ...located.blocks[0]!, url: url.href }, { checksumMode: true });
    expect(stored.headers['x-amz-checksum-sha256']).toBe(Buffer.from(sha256, 'hex').toString('base64'));
    await stored.body?.cancel();
    const tooMany = await alice.blockLocations(Array.from({ length: 501 }, () => sha256)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(tooMany).toBeInstanceOf(ApiError);
    expect((tooMany as ApiError).status).toBe(400);
  });

  it('lets downloadBlocksToStream read 300 blocks with two location queries and no block GET at the partition', async () => {
    const { client, sent } = recordingClient();
    const parts = Array.from({ length: 300 }, (_, i) => Buffer.from(`block ${i} `.repeat(10)));
    const refs: { sha256: string; size: number }[] = [];
    // Sixteen at a time: within the partition's per-user bounds, so no upload waits out a 429.
    for (let i = 0; i < parts.length; i += 16)
      refs.push(...(await Promise.all(parts.slice(i, i + 16).map((part) => alice.putBlock(part)))));
    const chunks: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _e, done) {
        chunks.push(chunk);
        done();
      },
    });
    expect(await downloadBlocksToStream(client, refs, sink)).toEqual({ bytes: Buffer.concat(parts).length, storeChecked: 300 });
    expect(Buffer.concat(chunks).equals(Buffer.concat(parts))).toBe(true);
    expect(sent.filter((s) => s === 'POST partition /v1/blocks/locations')).toHaveLength(2);
    expect(sent.filter((s) => s.startsWith('GET store '))).toHaveLength(300);
    expect(sent.filter((s) => s.startsWith('GET partition '))).toEqual([]);
  });

  it('asks the partition again for a block whose URL the store refuses', async () => {
    // Every URL a location query answered is spoiled on its way to the store (as an expired one
    // would be refused). The partition's redirects are followed inside the fetch, unspoiled.
    const { client, sent } = recordingClient((url) => {
      if (url.origin !== minio.endpoint) return url;
      const spoiled = new URL(url);
      spoiled.searchParams.set('X-Amz-Signature', '0'.repeat(64));
      return spoiled;
    });
    const parts = [randomBytes(10_000), randomBytes(20_000)];
    const refs = [await alice.putBlock(parts[0]!), await alice.putBlock(parts[1]!)];
    const chunks: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _e, done) {
        chunks.push(chunk);
        done();
      },
    });
    expect(await downloadBlocksToStream(client, refs, sink)).toEqual({ bytes: 30_000, storeChecked: 2 });
    expect(Buffer.concat(chunks).equals(Buffer.concat(parts))).toBe(true);
    expect(sent.filter((s) => s.startsWith('GET store '))).toHaveLength(2);
    // Both blocks are asked for at once: their fallbacks go out in either order.
    expect(sent.filter((s) => s.startsWith('GET partition ')).sort()).toEqual(
      refs.map((r) => `GET partition /v1/blocks/${r.sha256}`).sort(),
    );
  });

  it('keeps the blocks it asked for ahead over the global fetch, whose unread answers a collection would otherwise cancel', async () => {
    // Node's fetch cancels the body of a Response collected before it was read. Collections run
    // while a slow sink takes the first block; the blocks asked for ahead must still arrive whole.
    setFlagsFromString('--expose-gc');
    const collect = runInNewContext('gc') as () => void;
    const parts = [randomBytes(1_000_000), randomBytes(1_000_000), randomBytes(500_000)];
    const refs = [];
    for (const part of parts) refs.push(await alice.putBlock(part));
    const chunks: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _e, done) {
        chunks.push(chunk);
        collect();
        setTimeout(done, 2);
      },
    });
    expect(await downloadBlocksToStream(alice, refs, sink, { check: 'hash' })).toEqual({ bytes: 2_500_000, storeChecked: 0 });
    expect(Buffer.concat(chunks).equals(Buffer.concat(parts))).toBe(true);
  });
});
