// Configuration of a data-plane process, read once at start from environment variables (the
// operator's StatefulSet sets them) and validated; a bad value names its variable.
import { hostname } from 'node:os';
import { z } from 'zod';
import { parseByteSize } from './byte-size.ts';
import { parseSlotRanges, SlotRangeError, type SlotRange } from './slots.ts';

/** Raised for invalid configuration; `field` is the environment variable at fault. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly field: string;

  constructor(field: string, message: string, options?: { cause?: unknown }) {
    super(`invalid configuration: ${field}: ${message}`, options);
    this.field = field;
  }
}

/** The partition role's configuration. */
export interface PartitionConfig {
  listen: { host: string; port: number };
  partition: string;
  /** This replica's name within the partition (the pod name), unique among its replicas. */
  replica: string;
  slots: SlotRange[];
  advertiseUrl: string;
  etcdEndpoints: string[];
  s3: { endpoint: URL; bucket: string; region: string; accessKey: string; secretKey: string };
  adminToken: string;
  /** How long deleted entries stay visible to `changes`; older cursors get 410. */
  tombstoneRetentionSeconds: number;
  /** How often the tombstone sweeper runs. */
  sweepIntervalSeconds: number;
  /** How long start-up waits for etcd and S3 before giving up. */
  storeDeadlineSeconds: number;
  /** TTL of the lease the slot-map owner record is held under. */
  slotLeaseSeconds: number;
  /** How long a device's presence lasts without a refresh. */
  presenceTtlSeconds: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Data volumes (one directory per volume), checked at start and periodically. */
  dataDirs: string[];
  /** How often the data volumes are checked; 0 disables the periodic check. */
  volumeCheckIntervalSeconds: number;
  /** A data volume with fewer bytes available than this is full: a volume fault. */
  volumeMinFreeBytes: number;
  /** How long a SIGTERM drain may take before the process exits anyway. */
  shutdownGraceSeconds: number;
  /** /livez fails while the event loop stalled longer than this within the last 10 s. */
  livenessMaxEventLoopDelayMs: number;
  /** Where traces are exported with OTLP/HTTP; tracing is off when absent. */
  otlpEndpoint: string | undefined;
  throttle: ThrottleConfig;
}

/** Static bounds per user and per device, and the process's dynamic limits (see partition/throttle/). */
export interface ThrottleConfig {
  userRequestsPerSecond: number;
  userBurst: number;
  deviceRequestsPerSecond: number;
  deviceBurst: number;
  /** Request and response bodies, per user and per device. */
  userBytesPerSecond: number;
  deviceBytesPerSecond: number;
  /** Long polls one device may hold open at once. */
  deviceLongPolls: number;
  /** The largest entry (file size) a commit may name. */
  maxEntryBytes: number;
  /** Mean event-loop delay above which new requests are shed. */
  eventLoopLagMs: number;
  /** Bounds of the adaptive concurrency limit. */
  concurrency: { min: number; max: number };
}

const listenSchema = z
  .string()
  .regex(/^[^\s:]+:\d{1,5}$/, 'must be host:port')
  .transform((text) => {
    const at = text.lastIndexOf(':');
    return { host: text.slice(0, at), port: Number(text.slice(at + 1)) };
  })
  .refine((l) => l.port <= 65535, 'port must be at most 65535');
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http or https URL' });
const seconds = (fallback: number, min: number) => z.coerce.number().int().min(min).default(fallback);
const count = (fallback: number, max = 1_000_000_000) => z.coerce.number().int().min(1).max(max).default(fallback);
const bytes = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((text, ctx) => {
      const value = parseByteSize(text);
      if (value === undefined || value < 1) {
        ctx.addIssue({ code: 'custom', message: 'must be a whole number of bytes, at least 1, such as 67108864 or 64Mi' });
        return z.NEVER;
      }
      return value;
    });

const envSchema = z.object({
  MESHWORK_LISTEN: listenSchema.default({ host: '0.0.0.0', port: 8080 }),
  MESHWORK_PARTITION: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be a DNS label (lower-case letters, digits, "-")'),
  MESHWORK_POD_NAME: z
    .string()
    .regex(/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/, 'must be a DNS subdomain (lower-case letters, digits, ".", "-")')
    .optional(),
  MESHWORK_SLOTS: z.string().transform((text, ctx) => {
    try {
      return parseSlotRanges(text);
    } catch (err) {
      if (!(err instanceof SlotRangeError)) throw err;
      ctx.addIssue({ code: 'custom', message: err.message });
      return z.NEVER;
    }
  }),
  MESHWORK_ADVERTISE_URL: httpUrl.optional(),
  MESHWORK_ETCD_ENDPOINTS: z
    .string()
    .transform((text) => text.split(',').map((e) => e.trim()).filter((e) => e !== ''))
    .pipe(z.array(httpUrl).min(1, 'must list at least one endpoint')),
  MESHWORK_S3_ENDPOINT: httpUrl.transform((u) => new URL(u)),
  MESHWORK_S3_BUCKET: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a valid bucket name'),
  MESHWORK_S3_REGION: z.string().min(1).default('us-east-1'),
  MESHWORK_TOMBSTONE_RETENTION_SECONDS: seconds(7 * 24 * 3600, 0),
  MESHWORK_SWEEP_INTERVAL_SECONDS: seconds(300, 1),
  MESHWORK_STORE_DEADLINE_SECONDS: seconds(30, 1),
  MESHWORK_SLOT_LEASE_TTL_SECONDS: seconds(10, 2),
  // etcd grants no lease shorter than about 2 s (1.5 election timeouts by default).
  MESHWORK_PRESENCE_TTL_SECONDS: seconds(60, 2),
  MESHWORK_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  MESHWORK_DATA_DIRS: z
    .string()
    .default('')
    .transform((text) => text.split(',').map((d) => d.trim().replace(/(?<=.)\/+$/, '')).filter((d) => d !== ''))
    .refine((dirs) => dirs.every((d) => d.startsWith('/')), 'must list absolute paths')
    .refine((dirs) => new Set(dirs).size === dirs.length, 'lists a directory twice'),
  MESHWORK_VOLUME_CHECK_INTERVAL_SECONDS: seconds(10, 0),
  MESHWORK_VOLUME_MIN_FREE_BYTES: bytes('16Mi'),
  // Below Kubernetes' default terminationGracePeriodSeconds (30), so the process exits on its own.
  MESHWORK_SHUTDOWN_GRACE_SECONDS: seconds(25, 1),
  MESHWORK_LIVENESS_MAX_EVENT_LOOP_DELAY_MS: z.coerce.number().int().min(10).default(5000),
  // The standard OpenTelemetry variable; empty counts as unset, as the OpenTelemetry SDKs treat it.
  OTEL_EXPORTER_OTLP_ENDPOINT: z.preprocess((v) => (v === '' ? undefined : v), httpUrl.optional()),
  // Defaults suit a 2-core / 8 GiB pod; the MeshPartition's spec.throttling sets them (ADR 7).
  MESHWORK_THROTTLE_USER_RPS: count(100),
  MESHWORK_THROTTLE_USER_BURST: count(200),
  MESHWORK_THROTTLE_DEVICE_RPS: count(50),
  MESHWORK_THROTTLE_DEVICE_BURST: count(100),
  MESHWORK_THROTTLE_USER_BYTES_PER_SECOND: bytes('64Mi'),
  MESHWORK_THROTTLE_DEVICE_BYTES_PER_SECOND: bytes('32Mi'),
  MESHWORK_THROTTLE_DEVICE_LONG_POLLS: count(4, 10_000),
  MESHWORK_THROTTLE_MAX_ENTRY_BYTES: bytes('16Gi'),
  MESHWORK_THROTTLE_EVENT_LOOP_LAG_MS: count(100, 60_000),
  MESHWORK_THROTTLE_CONCURRENCY_MIN: count(4, 100_000),
  MESHWORK_THROTTLE_CONCURRENCY_MAX: count(512, 100_000),
});

/** Reads a secret file; injected so that parsing stays testable without files. */
export type SecretReader = (path: string) => string;

/** Resolves NAME from NAME or from the file named by NAME_FILE (exactly one must be set). */
function secretFromEnv(env: NodeJS.ProcessEnv, name: string, readSecret: SecretReader): string {
  const direct = env[name];
  const file = env[`${name}_FILE`];
  if (direct !== undefined && file !== undefined) throw new ConfigError(name, `set either ${name} or ${name}_FILE, not both`);
  if (direct !== undefined) {
    if (direct === '') throw new ConfigError(name, 'is empty');
    return direct;
  }
  if (file === undefined) throw new ConfigError(name, `is required (or ${name}_FILE naming a file that holds it)`);
  return readSecretFile(`${name}_FILE`, file, readSecret);
}

function readSecretFile(field: string, path: string, readSecret: SecretReader): string {
  let value: string;
  try {
    value = readSecret(path).trim();
  } catch (err) {
    throw new ConfigError(field, `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (value === '') throw new ConfigError(field, `${path} is empty`);
  return value;
}

/** Parses and validates the partition role's configuration from `env`. */
export function parsePartitionConfig(env: NodeJS.ProcessEnv, readSecret: SecretReader): PartitionConfig {
  const result = envSchema.safeParse(env);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = String(issue.path[0] ?? 'environment');
    const value = env[field];
    throw new ConfigError(field, value === undefined ? 'is required' : issue.message);
  }
  const e = result.data;
  const adminTokenFile = env.MESHWORK_ADMIN_TOKEN_FILE;
  if (adminTokenFile === undefined || adminTokenFile === '') {
    throw new ConfigError('MESHWORK_ADMIN_TOKEN_FILE', 'is required (a file holding the administrator token)');
  }
  const adminToken = readSecretFile('MESHWORK_ADMIN_TOKEN_FILE', adminTokenFile, readSecret);
  if (adminToken.length < 16) throw new ConfigError('MESHWORK_ADMIN_TOKEN_FILE', 'the token must be at least 16 characters');
  if (e.MESHWORK_THROTTLE_CONCURRENCY_MIN > e.MESHWORK_THROTTLE_CONCURRENCY_MAX) {
    throw new ConfigError('MESHWORK_THROTTLE_CONCURRENCY_MIN', `must not exceed MESHWORK_THROTTLE_CONCURRENCY_MAX (${e.MESHWORK_THROTTLE_CONCURRENCY_MAX})`);
  }
  const listenHost = e.MESHWORK_LISTEN.host;
  const advertiseHost = listenHost === '0.0.0.0' || listenHost === '::' ? '127.0.0.1' : listenHost;
  return {
    listen: e.MESHWORK_LISTEN,
    partition: e.MESHWORK_PARTITION,
    replica: e.MESHWORK_POD_NAME ?? hostname(),
    slots: e.MESHWORK_SLOTS,
    advertiseUrl: (e.MESHWORK_ADVERTISE_URL ?? `http://${advertiseHost}:${e.MESHWORK_LISTEN.port}`).replace(/\/+$/, ''),
    etcdEndpoints: e.MESHWORK_ETCD_ENDPOINTS,
    s3: {
      endpoint: e.MESHWORK_S3_ENDPOINT,
      bucket: e.MESHWORK_S3_BUCKET,
      region: e.MESHWORK_S3_REGION,
      accessKey: secretFromEnv(env, 'MESHWORK_S3_ACCESS_KEY', readSecret),
      secretKey: secretFromEnv(env, 'MESHWORK_S3_SECRET_KEY', readSecret),
    },
    adminToken,
    tombstoneRetentionSeconds: e.MESHWORK_TOMBSTONE_RETENTION_SECONDS,
    sweepIntervalSeconds: e.MESHWORK_SWEEP_INTERVAL_SECONDS,
    storeDeadlineSeconds: e.MESHWORK_STORE_DEADLINE_SECONDS,
    slotLeaseSeconds: e.MESHWORK_SLOT_LEASE_TTL_SECONDS,
    presenceTtlSeconds: e.MESHWORK_PRESENCE_TTL_SECONDS,
    logLevel: e.MESHWORK_LOG_LEVEL,
    dataDirs: e.MESHWORK_DATA_DIRS,
    volumeCheckIntervalSeconds: e.MESHWORK_VOLUME_CHECK_INTERVAL_SECONDS,
    volumeMinFreeBytes: e.MESHWORK_VOLUME_MIN_FREE_BYTES,
    shutdownGraceSeconds: e.MESHWORK_SHUTDOWN_GRACE_SECONDS,
    livenessMaxEventLoopDelayMs: e.MESHWORK_LIVENESS_MAX_EVENT_LOOP_DELAY_MS,
    otlpEndpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT,
    throttle: {
      userRequestsPerSecond: e.MESHWORK_THROTTLE_USER_RPS,
      userBurst: e.MESHWORK_THROTTLE_USER_BURST,
      deviceRequestsPerSecond: e.MESHWORK_THROTTLE_DEVICE_RPS,
      deviceBurst: e.MESHWORK_THROTTLE_DEVICE_BURST,
      userBytesPerSecond: e.MESHWORK_THROTTLE_USER_BYTES_PER_SECOND,
      deviceBytesPerSecond: e.MESHWORK_THROTTLE_DEVICE_BYTES_PER_SECOND,
      deviceLongPolls: e.MESHWORK_THROTTLE_DEVICE_LONG_POLLS,
      maxEntryBytes: e.MESHWORK_THROTTLE_MAX_ENTRY_BYTES,
      eventLoopLagMs: e.MESHWORK_THROTTLE_EVENT_LOOP_LAG_MS,
      concurrency: { min: e.MESHWORK_THROTTLE_CONCURRENCY_MIN, max: e.MESHWORK_THROTTLE_CONCURRENCY_MAX },
    },
  };
}
