// LongPolls in this process, serving the real partition app against the real etcd and MinIO,
// so that what a process cannot show from outside can be asserted: how many polls are open,
// that a client going away frees its poll at once, draining, and a change-feed restart.
// Slots 4000-4031 belong to this file (the app here registers no slot map record; main.int.test.ts
// uses 4000-4001 for its short-lived processes).
import { request as httpRequest, createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Etcd3 } from 'etcd3';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { waitFor } from '../../../../e2e/harness/wait.ts';
import { parsePartitionConfig } from '../../config.ts';
import { BlockStore } from '../../stores/block-store.ts';
import { MetadataStore } from '../../stores/metadata-store.ts';
import { GrantKeys } from '../../stores/grant-keys.ts';
import { RelayHub } from '../relay/relay-hub.ts';
import { PresenceStore } from '../../stores/presence-store.ts';
import { createPartitionApp } from '../app.ts';
import { Authenticator } from '../auth.ts';
import { ChangeFeed } from '../change-feed.ts';
import type { PartitionContext } from '../context.ts';
import { ApiError } from '@meshwork/contract';
import { SlotOwners } from '../slot-owners.ts';
import { SlotMap } from '../slot-map.ts';
import { MeshworkClient, type DeviceClient, type RawResponse } from '@meshwork/client';
import { LongPolls } from './long-polls.ts';
import { EventLoopMonitor } from '../../health/event-loop.ts';
import { ProcessHealth } from '../../health/health.ts';
import { StoreReachability } from '../../health/store-reachability.ts';
import { VolumeChecks } from '../../health/volume-checks.ts';
import { DataplaneMetrics } from '../../telemetry/metrics.ts';
import { noTracing } from '../../telemetry/tracing.ts';
import { Registry } from 'prom-client';
import { Throttle } from '../throttle/throttle.ts';
import { PossessionCache } from '../sync/possession-cache.ts';
import { QuotaCache } from '../sync/quota-cache.ts';

const stack = inject('stack');
const adminToken = 'admin-token-for-long-polls';

let etcd: Etcd3;
let changeFeed: ChangeFeed;
let longPolls: LongPolls;
let server: Server;
let url: string;
let laptop: DeviceClient;
let phone: DeviceClient;
let objectId: string;

/** A per-client limit like the throttling module's, counting what LongPolls asks of it. */
const admission = {
  limit: Number.POSITIVE_INFINITY,
  open: new Map<string, number>(),
  acquired: 0,
  released: 0,
  acquire(clientId: string): void {
    const open = this.open.get(clientId) ?? 0;
    if (open >= this.limit)
      throw new ApiError('too_many_polls', `client ${clientId} has ${open} polls open`, { headers: { 'Retry-After': '1' } });
    this.open.set(clientId, open + 1);
    this.acquired++;
  },
  release(clientId: string): void {
    this.open.set(clientId, (this.open.get(clientId) ?? 0) - 1);
    this.released++;
  },
};

beforeAll(async () => {
  const config = parsePartitionConfig(
    {
      MESHWORK_PARTITION: 'long-polls-in-process',
      MESHWORK_SLOTS: '4000-4031',
      MESHWORK_LISTEN: '127.0.0.1:0',
      MESHWORK_ETCD_ENDPOINTS: stack.etcd.endpoint,
      MESHWORK_S3_ENDPOINT: stack.minio.endpoint,
      MESHWORK_S3_BUCKET: stack.minio.bucket,
      MESHWORK_S3_ACCESS_KEY: stack.minio.accessKey,
      MESHWORK_S3_SECRET_KEY: stack.minio.secretKey,
      MESHWORK_ADMIN_TOKEN_FILE: '/admin-token',
    },
    () => adminToken,
  );
  const logger = pino({ level: 'silent' });
  etcd = new Etcd3({ hosts: stack.etcd.endpoint });
  const metadata = new MetadataStore(etcd);
  changeFeed = new ChangeFeed(etcd, config.slots, logger);
  await changeFeed.start();
  longPolls = new LongPolls({ metadata, etcd, changeFeed, slots: config.slots, logger, admission });
  const grants = new GrantKeys(etcd);
  await grants.load();
  const ctx: PartitionContext = {
    config,
    metadata,
    blocks: new BlockStore(config.s3),
    slotMap: new SlotMap(etcd, logger),
    // Not started: the claim alone, since no owner key names these slots.
    owners: new SlotOwners(etcd, config.partition, config.slots, logger),
    auth: new Authenticator(adminToken, metadata),
    changeFeed,
    longPolls,
    presence: new PresenceStore(etcd, config.presenceTtlSeconds),
    grants,
    relay: new RelayHub({ etcd, self: { pod: 'long-polls', address: 'http://127.0.0.1:1' }, logger }),
    logger,
    objectCache: new Map(),
    possession: new PossessionCache(),
    quotas: new QuotaCache(metadata),
    metrics: new DataplaneMetrics('partition', () => longPolls.open),
    tracing: noTracing,
    throttle: new Throttle(config.throttle, { registry: new Registry(), logger }),
    health: new ProcessHealth({
      eventLoop: new EventLoopMonitor({ limitMs: 5000 }),
      stores: new StoreReachability([], { intervalMs: 5000, timeoutMs: 1000, staleAfterMs: 15_000 }),
      volumes: new VolumeChecks([], { hangLimitMs: 30_000 }),
      roleReadiness: () => [],
    }),
  };
  // Request and header timeouts far shorter than a poll, checked often: they bound receiving a
  // request, so a poll outlives them (the partition's are 120 s and 20 s against 60 s polls).
  server = createServer(
    { requestTimeout: 1000, headersTimeout: 1000, connectionsCheckingInterval: 100 },
    createPartitionApp(ctx, { onOwnershipLost: () => undefined, onVolumeFault: () => undefined }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const admin = new MeshworkClient({ baseUrl: url, token: adminToken });
  const user = await admin.createUser('polly');
  laptop = await admin.as(user.token).registerDeviceClient('laptop');
  phone = await admin.as(user.token).registerDeviceClient('phone');
  objectId = (await laptop.createObject({ name: 'Polled' })).id;
});

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await longPolls?.close();
  await changeFeed?.stop();
  etcd?.close();
});

async function currentCursor(): Promise<string> {
  return (await laptop.notifications({ wait: 0 })).cursor;
}

async function commit(path: string): Promise<void> {
  const res = await phone.putEntry(objectId, path, { kind: 'directory' }, { ifNoneMatch: '*' });
  expect(res.created).toBe(true);
}

async function openPolls(count: number): Promise<void> {
  await waitFor(() => longPolls.open === count, {
    description: `${count} open long polls (now ${longPolls.open})`,
    timeoutMs: 5000,
    intervalMs: 10,
  });
}

describe('LongPolls', () => {
  it('counts a waiting poll as open until a commit wakes it', async () => {
    const cursor = await currentCursor();
    const waiting = laptop.notifications({ cursor, wait: 30 });
    await openPolls(1);
    await commit('wake');
    const res = await waiting;
    expect(res.objects.map((o) => o.id)).toEqual([objectId]);
    expect(longPolls.open).toBe(0);
  });

  it('outlives the server request timeout: a poll longer than it ends by its own wait', async () => {
    const cursor = await currentCursor();
    const started = performance.now();
    const res = await laptop.notifications({ cursor, wait: 3 });
    expect(res).toEqual({ objects: [], cursor });
    expect(performance.now() - started).toBeGreaterThanOrEqual(2900);
  });

  it('frees the poll of a client that goes away at once', async () => {
    const cursor = await currentCursor();
    const listing = await laptop.listEntries(objectId);
    const target = new URL(url);
    // Raw node:http: the test destroys each request's socket, the client going away.
    const requests = [`/v1/notifications?cursor=${cursor}&wait=60`, `/v1/objects/${objectId}/changes?cursor=${listing.cursor}&wait=60`].map(
      (path) => {
        const req = httpRequest({ host: target.hostname, port: target.port, path, headers: { authorization: `Bearer ${laptop.token}` } });
        req.on('error', () => undefined);
        req.end();
        return req;
      },
    );
    await openPolls(2);
    const started = performance.now();
    for (const req of requests) req.destroy();
    await openPolls(0);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('keeps waiting through a change-feed restart and is still woken afterwards', async () => {
    const cursor = await currentCursor();
    const listing = await laptop.listEntries(objectId);
    const notified = laptop.notifications({ cursor, wait: 30 });
    const changed = laptop.changes(objectId, { cursor: listing.cursor, wait: 30 });
    await openPolls(2);
    longPolls.onRestart();
    // Both read again, find nothing new and keep waiting (one etcd round trip each).
    await waitFor(async () => (await laptop.getObject(objectId)).id === objectId, { description: 'a read round trip', timeoutMs: 5000 });
    expect(longPolls.open).toBe(2);
    await commit('after-restart');
    expect((await notified).objects.map((o) => o.id)).toEqual([objectId]);
    expect((await changed).changes.map((c) => c.path)).toEqual(['after-restart']);
  });

  it('asks the admission hook once per poll and releases once however the poll ends', async () => {
    const cursor = await currentCursor();
    const before = { acquired: admission.acquired, released: admission.released };
    admission.limit = 1;
    try {
      const target = new URL(url);
      const first = httpRequest({
        host: target.hostname,
        port: target.port,
        path: `/v1/notifications?cursor=${cursor}&wait=60`,
        headers: { authorization: `Bearer ${laptop.token}` },
      });
      first.on('error', () => undefined);
      first.end();
      await openPolls(1);
      // raw: the 429 itself is under test, which a typed call would retry.
      const refused = await laptop.raw('GET', `/v1/notifications?cursor=${cursor}&wait=60`);
      expect(refused.status).toBe(429);
      expect(refused.body).toMatchObject({ error: { code: 'too_many_polls' } });
      // Another device has its own allowance; its poll ends by its wait.
      expect(await phone.notifications({ cursor, wait: 1 })).toEqual({ objects: [], cursor });
      first.destroy();
      await openPolls(0);
    } finally {
      admission.limit = Number.POSITIVE_INFINITY;
    }
    expect(admission.acquired - before.acquired).toBe(2);
    expect(admission.released - before.released).toBe(2);
    expect([...admission.open.values()].every((n) => n === 0)).toBe(true);
  });

  it('answers every waiting poll 503 draining with Retry-After, and new ones too', async () => {
    const cursor = await currentCursor();
    const listing = await laptop.listEntries(objectId);
    // raw: the 503 answers and their headers are under test, which typed calls would retry.
    const polls: Promise<RawResponse>[] = [
      laptop.raw('GET', `/v1/notifications?cursor=${cursor}&wait=60`),
      phone.raw('GET', `/v1/notifications?cursor=${cursor}&wait=60`),
      laptop.raw('GET', `/v1/objects/${objectId}/changes?cursor=${listing.cursor}&wait=60`),
    ];
    await openPolls(3);
    longPolls.drain(7);
    for (const res of await Promise.all(polls)) {
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({ error: { code: 'draining' } });
      expect(res.headers['retry-after']).toBe('7');
      expect(res.headers.connection).toBe('close');
    }
    expect(longPolls.open).toBe(0);
    const late = await laptop.raw('GET', `/v1/notifications?cursor=${cursor}&wait=60`);
    expect(late.status).toBe(503);
    expect(late.body).toMatchObject({ error: { code: 'draining' } });
    expect(late.headers['retry-after']).toBe('7');
    // A poll that would not wait is refused as well; other requests are still served.
    expect((await laptop.raw('GET', `/v1/notifications?cursor=${cursor}&wait=0`)).status).toBe(503);
    expect((await laptop.listEntries(objectId)).next).toBeNull();
  });
});
