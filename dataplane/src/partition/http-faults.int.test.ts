// HTTP correctness of the partition against a real process, etcd and MinIO: the cursor of a
// paged listing or change set is its snapshot's, malformed URLs and bodies are 4xx, a poll
// without a cursor answers at once with the user's live objects, 405 with Allow, 415 for a
// body that is not JSON, 413 at once and read by a client still sending (the rest drained,
// bounded), and 503 store_unavailable with Retry-After on every route while MinIO, then etcd,
// is stopped. This file starts its own etcd and MinIO (it stops them), so it may use the whole
// slot space.
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type EtcdServer } from '../../../e2e/harness/etcd.ts';
import { startMinio, type MinioServer } from '../../../e2e/harness/minio.ts';
import { startPartition, unthrottledEnv, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';
import { MeshworkClient, type DeviceClient, type RawResponse } from '@meshwork/client';
import { rawHttp } from '@meshwork/client/node';

const MiB = 1024 * 1024;

let etcd: EtcdServer;
let minio: MinioServer;
let partition: RunningPartition;
let admin: MeshworkClient;
let alice: DeviceClient;
let alicePhone: DeviceClient;
let aliceAccount: MeshworkClient;
let objectId: string;
let fileVersion: string;

beforeAll(async () => {
  [etcd, minio] = await Promise.all([startEtcd({ name: 'etcd-http-faults' }), startMinio({ bucket: 'http-faults' })]);
  partition = await startPartition(
    { etcdEndpoint: etcd.endpoint, minio },
    {
      partition: 'http-faults',
      // A slot lease that outlasts the etcd outage below, so that writes meet the outage itself
      // (store_unavailable) and not the re-acquisition of the slots (ownership_lost).
      env: { ...unthrottledEnv, MESHWORK_STORE_DEADLINE_SECONDS: '2', MESHWORK_SLOT_LEASE_TTL_SECONDS: '120' },
    },
  );
  admin = new MeshworkClient({ baseUrl: partition.url, token: partition.adminToken });
  const user = await admin.createUser('alice');
  aliceAccount = admin.as(user.token);
  alice = await aliceAccount.registerDeviceClient('alice-laptop');
  alicePhone = await aliceAccount.registerDeviceClient('alice-phone');
  objectId = (await alice.createObject({ name: 'Documents' })).id;
  const up = await alice.upload(objectId, 'file.bin', randomBytes(3 * MiB), { ifNoneMatch: '*' }, { blockSize: MiB });
  fileVersion = up.entry.version;
});

afterAll(async () => {
  await partition?.stop();
  await Promise.allSettled([etcd?.stop(), minio?.stop()]);
});

/** An error answer in the catalogue's envelope, with the given status and code. */
function expectError(res: RawResponse, status: number, code: string): void {
  expect({ status: res.status, code: (res.body as { error?: { code?: string } } | undefined)?.error?.code }).toEqual({ status, code });
  expect(res.headers['content-type']).toMatch(/^application\/json/);
}

async function mkdir(client: MeshworkClient, object: string, path: string): Promise<void> {
  await client.putEntry(object, path, { kind: 'directory' }, { ifNoneMatch: '*' });
}

describe('cursors of paged answers', () => {
  it('gives the snapshot as the cursor of every page of a listing, so changes after it are not lost', async () => {
    const id = (await alice.createObject({ name: 'paged' })).id;
    for (const p of ['a', 'b', 'c']) await mkdir(alice, id, p);
    const first = await alice.listEntries(id, { limit: 1 });
    expect(first.entries.map((e) => e.path)).toEqual(['a']);
    // Another client commits while the pages are read.
    await mkdir(alicePhone, id, 'e');
    const cursors = [first.cursor];
    const paths = ['a'];
    // The page token alone (no limit): pages keep the first page's size.
    let next = first.next;
    while (next !== null) {
      const res = await alice.raw<{ entries: { path: string }[]; cursor: string; next: string | null }>(
        'GET',
        `/v1/objects/${id}/entries?page=${next}`,
      );
      expect(res.status).toBe(200);
      expect(res.body.entries.length).toBeLessThanOrEqual(1);
      paths.push(...res.body.entries.map((e) => e.path));
      cursors.push(res.body.cursor);
      next = res.body.next;
    }
    expect(paths).toEqual(['a', 'b', 'c']);
    expect(new Set(cursors)).toEqual(new Set([first.cursor]));
    const changes = await alice.listAllChanges(id, { cursor: first.cursor });
    expect(changes.changes.map((e) => e.path)).toContain('e');
  });

  it('gives the snapshot as the cursor of every page of a change set', async () => {
    const id = (await alice.createObject({ name: 'paged changes' })).id;
    const { cursor } = await alice.listAllEntries(id);
    for (const p of ['a', 'b', 'c']) await mkdir(alice, id, p);
    const first = await alice.changes(id, { cursor, limit: 1 });
    await mkdir(alicePhone, id, 'e');
    const cursors = [first.cursor];
    let next = first.next;
    while (next !== null) {
      const page = await alice.changes(id, { page: next, limit: 1 });
      cursors.push(page.cursor);
      next = page.next;
    }
    expect(new Set(cursors)).toEqual(new Set([first.cursor]));
    expect((await alice.listAllChanges(id, { cursor: first.cursor })).changes.map((e) => e.path)).toContain('e');
  });
});

describe('malformed requests are 4xx', () => {
  it.each([
    ['an object id', '/v1/objects/%ff', true, 'invalid_request'],
    ['an object id, without a token', '/v1/objects/%ff', false, 'invalid_request'],
    ['an entry path', '/v1/objects/{id}/entries/a/%C0%AF', true, 'invalid_path'],
    ['a content path', '/v1/objects/{id}/content/%E0%A4%A', true, 'invalid_path'],
    ['a block hash, without a token', '/v1/blocks/%zz', false, 'invalid_request'],
    ['an unknown route', '/v1/%ff/x', false, 'invalid_request'],
  ])('answers 400 to undecodable percent-encoding in %s', async (_what, path, withToken, code) => {
    const res = await rawHttp(partition.url, 'GET', path.replace('{id}', objectId), withToken ? { token: alice.token! } : {});
    expectError(res, 400, code);
  });

  it.each([
    ['gzip', gzipSync],
    ['deflate', deflateSync],
    ['br', brotliCompressSync],
  ])('reads a %s body, and answers 400 to a body that is not in that encoding', async (encoding, compress) => {
    const good = await rawHttp(partition.url, 'POST', '/v1/objects', {
      token: alice.token!,
      body: compress(Buffer.from(JSON.stringify({ name: `encoded ${encoding}` }))),
      headers: { 'content-type': 'application/json', 'content-encoding': encoding },
    });
    expect(good.status).toBe(201);
    const bad = await rawHttp(partition.url, 'POST', '/v1/objects', {
      token: alice.token!,
      body: Buffer.from('{"name":"not compressed at all"}'),
      headers: { 'content-type': 'application/json', 'content-encoding': encoding },
    });
    expectError(bad, 400, 'invalid_request');
    expect(bad.body).toMatchObject({ error: { field: 'body' } });
  });

  it('answers 415 to a Content-Encoding it does not read', async () => {
    const res = await rawHttp(partition.url, 'POST', '/v1/objects', {
      token: alice.token!,
      body: Buffer.from('{"name":"x"}'),
      headers: { 'content-type': 'application/json', 'content-encoding': 'compress' },
    });
    expectError(res, 415, 'unsupported_media_type');
  });
});

describe('notifications without a cursor', () => {
  it('answers at once for a user without objects', async () => {
    const user = await admin.createUser('nobody');
    const device = await admin.as(user.token).registerDeviceClient('nobody-laptop');
    const started = Date.now();
    const answer = await device.notifications({ wait: 20 });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(answer.objects).toEqual([]);
    expect(Number(answer.cursor)).toBeGreaterThan(0);
  });

  it('lists every live object of the user and none it deleted', async () => {
    const user = await admin.createUser('carol');
    const carol = await admin.as(user.token).registerDeviceClient('carol-laptop');
    const kept = (await carol.createObject({ name: 'kept' })).id;
    // A first poll makes the process keep the user's feed, which then sees the delete happen.
    const first = await carol.notifications({ wait: 20 });
    expect(first.objects).toEqual([{ id: kept, role: 'owner' }]);
    const gone = (await carol.createObject({ name: 'gone' })).id;
    await carol.deleteObject(gone);
    const answer = await carol.notifications({ wait: 20 });
    expect(answer.objects).toEqual([{ id: kept, role: 'owner' }]);
    expect(Number(answer.cursor)).toBeGreaterThan(Number(first.cursor));
    // From the cursor of the first answer, the delete is news.
    expect((await carol.notifications({ cursor: first.cursor, wait: 0 })).objects).toEqual(
      expect.arrayContaining([{ id: gone, removed: true }]),
    );
  });
});

describe('HTTP details', () => {
  it.each(['PUT', 'GET', 'DELETE'])('answers %s of the empty entry path with 400 invalid_path', async (method) => {
    const res = await rawHttp(partition.url, method, `/v1/objects/${objectId}/entries/`, {
      token: alice.token!,
      ...(method === 'PUT' ? { body: { kind: 'directory' }, headers: { 'if-none-match': '*' } } : {}),
      ...(method === 'DELETE' ? { headers: { 'if-match': '"1"' } } : {}),
    });
    expectError(res, 400, 'invalid_path');
  });

  it.each([
    // "missing" is also a name the block routes take (and refuse as a hash).
    ['PATCH', '/v1/blocks/missing', 'GET, HEAD, POST, PUT'],
    ['DELETE', '/v1/blocks/{sha}', 'GET, HEAD, PUT'],
    ['POST', '/v1/objects/{id}/entries', 'DELETE, GET, HEAD, PUT'],
    ['POST', '/v1/objects/{id}/entries/a.txt', 'DELETE, GET, HEAD, PUT'],
    ['PUT', '/v1/objects/{id}', 'DELETE, GET, HEAD, PATCH'],
    ['DELETE', '/v1/notifications', 'GET, HEAD'],
    ['POST', '/v1/me', 'GET, HEAD'],
    ['PUT', '/v1/slots', 'GET, HEAD'],
    ['POST', '/livez', 'GET, HEAD'],
    ['DELETE', '/metrics', 'GET, HEAD'],
    ['POST', '/healthz/deep', 'GET, HEAD'],
  ])('answers %s %s with 405 and Allow: %s', async (method, path, allow) => {
    const res = await alice.raw(method, path.replace('{id}', objectId).replace('{sha}', 'a'.repeat(64)));
    expectError(res, 405, 'method_not_allowed');
    expect(res.headers.allow).toBe(allow);
  });

  it.each([
    ['text/plain', 415],
    ['application/x-www-form-urlencoded', 415],
    [undefined, 415],
    ['application/json; charset=utf-8', 201],
    ['Application/JSON', 201],
  ])('answers a JSON route whose body is sent as %s with %i', async (contentType, status) => {
    const res = await rawHttp(partition.url, 'POST', '/v1/objects', {
      token: alice.token!,
      body: Buffer.from(JSON.stringify({ name: 'typed' })),
      headers: contentType === undefined ? {} : { 'content-type': contentType },
    });
    expect(res.status).toBe(status);
    if (status === 415) expectError(res, 415, 'unsupported_media_type');
  });

  it.each([
    ['a block over 4 MiB', 'PUT', `/v1/blocks/${'c'.repeat(64)}`, 64 * MiB, 'application/octet-stream'],
    ['a JSON body over 2 MiB', 'POST', '/v1/objects', 64 * MiB, 'application/json'],
  ])('lets a client still sending %s read its 413', async (_what, method, path, length, contentType) => {
    const res = await sendUntilAnswered(method, path, length, contentType, alice.token!);
    expect(res.status).toBe(413);
    expect(JSON.parse(res.text)).toMatchObject({ error: { code: 'too_large' } });
  });

  it.each([
    ['a block over 4 MiB', 'PUT', `/v1/blocks/${'d'.repeat(64)}`, 'application/octet-stream'],
    ['a JSON body over 2 MiB', 'POST', '/v1/objects', 'application/json'],
  ])('lets a client that reads only once it has sent %s read its 413', async (_what, method, path, contentType) => {
    // 6 MiB: more than a block or a JSON body may be, well within what the server drains.
    const answer = await sendThenRead(method, path, 6 * MiB, contentType, alice.token!);
    expect(answer.error).toBeUndefined();
    expect(answer.text).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer.text).toContain('"too_large"');
  });
});

describe('a refused body', () => {
  it('is answered 413 at once, before the rest of the body is sent', async () => {
    const answer = await rawExchange({
      method: 'POST',
      path: '/v1/objects',
      contentType: 'application/json',
      declared: 64 * MiB,
      send: MiB,
    });
    expect(answer.text).toMatch(/^HTTP\/1\.1 413 /);
  });

  it.each([
    ['a block', 'PUT', `/v1/blocks/${'e'.repeat(64)}`, 'application/octet-stream'],
    ['a JSON body', 'POST', '/v1/objects', 'application/json'],
  ])('is drained only so far, then the connection is closed: %s', async (_what, method, path, contentType) => {
    const declared = 512 * MiB;
    const answer = await rawExchange({ method, path, contentType, declared, send: declared });
    expect(answer.text).toMatch(/^HTTP\/1\.1 413 /);
    // The server drains at most 32 MiB or 2 s; what the socket buffers on both sides adds a few MiB.
    expect(answer.written).toBeLessThan(128 * MiB);
  });
});

/** The head of a request with a body of `length` bytes, as raw HTTP/1.1. */
function requestHead(method: string, path: string, host: string, token: string, contentType: string, length: number): string {
  const lines = [
    `${method} ${path} HTTP/1.1`,
    `Host: ${host}`,
    `Authorization: Bearer ${token}`,
    `Content-Type: ${contentType}`,
    `Content-Length: ${length}`,
  ];
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/**
 * Sends a request head declaring `declared` body bytes and then `send` of them on a raw socket,
 * reading as it goes; resolves when the server closed the connection or, once an answer came,
 * when the connection has gone quiet. `written` is how much of the body the server took.
 */
interface RawExchange {
  method: string;
  path: string;
  contentType: string;
  declared: number;
  send: number;
}

function rawExchange(request: RawExchange): Promise<{ text: string; written: number }> {
  const url = new URL(partition.url);
  return new Promise((resolve) => {
    const socket = connect(Number(url.port), url.hostname);
    const chunks: Buffer[] = [];
    let written = 0;
    let quiet: NodeJS.Timeout | undefined;
    const finish = (): void => {
      clearTimeout(quiet);
      clearTimeout(deadline);
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), written });
    };
    // A server that never answers fails the test's assertions instead of its timeout.
    const deadline = setTimeout(finish, 15_000);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', finish);
    const { method, path, contentType, declared } = request;
    socket.write(requestHead(method, path, url.host, alice.token!, contentType, declared));
    const chunk = Buffer.alloc(256 * 1024, 0x61);
    const pump = (): void => {
      while (written < request.send && !socket.destroyed) {
        written += chunk.length;
        if (!socket.write(chunk, (err) => err && (written -= chunk.length))) {
          socket.once('drain', pump);
          return;
        }
      }
      // All sent and the connection still open: wait for the answer, then for quiet.
      const settle = (): void => {
        clearTimeout(quiet);
        quiet = setTimeout(finish, 1000);
      };
      if (chunks.length > 0) settle();
      socket.on('data', settle);
    };
    pump();
  });
}

/**
 * Sends a whole request of `length` body bytes on a raw socket without reading anything, as a
 * simple client does, and only then reads the answer (until the connection goes quiet or closes).
 */
function sendThenRead(
  method: string,
  path: string,
  length: number,
  contentType: string,
  token: string,
): Promise<{ text: string; error?: string }> {
  const url = new URL(partition.url);
  return new Promise((resolve) => {
    const socket = connect(Number(url.port), url.hostname);
    const chunks: Buffer[] = [];
    let error: string | undefined;
    let quiet: NodeJS.Timeout | undefined;
    const finish = (): void => {
      clearTimeout(quiet);
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), ...(error === undefined ? {} : { error }) });
    };
    socket.pause();
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      // The answer is small and comes in one piece: once it stops arriving, it is all there.
      clearTimeout(quiet);
      quiet = setTimeout(finish, 500);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      error = err.code ?? err.message;
    });
    socket.on('close', finish);
    socket.write(requestHead(method, path, url.host, token, contentType, length));
    socket.write(Buffer.alloc(length, 0x61), () => socket.resume());
  });
}

/**
 * Declares `length` bytes and keeps writing them until the server answers; resolves with the
 * answer, rejects when the connection is reset before one could be read.
 */
function sendUntilAnswered(
  method: string,
  path: string,
  length: number,
  contentType: string,
  token: string,
): Promise<{ status: number; text: string }> {
  const url = new URL(partition.url);
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        headers: { authorization: `Bearer ${token}`, 'content-type': contentType, 'content-length': String(length) },
      },
      (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let sent = 0;
    const pump = (): void => {
      while (!answered && sent < length) {
        sent += chunk.length;
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
      if (sent >= length) req.end();
    };
    pump();
  });
}

describe('a MinIO outage', () => {
  it('answers GET of a file content 503 store_unavailable with Retry-After, before any byte', async () => {
    await minio.stop();
    const res = await rawHttp(partition.url, 'GET', `/v1/objects/${objectId}/content/file.bin`, { token: alice.token! });
    expectError(res, 503, 'store_unavailable');
    expect(res.headers['retry-after']).toBe('1');
    expect(res.headers.etag).toBeUndefined();
    expect(res.headers['content-range']).toBeUndefined();
  });
});

describe('an etcd outage', () => {
  it('answers 503 store_unavailable with Retry-After on every route', async () => {
    // Before the outage: a cursor and a known token (the token cache would hide the outage from authentication otherwise).
    const cursor = (await alice.listAllEntries(objectId)).cursor;
    const notified = await alice.notifications({ wait: 0 });
    await etcd.stop();
    const id = objectId;
    const token = alice.token!;
    const requests: [string, string, Record<string, unknown>?][] = [
      ['GET', `/v1/objects/${id}/entries/file.bin`],
      ['GET', `/v1/objects/${id}/content/file.bin`],
      ['GET', `/v1/objects/${id}/entries`],
      ['GET', `/v1/objects/${id}/changes?cursor=${cursor}`],
      ['GET', `/v1/objects/${id}/changes?cursor=${cursor}&wait=2`],
      ['GET', '/v1/me'],
      ['PUT', `/v1/objects/${id}/entries/new-dir`, { body: { kind: 'directory' }, headers: { 'if-none-match': '*' } }],
      ['DELETE', `/v1/objects/${id}/entries/file.bin`, { headers: { 'if-match': `"${fileVersion}"` } }],
      ['GET', '/v1/objects'],
      ['POST', '/v1/objects', { body: { name: 'during the outage' } }],
      ['GET', `/v1/objects/${id}`],
      ['PATCH', `/v1/objects/${id}`, { body: { name: 'renamed' } }],
      ['PUT', `/v1/devices/${alice.deviceId}/presence`, { body: { endpoints: [], holds: [] } }],
      ['GET', `/v1/objects/${id}/content/file.bin/sources`],
      ['GET', `/v1/devices/${alice.deviceId}/remote/files/`],
      ['GET', `/v1/devices/${alice.deviceId}/remote/files/${id}/file.bin`],
      ['GET', `/v1/notifications?cursor=${notified.cursor}&wait=2`],
      ['GET', '/v1/notifications?wait=2'],
      ['POST', '/v1/blocks/locations', { body: { blocks: ['0'.repeat(64)] } }],
      ['POST', '/v1/blocks/uploaded', { body: { blocks: [{ sha256: '0'.repeat(64), size: 1 }] } }],
    ];
    const answers = await Promise.all(requests.map(([method, path, extra]) => rawHttp(partition.url, method, path, { token, ...extra })));
    const summary = answers.map((res, i) => ({
      route: `${requests[i]![0]} ${requests[i]![1]}`,
      status: res.status,
      code: (res.body as { error?: { code?: string } } | undefined)?.error?.code,
      retryAfter: res.headers['retry-after'],
    }));
    expect(summary).toEqual(
      requests.map(([method, path]) => ({ route: `${method} ${path}`, status: 503, code: 'store_unavailable', retryAfter: '1' })),
    );
  });
});
