// The partition role's process: parse configuration, reach the stores, claim the slots,
// serve HTTP, and exit with a classified code when an invariant cannot be kept.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { Etcd3 } from 'etcd3';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { ConfigError, parsePartitionConfig, type PartitionConfig } from '../config.ts';
import { ExitCode } from '../exit-codes.ts';
import { terminate } from '../termination.ts';
import { BlockStore } from '../stores/block-store.ts';
import { MetadataStore } from '../stores/metadata-store.ts';
import { createPartitionApp } from './app.ts';
import { Authenticator } from './auth.ts';
import { ChangeFeed } from './change-feed.ts';
import type { PartitionContext } from './context.ts';
import { SlotConflictError, SlotMap } from './slot-map.ts';
import { throttleGate } from './throttle/gate.ts';
import { Throttle } from './throttle/throttle.ts';
import { startTombstoneSweeper } from './tombstone-sweeper.ts';

// HTTP timeouts, set on purpose (Node's defaults suit neither uploads nor a proxy in front):
// a whole request (a block is at most 4 MiB) must arrive within two minutes; headers within
// 20 s; idle keep-alive sockets live longer than the gateway's idle timeout (60 s), so the
// gateway always closes first and never reuses a socket this side is closing.
const requestTimeoutMs = 120_000;
const headersTimeoutMs = 20_000;
const keepAliveTimeoutMs = 65_000;
const shutdownGraceMs = 10_000;

function loadConfig(): PartitionConfig {
  try {
    return parsePartitionConfig(process.env, (path) => readFileSync(path, 'utf8'));
  } catch (err) {
    if (err instanceof ConfigError) terminate(ExitCode.configInvalid, err.message);
    throw err;
  }
}

async function waitForStores(config: PartitionConfig, metadata: MetadataStore, blocks: BlockStore, logger: pino.Logger): Promise<void> {
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

/** Runs the partition role until SIGTERM or a fatal condition. */
export async function runPartition(): Promise<void> {
  const config = loadConfig();
  const logger = pino({ level: config.logLevel, base: { role: 'partition', partition: config.partition } });
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'Crashed on an uncaught exception');
    terminate(ExitCode.unexpected, `uncaught exception: ${err.message}`);
  });
  const etcd = new Etcd3({ hosts: config.etcdEndpoints });
  const metadata = new MetadataStore(etcd);
  const blocks = new BlockStore(config.s3);
  await waitForStores(config, metadata, blocks, logger);

  const slotMap = new SlotMap(etcd, logger);
  let fence;
  try {
    fence = await slotMap.register(config.partition, config.slots, config.advertiseUrl, (err) => {
      logger.fatal({ err }, 'Lost the slot lease');
      terminate(ExitCode.ownershipLost, `lost the etcd lease on the slot map record of partition ${config.partition}: ${err.message}`);
    });
  } catch (err) {
    if (err instanceof SlotConflictError) terminate(ExitCode.configInvalid, `invalid configuration: MESHWORK_SLOTS: ${err.message}`);
    throw err;
  }
  metadata.setFence(fence.key, fence.revision);

  const changeFeed = new ChangeFeed(etcd, config.slots, logger);
  await changeFeed.start();

  let ready = false;
  // The process's metrics registry: one per process, shared by everything that exports metrics.
  const registry = new Registry();
  const throttle = new Throttle(config.throttle, { registry, logger });
  const ctx: PartitionContext = {
    config,
    metadata,
    blocks,
    slotMap,
    auth: new Authenticator(config.adminToken, metadata),
    changeFeed,
    logger,
    objectCache: new Map(),
    throttle,
  };
  const app = createPartitionApp(ctx, {
    ready: () => ready,
    onOwnershipLost: (err) => {
      logger.fatal({ err }, 'Lost ownership of the slots');
      terminate(ExitCode.ownershipLost, `fenced: ${err.message}`);
    },
  });
  const server = createServer({ requestTimeout: requestTimeoutMs, headersTimeout: headersTimeoutMs, keepAliveTimeout: keepAliveTimeoutMs }, throttleGate(ctx, app));
  await new Promise<void>((resolve) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      terminate(ExitCode.listenFailed, `cannot listen on ${config.listen.host}:${config.listen.port}: ${err.code ?? err.message}`);
    });
    server.listen(config.listen.port, config.listen.host, resolve);
  });
  throttle.start();
  const stopSweeper = startTombstoneSweeper(metadata, config.slots, config.tombstoneRetentionSeconds, config.sweepIntervalSeconds, logger);
  ready = true;
  logger.info({ listen: `${config.listen.host}:${config.listen.port}`, url: config.advertiseUrl, slots: config.slots }, 'Started partition');

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    ready = false;
    logger.info({ signal }, 'Stopping partition');
    stopSweeper();
    throttle.stop();
    void changeFeed.stop().catch(() => undefined);
    setTimeout(() => {
      logger.warn('Stopped partition before all requests finished');
      process.exit(ExitCode.ok);
    }, shutdownGraceMs).unref();
    server.close(() => {
      slotMap
        .release()
        .catch((err: unknown) => logger.warn({ err }, 'Failed to release the slot lease; it will lapse'))
        .finally(() => {
          etcd.close();
          logger.info('Stopped partition');
          process.exit(ExitCode.ok);
        });
    });
    server.closeIdleConnections();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}
