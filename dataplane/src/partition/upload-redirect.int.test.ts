// Block uploads straight to the store (ADR 80): with MESHWORK_S3_UPLOAD_REDIRECT=on,
// `POST /v1/blocks/uploads` answers the blocks the caller lacks with presigned PUT URLs at the
// store, and `POST /v1/blocks/uploaded` records the caller's possession of the ones the store
// holds through a URL given to that caller. Against a real partition process, etcd and MinIO
// (the URLs are used against MinIO itself).
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshworkClient, type BlockUpload } from '@meshwork/client';
import { startEtcd, type EtcdServer } from '../../../e2e/harness/etcd.ts';
import { startMinio, type MinioServer } from '../../../e2e/harness/minio.ts';
import { startPartition, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';

let etcd: EtcdServer;
let minio: MinioServer;
let partition: RunningPartition;
let admin: MeshworkClient;
let alice: MeshworkClient;
let aliceToken: string;
let bob: MeshworkClient;

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const refOf = (b: Uint8Array): { sha256: string; size: number } => ({ sha256: sha(b), size: b.length });

beforeAll(async () => {
  [etcd, minio] = await Promise.all([startEtcd({ name: 'etcd-upload-redirect' }), startMinio({ bucket: 'upload-redirect' })]);
  partition = await startPartition(
    { etcdEndpoint: etcd.endpoint, minio },
    {
      partition: 'upload-redirect',
      slots: '0-4095',
      env: {
        MESHWORK_S3_DOWNLOAD_REDIRECT_ENDPOINT: minio.endpoint,
        MESHWORK_S3_DOWNLOAD_REDIRECT_SECONDS: '120',
        MESHWORK_S3_UPLOAD_REDIRECT: 'on',
      },
    },
  );
  admin = new MeshworkClient({ baseUrl: partition.url, token: partition.adminToken });
  aliceToken = (await admin.createUser('alice')).token;
  alice = admin.as(aliceToken);
  bob = admin.as((await admin.createUser('bob')).token);
});

afterAll(async () => {
  await partition?.stop();
  await Promise.all([etcd?.stop(), minio?.stop()]);
});

/** PUT of `data` to an upload's URL with its headers and nothing else: the store's status. */
async function putToStore(upload: BlockUpload, data: Uint8Array): Promise<number> {
  const res = await fetch(upload.url!, { method: 'PUT', headers: upload.headers, body: data });
  await res.arrayBuffer();
  return res.status;
}

describe('block uploads straight to the store', () => {
  it('answers the blocks the caller lacks, once each in the order asked, with URLs at the store that nobody may cache', async () => {
    const held = randomBytes(1000);
    await alice.putBlock(held);
    const [a, b] = [randomBytes(2000), randomBytes(3000)];
    const res = await fetch(`${partition.url}/v1/blocks/uploads`, {
      method: 'POST',
      headers: { authorization: `Bearer ${aliceToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ blocks: [refOf(b), refOf(held), refOf(a), refOf(b)] }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const answer = (await res.json()) as { uploads: BlockUpload[]; expiresAt: string };
    expect(answer.uploads.map((u) => [u.sha256, u.size])).toEqual([
      [sha(b), 3000],
      [sha(a), 2000],
    ]);
    const expiresIn = Date.parse(answer.expiresAt) - Date.now();
    expect(expiresIn).toBeGreaterThan(100_000);
    expect(expiresIn).toBeLessThanOrEqual(120_000);
    for (const upload of answer.uploads) {
      const url = new URL(upload.url!);
      expect(url.origin).toBe(minio.endpoint);
      expect(url.pathname).toBe(`/${minio.bucket}/blocks/${upload.sha256}`);
      expect(url.searchParams.get('X-Amz-Expires')).toBe('120');
      expect(url.searchParams.get('X-Amz-SignedHeaders')).toBe('content-length;host;x-amz-checksum-sha256;x-amz-meta-meshwork-upload');
      expect(upload.headers!['x-amz-checksum-sha256']).toBe(Buffer.from(upload.sha256, 'hex').toString('base64'));
    }
  });

  it('grants the block once the store holds it through the caller’s URL and the caller confirms it', async () => {
    const block = randomBytes(300_000);
    const { uploads } = await alice.blockUploads([refOf(block)]);
    // Confirmed before the PUT: nothing is granted.
    expect(await alice.confirmUploads([refOf(block)])).toEqual({
      confirmed: [],
      unconfirmed: [
        {
          sha256: sha(block),
          code: 'not_uploaded',
          message: expect.stringContaining('written through a URL given to the caller') as unknown,
        },
      ],
    });
    expect(await alice.missingBlocks([sha(block)])).toEqual([sha(block)]);
    expect(await putToStore(uploads[0]!, block)).toBe(200);
    expect(await alice.confirmUploads([refOf(block)])).toEqual({ confirmed: [refOf(block)], unconfirmed: [] });
    expect(await alice.missingBlocks([sha(block)])).toEqual([]);
    expect((await alice.blockUploads([refOf(block)])).uploads).toEqual([]);
    expect(Buffer.from(await alice.getBlock(sha(block))).equals(block)).toBe(true);
    // The block commits like one uploaded through the partition.
    const objectId = (await alice.createObject({ name: 'Direct' })).id;
    const commit = await alice.putEntry(objectId, 'f.bin', { kind: 'file', blocks: [refOf(block)] }, { ifNoneMatch: '*' });
    expect(commit.created).toBe(true);
  });

  it('does not let one user confirm bytes another user’s URL wrote, nor bytes the partition stored itself', async () => {
    const block = randomBytes(5000);
    const [aliceUpload] = (await alice.blockUploads([refOf(block)])).uploads;
    expect(await putToStore(aliceUpload!, block)).toBe(200);
    // Bob knows the hash and asks for a URL, but writes nothing: the store's copy is Alice's.
    expect((await bob.blockUploads([refOf(block)])).uploads).toHaveLength(1);
    const bobs = await bob.confirmUploads([refOf(block)]);
    expect(bobs.unconfirmed).toEqual([
      {
        sha256: sha(block),
        code: 'not_uploaded',
        message: expect.stringContaining('written through a URL given to the caller') as unknown,
      },
    ]);
    await expect(bob.getBlock(sha(block))).rejects.toMatchObject({ status: 404 });
    // A block stored through the partition carries no tag at all.
    const other = randomBytes(6000);
    await alice.putBlock(other);
    expect((await bob.confirmUploads([refOf(other)])).unconfirmed.map((u) => u.code)).toEqual(['not_uploaded']);
    // Bob sends the bytes himself: then he holds the block, and Alice still does once she confirms.
    const [bobUpload] = (await bob.blockUploads([refOf(block)])).uploads;
    expect(await putToStore(bobUpload!, block)).toBe(200);
    expect((await bob.confirmUploads([refOf(block)])).confirmed).toEqual([refOf(block)]);
    expect(Buffer.from(await bob.getBlock(sha(block))).equals(block)).toBe(true);
  });

  it('confirms, when asked where to upload with checkStore, a block the store holds through the caller’s URL but nobody confirmed (a crash in between)', async () => {
    const [sent, fresh] = [randomBytes(9000), randomBytes(9001)];
    const [upload] = (await alice.blockUploads([refOf(sent)])).uploads;
    expect(await putToStore(upload!, sent)).toBe(200);
    // The client died here. Asked again without checkStore, the partition lists the block again.
    expect((await alice.blockUploads([refOf(sent), refOf(fresh)])).uploads.map((u) => u.sha256)).toEqual([sha(sent), sha(fresh)]);
    // With it, the partition finds the bytes and records them: only the other block is listed.
    const again = await alice.blockUploads([refOf(sent), refOf(fresh)], { checkStore: true });
    expect(again.uploads.map((u) => u.sha256)).toEqual([sha(fresh)]);
    expect(await alice.missingBlocks([sha(sent), sha(fresh)])).toEqual([sha(fresh)]);
    // Bob, asking about the same bytes, is given a URL: the store's copy is not his.
    expect((await bob.blockUploads([refOf(sent)], { checkStore: true })).uploads.map((u) => u.sha256)).toEqual([sha(sent)]);
  });

  it('refuses a confirmation whose size is not the stored one, and one block named with two sizes', async () => {
    const block = randomBytes(7000);
    const [upload] = (await alice.blockUploads([refOf(block)])).uploads;
    expect(await putToStore(upload!, block)).toBe(200);
    const wrong = await alice.confirmUploads([{ sha256: sha(block), size: 7001 }]);
    expect(wrong.unconfirmed).toEqual([
      { sha256: sha(block), code: 'not_uploaded', message: expect.stringContaining('no 7001 bytes') as unknown },
    ]);
    await expect(alice.confirmUploads([refOf(block), { sha256: sha(block), size: 1 }])).rejects.toMatchObject({
      status: 400,
      code: 'invalid_request',
    });
    await expect(alice.blockUploads([{ sha256: sha(block), size: 0 }])).rejects.toMatchObject({ status: 400, code: 'invalid_request' });
  });

  it('gives a user with a quota no URLs: uploads go through the partition, which checks the quota first', async () => {
    const carol = await admin.createUser('carol');
    await admin.setQuota(carol.id, 10_000);
    const client = admin.as(carol.token);
    const small = randomBytes(4000);
    const answer = await client.blockUploads([refOf(small)]);
    expect(answer).toEqual({ uploads: [refOf(small)] });
    const objectId = (await client.createObject({ name: 'Quota' })).id;
    const ok = await client.upload(objectId, 'small.bin', [small], { ifNoneMatch: '*' }, { toStore: true });
    expect(ok.uploadedBlocks).toBe(1);
    await expect(client.upload(objectId, 'big.bin', [randomBytes(8000)], { ifNoneMatch: '*' }, { toStore: true })).rejects.toMatchObject({
      status: 507,
      code: 'insufficient_storage',
    });
  });

  it('uploads a file with the client straight to the store, and through the partition only what the store refused', async () => {
    const requests: string[] = [];
    const counting = (input: Parameters<typeof fetch>[0], init?: RequestInit): Promise<Response> => {
      const url = new URL(input instanceof Request ? input.url : input.toString());
      requests.push(`${init?.method ?? 'GET'} ${url.origin === minio.endpoint ? 'store' : url.pathname.replace(/[0-9a-f]{64}/, '{sha}')}`);
      return fetch(input, init);
    };
    const client = new MeshworkClient({ baseUrl: partition.url, token: aliceToken, fetch: counting });
    const blocks = Array.from({ length: 5 }, () => randomBytes(64 * 1024));
    const objectId = (await client.createObject({ name: 'Client' })).id;
    requests.length = 0;
    const result = await client.upload(
      objectId,
      'five.bin',
      blocks,
      { ifNoneMatch: '*' },
      { blockSize: 64 * 1024, parallelism: 2, toStore: true },
    );
    expect(result.uploadedBlocks).toBe(5);
    expect(requests.filter((r) => r === 'PUT store')).toHaveLength(5);
    expect(requests.filter((r) => r === 'PUT /v1/blocks/{sha}')).toHaveLength(0);
    // Confirmations gather the blocks whose PUTs ended meanwhile: no more than one per block.
    const confirmations = requests.filter((r) => r === 'POST /v1/blocks/uploaded').length;
    expect(confirmations).toBeGreaterThanOrEqual(1);
    expect(confirmations).toBeLessThanOrEqual(5);
    expect(requests.filter((r) => r === 'POST /v1/blocks/missing')).toHaveLength(0);
    const read = await alice.getBlock(result.blocks[3]!.sha256);
    expect(Buffer.from(read).equals(blocks[3]!)).toBe(true);
  });

  it.each([
    { way: 'straight to the store', toStore: true, storePuts: 3, partitionPuts: 0 },
    { way: 'through the partition', toStore: false, storePuts: 0, partitionPuts: 3 },
  ])(
    'sends blocks hashed beforehand from streams opened as they go, each missing one once, $way',
    async ({ toStore, storePuts, partitionPuts }) => {
      const requests: string[] = [];
      const counting = (input: Parameters<typeof fetch>[0], init?: RequestInit): Promise<Response> => {
        const url = new URL(input instanceof Request ? input.url : input.toString());
        requests.push(
          `${init?.method ?? 'GET'} ${url.origin === minio.endpoint ? 'store' : url.pathname.replace(/[0-9a-f]{64}/, '{sha}')}`,
        );
        return fetch(input, init);
      };
      const client = new MeshworkClient({ baseUrl: partition.url, token: aliceToken, fetch: counting });
      const held = randomBytes(40 * 1024);
      await alice.putBlock(held);
      const fresh = Array.from({ length: 3 }, () => randomBytes(48 * 1024 + 7));
      // In file order: a fresh block, the held one, the others, the first again.
      const file = [fresh[0]!, held, fresh[1]!, fresh[2]!, fresh[0]!];
      const opened: number[] = [];
      const open = (i: number): ReadableStream<Uint8Array> => {
        opened.push(i);
        const bytes = file[i]!;
        return new ReadableStream({
          start(controller) {
            controller.enqueue(bytes.subarray(0, 1000));
            controller.enqueue(bytes.subarray(1000));
            controller.close();
          },
        });
      };
      requests.length = 0;
      const sent = await client.sendBlocks(file.map(refOf), open, { parallelism: 2, toStore });
      expect(sent).toEqual({ uploadedBlocks: 3, uploadedBytes: 3 * (48 * 1024 + 7) });
      expect(opened.sort()).toEqual([0, 2, 3]);
      expect(requests.filter((r) => r === 'PUT store')).toHaveLength(storePuts);
      expect(requests.filter((r) => r === 'PUT /v1/blocks/{sha}')).toHaveLength(partitionPuts);
      expect(await alice.missingBlocks(file.map(sha))).toEqual([]);
      for (const block of fresh) expect(Buffer.from(await alice.getBlock(sha(block))).equals(block)).toBe(true);
    },
  );

  it('fails with hash_mismatch, and grants nothing, when a block streamed is not the bytes it was hashed as', async () => {
    const hashed = randomBytes(30 * 1024);
    const changed = Buffer.from(hashed);
    changed[100] = changed[100]! ^ 1;
    const open = (): ReadableStream<Uint8Array> =>
      new ReadableStream({
        start(controller) {
          controller.enqueue(changed);
          controller.close();
        },
      });
    for (const toStore of [true, false]) {
      await expect(alice.sendBlocks([refOf(hashed)], open, { toStore })).rejects.toMatchObject({ code: 'hash_mismatch' });
      expect(await alice.missingBlocks([sha(hashed)])).toEqual([sha(hashed)]);
    }
  });

  it('sends a block the store refused through the partition, and one whose PUT was never made once the confirmation does not take it', async () => {
    const requests: string[] = [];
    let tamper = 0;
    const tampering = (input: Parameters<typeof fetch>[0], init?: RequestInit): Promise<Response> => {
      let url = input instanceof Request ? input.url : input.toString();
      const toStore = new URL(url).origin === minio.endpoint;
      requests.push(`${init?.method ?? 'GET'} ${toStore ? 'store' : new URL(url).pathname.replace(/[0-9a-f]{64}/, '{sha}')}`);
      // The first PUT to the store goes out with its signature altered (the store refuses it); the second is not sent at all.
      if (toStore && init?.method === 'PUT' && tamper++ === 0) url = url.replace(/X-Amz-Signature=[0-9a-f]/, 'X-Amz-Signature=g');
      else if (toStore && init?.method === 'PUT' && tamper === 2) return Promise.resolve(new Response(null, { status: 200 }));
      return fetch(url, init);
    };
    const client = new MeshworkClient({ baseUrl: partition.url, token: aliceToken, fetch: tampering });
    const blocks = Array.from({ length: 3 }, () => randomBytes(32 * 1024));
    const objectId = (await client.createObject({ name: 'Refused' })).id;
    requests.length = 0;
    const result = await client.upload(
      objectId,
      'three.bin',
      blocks,
      { ifNoneMatch: '*' },
      { blockSize: 32 * 1024, parallelism: 1, toStore: true },
    );
    expect(result.uploadedBlocks).toBe(3);
    expect(requests.filter((r) => r === 'PUT store')).toHaveLength(3);
    expect(requests.filter((r) => r === 'PUT /v1/blocks/{sha}')).toHaveLength(2);
    for (const [i, block] of blocks.entries()) expect(Buffer.from(await alice.getBlock(result.blocks[i]!.sha256)).equals(block)).toBe(true);
    // The store's own refusal, as putStoredBlock raises it.
    const block = randomBytes(1000);
    const [upload] = (await alice.blockUploads([refOf(block)])).uploads;
    const tampered = { ...upload!, url: upload!.url!.replace(/X-Amz-Signature=[0-9a-f]/, 'X-Amz-Signature=g') };
    await expect(alice.putStoredBlock(tampered, block)).rejects.toMatchObject({ status: 403 });
    expect(await alice.missingBlocks([sha(block)])).toEqual([sha(block)]);
  });
});
