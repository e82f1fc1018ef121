// Block downloads redirected to the store (ADR 71): with MESHWORK_S3_DOWNLOAD_REDIRECT_ENDPOINT
// set, `GET /v1/blocks/{sha256}` checks the caller exactly as before and then answers `307` to a
// presigned URL at that address, so the bytes come from the store, not through the partition.
// Against a real partition process, etcd and MinIO (the URL is used against MinIO itself).
import { randomBytes } from 'node:crypto';
import { Agent } from 'node:http';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, MeshworkClient } from '@meshwork/client';
import { downloadBlocksToStream, nodeHttpFetch } from '@meshwork/client/node';
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
    const whole = collect();
    expect((await downloadBlocksToStream(pooled, answer.entry.blocks ?? [], whole.sink)).bytes).toBe(350_001);
    expect(whole.bytes().equals(Buffer.concat(parts))).toBe(true);
    expect(whole.sink.writableFinished).toBe(true);

    // The store's copy of the second block changes underneath: the client notices and stops.
    await minio.client().putObject(minio.bucket, `blocks/${refs[1]!.sha256}`, randomBytes(150_000));
    const broken = collect();
    await expect(downloadBlocksToStream(pooled, answer.entry.blocks ?? [], broken.sink)).rejects.toThrow(/do not hash to its name/);
    expect(broken.sink.destroyed).toBe(true);
    expect(broken.bytes().length).toBeLessThanOrEqual(350_000);
  });
});
