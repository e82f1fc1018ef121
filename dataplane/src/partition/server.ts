// The partition role's process: parse configuration, reach the stores, claim the slots,
// serve HTTP, and exit with a classified code when an invariant cannot be kept.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { hostname } from 'node:os';
import { Etcd3 } from 'etcd3';
import type { Logger } from 'pino';
import { ConfigError, parsePartitionConfig, type PartitionConfig } from '../config.ts';
import { EventLoopMonitor } from '../health/event-loop.ts';
import { ProcessHealth } from '../health/health.ts';
import { StoreReachability } from '../health/store-reachability.ts';
import { TimeoutError, withTimeout } from '../health/timeout.ts';
import { VolumeChecks } from '../health/volume-checks.ts';
import { DataVolume, VolumeFaultError, type VolumeCheckLimits } from '../health/volumes.ts';
import { drainOnSignal, terminate } from '../termination.ts';
import { BlockStore, type S3CallHook } from '../stores/block-store.ts';
import { MetadataStore } from '../stores/metadata-store.ts';
import { createLogger } from '../telemetry/logger.ts';
import { DataplaneMetrics } from '../telemetry/metrics.ts';
import { instrumentAsyncMethods, storeCallRecorder, type StoreCall } from '../telemetry/store-calls.ts';
import { startTracing } from '../telemetry/tracing.ts';
import { Gauge } from 'prom-client';
import { GrantKeys } from '../stores/grant-keys.ts';
import { RelayHub } from './relay/relay-hub.ts';
import { relayUpgradeHandler } from './relay/relay-upgrade.ts';
import { PresenceStore } from '../stores/presence-store.ts';
import { ApiError, ExitCode } from '@meshwork/contract';
import { createPartitionApp } from './app.ts';
import { Authenticator, CredentialWatch } from './auth.ts';
import { ChangeFeed } from './change-feed.ts';
import type { PartitionContext } from './context.ts';
import { ConnectionTracker, drainServer } from './drain.ts';
import { PossessionCache } from './sync/possession-cache.ts';
import { QuotaCache } from './sync/quota-cache.ts';
import { LongPolls } from './long-poll/long-polls.ts';
import { SlotConflictError, SlotMap } from './slot-map.ts';
import { SlotOwners } from './slot-owners.ts';
import { throttleGate } from './throttle/gate.ts';
import { Throttle } from './throttle/throttle.ts';
import { startTombstoneSweeper } from './tombstone-sweeper.ts';
import { defaultTakeoverSeconds, startBlockCollector } from './sync/block-collector.ts';

// HTTP timeouts, set on purpose (Node's defaults suit neither uploads nor a proxy in front):
// a whole request (a block is at most 4 MiB) must arrive within two minutes; headers within
// 20 s; idle keep-alive sockets live longer than the gateway's idle timeout (60 s), so the
// gateway always closes first and never reuses a socket this side is closing. Long polls
// (up to 60 s) are not cut by requestTimeout: it bounds receiving a request, not answering it;
// a proxy in front must allow a response at least 60 s plus a margin.
const requestTimeoutMs = 120_000;
const headersTimeoutMs = 20_000;
const keepAliveTimeoutMs = 65_000;
// Readiness: a round trip to each store every 5 s (2 s timeout); ready while one succeeded
// within the last 15 s, so one slow answer does not flap readiness.
const storeProbe = { intervalMs: 5000, timeoutMs: 2000, staleAfterMs: 15_000 };
// A volume check waits this long before calling the volume slow; I/O hung for the hang limit
// is a fault.
const volumeCheckWaitMs = 5000;
const volumeHangLimitMs = 30_000;

function loadConfig(): PartitionConfig {
  try {
    return parsePartitionConfig(process.env, (path) => readFileSync(path, 'utf8'));
  } catch (err) {
    if (err instanceof ConfigError) terminate(ExitCode.configInvalid, err.message);
    throw err;
  }
}

async function waitForStores(config: PartitionConfig, metadata: MetadataStore, blocks: BlockStore, logger: Logger): Promise<void> {
  const deadline = Date.now() + config.storeDeadlineSeconds * 1000;
  let lastError: unknown;
  for (let attempt = 1; Date.now() < deadline; attempt++) {
    try {
      await Promise.all([metadata.currentRevision(), blocks.ping()]);
      return;
    } catch (err) {
      lastError = err;
      if (attempt === 1) logger.warn({ err }, 'Failed to reach the stores; retrying until the deadline');
      await delay(Math.min(1000, 100 * attempt));
    }
  }
  terminate(
    ExitCode.storeUnreachable,
    `stores unreachable for ${config.storeDeadlineSeconds} s (etcd ${config.etcdEndpoints.join(',')}, S3 ${config.s3.endpoint.origin}/${config.s3.bucket}): ${String(lastError)}`,
  );
}

/** Opens every data volume (identity, one check); a volume that fails is a volume-fault exit. */
async function openVolumes(dirs: readonly string[], limits: VolumeCheckLimits, logger: Logger): Promise<DataVolume[]> {
  const volumes: DataVolume[] = [];
  for (const dir of dirs) {
    try {
      const volume = await withTimeout(DataVolume.open(dir, limits), volumeHangLimitMs);
      const { id, createdAt } = volume.identity;
      logger.info({ dir, volumeId: id, createdAt }, volume.created ? 'Initialised a new data volume' : 'Opened data volume');
      volumes.push(volume);
    } catch (err) {
      const fault =
        err instanceof TimeoutError ? new VolumeFaultError(dir, `I/O has not completed for ${volumeHangLimitMs / 1000} s`) : err;
      if (!(fault instanceof VolumeFaultError)) throw err;
      logger.fatal({ dir, reason: fault.reason }, 'Found a faulty data volume at start');
      terminate(ExitCode.volumeFault, fault.message);
    }
  }
  return volumes;
}

/** Runs the partition role until SIGTERM or a fatal condition. */
export async function runPartition(): Promise<void> {
  const config = loadConfig();
  // The SDK may warn before the logger exists (it needs to know whether tracing is on).
  const warnings: { logger?: Logger } = {};
  const tracing = await startTracing({
    serviceName: 'meshwork-partition',
    endpoint: config.otlpEndpoint,
    resource: { 'meshwork.partition': config.partition, 'service.instance.id': process.env.MESHWORK_POD_NAME ?? hostname() },
    warn: (message) => warnings.logger?.warn({ otel: message }, 'Tracing reported a problem'),
  });
  const log = createLogger({ level: config.logLevel, base: { role: 'partition', partition: config.partition }, tracing });
  warnings.logger = log;
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'Crashed on an uncaught exception');
    terminate(ExitCode.unexpected, `uncaught exception: ${err.message}`);
  });
  // Volumes first: a member whose disk is bad must not claim slots.
  const volumes = await openVolumes(config.dataDirs, { minFreeBytes: config.volumeMinFreeBytes }, log);

  // Read at scrape time, when the context exists.
  const metrics = new DataplaneMetrics('partition', () => ctx.longPolls.open);
  const storeCall = storeCallRecorder(metrics, tracing);
  const s3Call: S3CallHook = (operation, run, failed) =>
    storeCall(
      's3',
      operation,
      () => {
        // Injected inside the S3 span, so the request carries it as the parent.
        const headers: Record<string, string> = {};
        tracing.inject(headers);
        return run(headers);
      },
      failed,
    );
  const etcd = new Etcd3({ hosts: config.etcdEndpoints });
  // The etcd client's own errors pass through as they are: errors.ts recognises them by class (503).
  const etcdCall: StoreCall = storeCall;
  const metadata = instrumentAsyncMethods(new MetadataStore(etcd), 'etcd', etcdCall);
  const blocks = new BlockStore(
    { ...config.s3, onRead: (storeChecked) => metrics.blockReads.inc({ check: storeChecked ? 'store' : 'hash' }) },
    s3Call,
  );
  await waitForStores(config, metadata, blocks, log);

  // ownerOf answers mostly from a cache; its misses call list(), which is measured.
  // verifyOwnership settles a claim (it may wait for etcd for as long as an outage lasts): not one store call.
  const slotMap = instrumentAsyncMethods(new SlotMap(etcd, log, config.slotLeaseSeconds), 'etcd', etcdCall, {
    prefix: 'slotMap.',
    skip: ['ownerOf', 'verifyOwnership'],
  });
  let fence;
  try {
    // A lapsed lease (etcd unreachable for longer than its TTL) is re-acquired, not an exit (ADR 8);
    // writes are refused with 503 until the fence has moved to the new owner record.
    fence = await slotMap.register(config.partition, config.replica, config.slots, config.advertiseUrl, {
      onSuspended: (reason) => {
        log.warn({ err: reason }, 'Suspended writes until the slots are re-acquired');
        metadata.suspendWrites(
          () =>
            new ApiError('ownership_lost', 'this process is re-acquiring ownership of its slots after losing its etcd lease; retry', {
              headers: { 'Retry-After': '1' },
            }),
        );
      },
      onReacquired: (next) => {
        metadata.setFence(next.key, next.revision);
        log.info({ key: next.key, revision: next.revision }, 'Resumed writes, fenced on the owner record');
      },
      onTaken: (err) => {
        log.fatal({ err }, 'Lost the slots to another process');
        terminate(ExitCode.ownershipLost, `fenced: ${err.message}`);
      },
    });
  } catch (err) {
    if (err instanceof SlotConflictError) terminate(ExitCode.configInvalid, `invalid configuration: MESHWORK_SLOTS: ${err.message}`);
    throw err;
  }
  metadata.setFence(fence.key, fence.revision);
  // Before the first request: what this partition serves is what the owner keys say (ADR 34).
  const owners = new SlotOwners(etcd, config.partition, config.slots, log);
  await owners.start();

  const changeFeed = new ChangeFeed(etcd, config.slots, log);
  await changeFeed.start();
  const auth = new Authenticator(config.adminToken, metadata);
  // Before the first request: a revocation seen by no watch would last the cache's time to live.
  const credentialWatch = new CredentialWatch(etcd, auth, log);
  await credentialWatch.start();
  const throttle = new Throttle(config.throttle, { registry: metrics.registry, logger: log });
  // Each device may hold at most MESHWORK_THROTTLE_DEVICE_LONG_POLLS polls open at once.
  const longPolls = new LongPolls({ metadata, etcd, changeFeed, slots: config.slots, logger: log, admission: throttle.longPollAdmission });
  const presence = new PresenceStore(etcd, config.presenceTtlSeconds);
  // Created by the first process of the mesh, read by every other (ADR 51).
  const grants = new GrantKeys(etcd);
  await grants.load();
  const relay = new RelayHub({ etcd, self: { pod: config.replica, address: config.advertiseUrl }, logger: log, bounds: config.relay });
  new Gauge({
    name: 'meshwork_relays_open',
    help: 'Device relays (ADR 52) this process holds now.',
    registers: [metrics.registry],
    collect() {
      this.set(relay.size);
    },
  });
  grants.startRefresh(60_000, (err) => log.warn({ err }, 'Failed to re-read the grant keys; signing with those held'));

  const eventLoop = new EventLoopMonitor({ limitMs: config.livenessMaxEventLoopDelayMs });
  eventLoop.start();
  const stores = new StoreReachability(
    [
      { name: 'etcd', roundTrip: async () => void (await metadata.currentRevision()) },
      { name: 's3', roundTrip: () => blocks.ping() },
    ],
    storeProbe,
  );
  stores.markAllReachable();
  stores.start();
  const volumeChecks = new VolumeChecks(volumes, { hangLimitMs: volumeHangLimitMs });
  const health = new ProcessHealth({
    eventLoop,
    stores,
    volumes: volumeChecks,
    roleReadiness: () => [{ name: 'slots', ...slotMap.leaseStatus() }],
  });
  const onVolumeFault = (fault: VolumeFaultError): void => {
    log.fatal({ dir: fault.dir, reason: fault.reason }, 'Found a volume fault');
    terminate(ExitCode.volumeFault, fault.message);
  };

  const ctx: PartitionContext = {
    config,
    metadata,
    blocks,
    slotMap,
    owners,
    auth,
    changeFeed,
    longPolls,
    presence,
    grants,
    relay,
    logger: log,
    objectCache: new Map(),
    possession: new PossessionCache(),
    quotas: new QuotaCache(metadata),
    metrics,
    tracing,
    health,
    throttle,
  };
  const app = createPartitionApp(ctx, {
    // The owner record moved: it lapsed (re-acquired), or another process took the slots (onTaken exits).
    onOwnershipLost: (err) => {
      log.warn({ err }, 'Found the fence moved; checking ownership of the slots');
      slotMap.verifyOwnership(err).catch((failure: unknown) => {
        log.fatal({ err: failure }, 'Failed to check ownership of the slots');
        terminate(ExitCode.ownershipLost, `fenced: ${err.message}`);
      });
    },
    onVolumeFault,
  });
  const gate = throttleGate({ throttle, authenticate: (header, cookie) => ctx.auth.authenticate(header, cookie), logger: log }, app);
  const server = createServer(
    { requestTimeout: requestTimeoutMs, headersTimeout: headersTimeoutMs, keepAliveTimeout: keepAliveTimeoutMs },
    gate,
  );
  server.on(
    'upgrade',
    relayUpgradeHandler({
      auth,
      partition: config.partition,
      slots: config.slots,
      slotMap,
      hub: relay,
      draining: () => health.draining,
      logger: log,
    }),
  );
  // From the first connection: the drain closes a kept-alive socket only once it is idle and quiet.
  const connections = new ConnectionTracker(server);
  await new Promise<void>((resolve) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      terminate(ExitCode.listenFailed, `cannot listen on ${config.listen.host}:${config.listen.port}: ${err.code ?? err.message}`);
    });
    server.listen(config.listen.port, config.listen.host, resolve);
  });
  throttle.start();
  const stopSweeper = startTombstoneSweeper(metadata, config.slots, config.tombstoneRetentionSeconds, config.sweepIntervalSeconds, log);
  const collectorDeps = { metadata, blocks, timing: { graceSeconds: config.blockGraceSeconds, takeoverSeconds: defaultTakeoverSeconds } };
  const stopCollector = startBlockCollector(collectorDeps, config.slots, config.collectIntervalSeconds, log);
  volumeChecks.startPeriodic(config.volumeCheckIntervalSeconds, volumeCheckWaitMs, onVolumeFault);
  log.info(
    {
      listen: `${config.listen.host}:${config.listen.port}`,
      url: config.advertiseUrl,
      slots: config.slots,
      volumes: volumes.length,
      tracing: tracing.enabled,
    },
    'Started partition',
  );

  drainOnSignal({
    graceSeconds: config.shutdownGraceSeconds,
    log,
    startDraining: () => health.startDraining(),
    drain: async (signal, graceMs) => {
      log.info({ signal, graceSeconds: config.shutdownGraceSeconds, longPolls: ctx.longPolls.open }, 'Started draining');
      stopSweeper();
      stopCollector();
      // Upgraded sockets are no request the drain waits for: close the relays now, devices reconnect to another replica.
      await relay.close();
      throttle.stop();
      volumeChecks.stop();
      stores.stop();
      // Kept back from the grace period: releasing the lease and flushing traces.
      const reserveMs = Math.min(2000, graceMs / 5);
      const drained = await drainServer(connections, longPolls, graceMs - reserveMs);
      if (!drained) log.warn('Closed connections whose requests were still running at the drain deadline');
      await longPolls.close().catch(() => undefined);
      presence.close();
      grants.stop();
      await changeFeed.stop().catch(() => undefined);
      await owners.stop().catch(() => undefined);
      await credentialWatch.stop().catch((err: unknown) => log.warn({ err }, 'Failed to stop the credential watch'));
      // Only now: in-flight writes are fenced on the owner record the lease keeps alive.
      await withTimeout(slotMap.release(), reserveMs / 2).catch((err: unknown) =>
        log.warn({ err }, 'Failed to release the slot lease; it will lapse'),
      );
      await tracing.shutdown(reserveMs / 4);
      eventLoop.stop();
      etcd.close();
      log.info({ drained }, 'Stopped partition');
      process.exit(ExitCode.ok);
    },
  });
}
