// A file written whole (ADR 86): `PUT /v1/objects/{id}/entries/{path}` with the content as an
// `application/octet-stream` body stores it as one block and commits the file in one call, with
// a commit's preconditions and answer. Every refusal stores and commits nothing. Run against a
// real partition process, etcd and MinIO of its own.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, MeshworkClient, sha256Hex, type MeshObject } from '@meshwork/client';
import { startEtcd, type EtcdServer } from '../../../e2e/harness/etcd.ts';
import { startMinio, type MinioServer } from '../../../e2e/harness/minio.ts';
import { startPartition, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';

let etcd: EtcdServer;
let minio: MinioServer;
let partition: RunningPartition;
let admin: MeshworkClient;
let alice: MeshworkClient;
let aliceToken: string;
let object: MeshObject;

beforeAll(async () => {
  [etcd, minio] = await Promise.all([startEtcd({ name: 'etcd-write-whole' }), startMinio({ bucket: 'whole' })]);
  partition = await startPartition({ etcdEndpoint: etcd.endpoint, minio }, { partition: 'whole' });
  admin = new MeshworkClient({ baseUrl: partition.url, token: partition.adminToken });
  const user = await admin.createUser('alice');
  aliceToken = user.token;
  alice = admin.as(user.token);
  object = await alice.createObject({ name: 'docs' });
});

afterAll(async () => {
  await partition?.stop();
  await Promise.all([etcd?.stop(), minio?.stop()]);
});

/** A raw PUT of `body` to an entry's URL as `token`. */
function putWhole(
  path: string,
  body: Uint8Array | undefined,
  headers: Record<string, string>,
  options: { token?: string; objectId?: string; query?: string } = {},
): Promise<Response> {
  const url = `${partition.url}/v1/objects/${options.objectId ?? object.id}/entries/${path}${options.query ?? ''}`;
  return fetch(url, {
    method: 'PUT',
    headers: { authorization: `Bearer ${options.token ?? aliceToken}`, 'content-type': 'application/octet-stream', ...headers },
    ...(body === undefined ? {} : { body }),
  });
}

async function readContent(path: string): Promise<Buffer> {
  const res = await fetch(`${partition.url}/v1/objects/${object.id}/content/${path}`, {
    headers: { authorization: `Bearer ${aliceToken}` },
  });
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

async function codeOf(res: Response): Promise<string> {
  return ((await res.json()) as { error: { code: string } }).error.code;
}

async function absent(path: string, objectId = object.id): Promise<boolean> {
  return alice.getEntry(objectId, path).then(
    () => false,
    (err: unknown) => err instanceof ApiError && err.status === 404,
  );
}

describe('a file written whole', () => {
  it('is stored as one block and committed: 201 with the entry, readable as sent', async () => {
    const data = randomBytes(5000);
    const res = await putWhole('notes/a.txt', data, { 'if-none-match': '*' }, { query: '?mtime=2026-01-02T03:04:05.000Z' });
    expect(res.status).toBe(201);
    const entry = (await res.json()) as { version: string; size: number; blocks: { sha256: string; size: number }[]; mtime: string };
    expect(res.headers.get('etag')).toBe(`"${entry.version}"`);
    expect(entry.blocks).toEqual([{ sha256: await sha256Hex(data), size: 5000 }]);
    expect(entry.size).toBe(5000);
    expect(entry.mtime).toBe('2026-01-02T03:04:05.000Z');
    expect(Buffer.from(await readContent('notes/a.txt'))).toEqual(data);
    // The block is the writer's now, as after a block upload.
    expect(await alice.missingBlocks([entry.blocks[0]!.sha256])).toEqual([]);
  });

  it('replaces a file under If-Match, and an empty body is an empty file', async () => {
    const first = await alice.putFileContent(object.id, 'b.txt', Buffer.from('one'), { ifNoneMatch: '*' });
    const res = await putWhole('b.txt', new Uint8Array(0), { 'if-match': `"${first.entry.version}"` });
    expect(res.status).toBe(200);
    const entry = (await res.json()) as { size: number; blocks: unknown[]; version: string };
    expect(entry).toMatchObject({ size: 0, blocks: [] });
    expect(entry.version).not.toBe(first.entry.version);
  });

  it('answers a stale If-Match 412 and leaves the file as it was', async () => {
    const first = await alice.putFileContent(object.id, 'c.txt', Buffer.from('kept'), { ifNoneMatch: '*' });
    await alice.putFileContent(object.id, 'c.txt', Buffer.from('newer'), { ifMatch: first.entry.version });
    const res = await putWhole('c.txt', Buffer.from('lost'), { 'if-match': `"${first.entry.version}"` });
    expect(res.status).toBe(412);
    expect((await readContent('c.txt')).toString()).toBe('newer');
  });

  it('refuses bad requests with a 4xx and commits nothing', async () => {
    const cases: { path: string; body: Uint8Array; headers: Record<string, string>; query?: string; status: number; code: string }[] = [
      { path: 'no-pre.txt', body: Buffer.from('x'), headers: {}, status: 428, code: 'precondition_required' },
      {
        path: 'bad-mtime.txt',
        body: Buffer.from('x'),
        headers: { 'if-none-match': '*' },
        query: '?mtime=yesterday',
        status: 400,
        code: 'invalid_request',
      },
      { path: 'big.bin', body: new Uint8Array(4 * 1024 * 1024 + 1), headers: { 'if-none-match': '*' }, status: 413, code: 'too_large' },
    ];
    for (const c of cases) {
      const res = await putWhole(c.path, c.body, c.headers, c.query === undefined ? {} : { query: c.query });
      expect({ path: c.path, status: res.status, code: await codeOf(res) }).toEqual({
        path: c.path,
        status: c.status,
        code: c.code,
      });
      expect(await absent(c.path)).toBe(true);
    }
    // Chunked, with no Content-Length: 411.
    const chunked = await fetch(`${partition.url}/v1/objects/${object.id}/entries/chunked.txt`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${aliceToken}`, 'content-type': 'application/octet-stream', 'if-none-match': '*' },
      body: new Blob([Buffer.from('chunk')]).stream(),
      duplex: 'half',
    });
    expect(chunked.status).toBe(411);
    expect(await absent('chunked.txt')).toBe(true);
  });

  it('follows roles: a reader gets 403, a stranger 404', async () => {
    const bob = await admin.createUser('bob');
    const carol = await admin.createUser('carol');
    await alice.setMember(object.id, bob.id, 'reader');
    const asReader = await putWhole('r.txt', Buffer.from('x'), { 'if-none-match': '*' }, { token: bob.token });
    expect(asReader.status).toBe(403);
    const asStranger = await putWhole('r.txt', Buffer.from('x'), { 'if-none-match': '*' }, { token: carol.token });
    expect(asStranger.status).toBe(404);
    expect(await absent('r.txt')).toBe(true);
  });

  it('refuses an object that keeps its content on devices only: 409 peer_to_peer_only', async () => {
    const p2p = await alice.createObject({ name: 'devices-only', cloudStorage: false });
    const res = await putWhole('p.txt', Buffer.from('x'), { 'if-none-match': '*' }, { objectId: p2p.id });
    expect(res.status).toBe(409);
    expect(await codeOf(res)).toBe('peer_to_peer_only');
    expect(await absent('p.txt', p2p.id)).toBe(true);
  });

  it('counts against a quota: over it is 507 and nothing is committed', async () => {
    const dave = await admin.createUser('dave');
    await admin.setQuota(dave.id, 100);
    const asDave = admin.as(dave.token);
    const own = await asDave.createObject({ name: 'small' });
    const err = await asDave.putFileContent(own.id, 'big.bin', randomBytes(101), { ifNoneMatch: '*' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe('insufficient_storage');
    expect(await asDave.getEntry(own.id, 'big.bin').catch((e: unknown) => (e as ApiError).status)).toBe(404);
    const fits = await asDave.putFileContent(own.id, 'fits.bin', randomBytes(100), { ifNoneMatch: '*' });
    expect(fits.entry.size).toBe(100);
  });
});
