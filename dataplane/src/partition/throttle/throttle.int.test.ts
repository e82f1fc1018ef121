// The throttle in a real partition process against real etcd and MinIO: 429 exactly at the
// static bounds, fairness between users, bytes charged on debt, 413 for an oversized entry,
// 503 when the process is at its concurrency limit, and health routes that are never
// throttled. Slots 3968-3999 belong to this file (other test files use other ranges).
// Clients here never retry, and the answers under test go through the client's `raw`, so that
// every 429 and 503 is seen as the server sent it.
import { createHash, randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { waitFor } from '../../../../e2e/harness/wait.ts';
import { MeshworkClient, type BlockRef, type RawResponse } from '@meshwork/client';
import { nodeHttpFetch } from '@meshwork/client/node';
import { startPartition, type PartitionStores, type RunningPartition } from '../../../../e2e/dataplane/partition-process.ts';

const stack = inject('stack');
const stores: PartitionStores = { etcdEndpoint: stack.etcd.endpoint, minio: stack.minio };
const KiB = 1024;

let bounded: RunningPartition;
let narrow: RunningPartition;

beforeAll(async () => {
  [bounded, narrow] = await Promise.all([
    startPartition(stores, {
      partition: 'throttle-bounds',
      slots: '3968-3983',
      env: {
        MESHWORK_THROTTLE_USER_RPS: '2',
        MESHWORK_THROTTLE_USER_BURST: '10',
        MESHWORK_THROTTLE_DEVICE_RPS: '2',
        MESHWORK_THROTTLE_DEVICE_BURST: '5',
        MESHWORK_THROTTLE_USER_BYTES_PER_SECOND: '128Ki',
        MESHWORK_THROTTLE_DEVICE_BYTES_PER_SECOND: '128Ki',
        MESHWORK_THROTTLE_MAX_ENTRY_BYTES: '64Ki',
      },
    }),
    // One request at a time, so that a single slow upload puts the process at its limit.
    startPartition(stores, {
      partition: 'throttle-narrow',
      slots: '3984-3999',
      env: { MESHWORK_THROTTLE_CONCURRENCY_MIN: '1', MESHWORK_THROTTLE_CONCURRENCY_MAX: '1' },
    }),
  ]);
});

afterAll(async () => {
  await Promise.all([bounded?.stop(), narrow?.stop()]);
});

/** A new user of `partition` with its own connection pool, as a separate client would have. */
const agents: Agent[] = [];
afterAll(() => {
  for (const agent of agents) agent.destroy();
});

const sha256Hex = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** A new user of `partition` with its own connection pool, as a separate client would have, and no retries. */
async function newUser(partition: RunningPartition, name: string): Promise<MeshworkClient> {
  const user = await new MeshworkClient({ baseUrl: partition.url, token: partition.adminToken, retry: { maxAttempts: 1 } }).createUser(
    name,
  );
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  agents.push(agent);
  return new MeshworkClient({ baseUrl: partition.url, token: user.token, fetch: nodeHttpFetch(agent), retry: { maxAttempts: 1 } });
}

/** Commits a file's block list with If-None-Match: * and answers the raw exchange. */
function commit(client: MeshworkClient, objectId: string, path: string, blocks: BlockRef[]): Promise<RawResponse> {
  return client.raw('PUT', `/v1/objects/${objectId}/entries/${path}`, {
    body: { kind: 'file', blocks },
    headers: { 'if-none-match': '*' },
  });
}

async function statuses(responses: Promise<RawResponse>[]): Promise<number[]> {
  return (await Promise.all(responses)).map((r) => r.status);
}

describe('static bounds', () => {
  it('answer 429 with Retry-After at the user bound and not before', async () => {
    const user = await newUser(bounded, 'burst-user');
    for (let i = 0; i < 10; i++) expect((await user.raw('GET', '/v1/me')).status, `request ${i + 1} of the burst`).toBe(200);
    const refused = await user.raw('GET', '/v1/me');
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.body).toMatchObject({ error: { code: 'rate_limited', reason: 'user_rate', retryAfterSeconds: 1 } });
    expect((refused.body as { error: { message: string } }).error.message).toMatch(
      /^user u\S+ is over its limit of 2 requests per second \(burst 10\); retry after 1 s$/,
    );
    // The bucket refills at 2 per second: the client is back once Retry-After has passed.
    const started = Date.now();
    await waitFor(async () => (await user.raw('GET', '/v1/me')).status === 200, {
      description: 'the user to be admitted again',
      timeoutMs: 3000,
      intervalMs: 100,
    });
    expect(Date.now() - started).toBeLessThanOrEqual(1500);
  });

  it("answer 429 at a device's bound while its user, under the user bound, is still served", async () => {
    const user = await newUser(bounded, 'device-user');
    const device = await user.registerDeviceClient('laptop');
    expect(await statuses(Array.from({ length: 5 }, () => device.raw('GET', '/v1/me')))).toEqual([200, 200, 200, 200, 200]);
    const refused = await device.raw('GET', '/v1/me');
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ error: { code: 'rate_limited', reason: 'device_rate' } });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect((await user.raw('GET', '/v1/me')).status).toBe(200);
  });

  it("let one user's flood leave another user's requests untouched", async () => {
    const flooder = await (await newUser(bounded, 'flooder')).registerDeviceClient('flood');
    const other = await newUser(bounded, 'bystander');
    const flood = Promise.all(Array.from({ length: 300 }, () => flooder.raw('GET', '/v1/me')));
    const calm: number[] = [];
    for (let i = 0; i < 10; i++) calm.push((await other.raw('GET', '/v1/me')).status);
    const flooded = (await flood).map((r) => r.status);
    expect(calm).toEqual(Array.from({ length: 10 }, () => 200));
    const admitted = flooded.filter((s) => s === 200).length;
    // The device's burst of 5, plus what 2 per second refilled while the flood lasted.
    expect(admitted).toBeGreaterThanOrEqual(5);
    expect(admitted).toBeLessThan(20);
    expect(flooded.filter((s) => s === 429)).toHaveLength(300 - admitted);
  });

  it('charge bytes on debt: a body larger than the bucket is admitted, the next request waits for the debt', async () => {
    const user = await newUser(bounded, 'bytes-user');
    const block = randomBytes(512 * KiB);
    expect(await user.putBlock(block)).toEqual({ sha256: sha256Hex(block), size: block.length });
    // 512 KiB through a 128 KiB/s bucket that held 128 KiB: 384 KiB of debt, three seconds.
    const refused = await user.raw('GET', '/v1/me');
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ error: { code: 'rate_limited', reason: 'user_bytes' } });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(3);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(4);
  });

  it('refuse an entry over the maximum size with 413, and accept one at it', async () => {
    const user = await newUser(bounded, 'entry-user');
    const objectId = (await user.createObject({ name: 'Sizes' })).id;
    const block = randomBytes(64 * KiB);
    expect(await user.putBlock(block)).toEqual({ sha256: sha256Hex(block), size: block.length });
    const atMax = await commit(user, objectId, 'at-max.bin', [{ sha256: sha256Hex(block), size: block.length }]);
    expect(atMax.status).toBe(201);
    const tooLarge = await commit(user, objectId, 'too-large.bin', [
      { sha256: sha256Hex(block), size: block.length },
      { sha256: 'a'.repeat(64), size: 1 },
    ]);
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.body).toEqual({
      error: {
        code: 'entry_too_large',
        message: 'the entry is 64 KiB; an entry may be at most 64 KiB',
        reason: 'entry_size',
        size: 64 * KiB + 1,
        maxEntryBytes: 64 * KiB,
      },
    });
  });
});

describe('the concurrency limit', () => {
  it('answers 503 overloaded with Retry-After at the limit, while health routes are never throttled', async () => {
    const user = await newUser(narrow, 'slow-uploader');
    const other = await newUser(narrow, 'waiting');
    // A block upload that sends half its body and stalls holds the only place: raw node:http,
    // since no client call leaves a body half sent.
    const stalled = request(`${narrow.url}/v1/blocks/${'b'.repeat(64)}`, {
      method: 'PUT',
      agent: false,
      headers: { authorization: `Bearer ${user.token}`, 'content-length': String(100 * KiB) },
    });
    stalled.on('error', () => undefined);
    stalled.write(randomBytes(50 * KiB));
    try {
      // The partition's own gauge says when the upload holds the place (metrics are never
      // throttled), however long a busy machine takes to admit it; only then is anyone refused.
      await waitFor(async () => /^meshwork_concurrency_inflight 1$/m.test((await other.raw('GET', '/metrics')).text), {
        description: 'the stalled upload to hold the only place',
        timeoutMs: 60_000,
        intervalMs: 50,
      });
      const refused = await other.raw('GET', '/v1/me');
      expect(refused.status).toBe(503);
      expect(refused.headers['retry-after']).toBe('1');
      expect(refused.body).toMatchObject({ error: { code: 'overloaded', reason: 'concurrency', retryAfterSeconds: 1 } });
      for (const path of ['/livez', '/readyz', '/healthz/deep', '/metrics']) {
        const res = await other.raw('GET', path);
        expect([429, 503], `${path} answered ${res.status}`).not.toContain(res.status);
      }
      expect((await other.raw('GET', '/livez')).status).toBe(200);
      expect((await other.raw('GET', '/readyz')).status).toBe(200);
    } finally {
      stalled.destroy();
    }
    // The place comes back when the stalled client goes away.
    await waitFor(async () => (await other.raw('GET', '/v1/me')).status === 200, {
      description: 'the place to be given back',
      timeoutMs: 60_000,
      intervalMs: 50,
    });
  });
});
