// The environment of Meshwork's processes: every variable name as a constant, and the one schema
// of a partition pod's environment with its defaults. The operator builds that environment (its
// ConfigMap and the StatefulSet's container env) against these names, and the data plane parses
// it with this schema, so a variable renamed or a format changed on one side fails to compile or
// fails the test that parses what the operator builds, instead of failing in a pod.
import { z } from 'zod';
import { parseByteSize } from './byte-size.ts';
import { defaultTerminationMessagePath } from './exit-codes.ts';
import { dataplaneHttpPort } from './ports.ts';
import { parseSlotRanges, SlotRangeError } from './slots.ts';

/** Every variable of a partition pod's environment: what the data plane reads and what the operator sets. */
export const PartitionEnv = {
  /** `host:port` to listen on. */
  listen: 'MESHWORK_LISTEN',
  /** The partition's name (a DNS label). */
  partition: 'MESHWORK_PARTITION',
  /** The replica's name (the pod name); keys its owner record in the slot map. */
  podName: 'MESHWORK_POD_NAME',
  /** The pod's IP (downward API); the operator's listen address refers to it as `$(MESHWORK_POD_IP)`. */
  podIp: 'MESHWORK_POD_IP',
  /** The node the pod runs on (downward API), for logs and a person reading the environment. */
  nodeName: 'MESHWORK_NODE_NAME',
  /** Owned slot ranges, `0-1023,2048-2100`. */
  slots: 'MESHWORK_SLOTS',
  /** The URL other components reach the replica at (sent with 421). */
  advertiseUrl: 'MESHWORK_ADVERTISE_URL',
  /** Comma-separated etcd URLs. */
  etcdEndpoints: 'MESHWORK_ETCD_ENDPOINTS',
  s3Endpoint: 'MESHWORK_S3_ENDPOINT',
  s3Bucket: 'MESHWORK_S3_BUCKET',
  s3Region: 'MESHWORK_S3_REGION',
  /** S3 credentials, each given directly or as a file named by the same name with `_FILE`. */
  s3AccessKey: 'MESHWORK_S3_ACCESS_KEY',
  s3AccessKeyFile: 'MESHWORK_S3_ACCESS_KEY_FILE',
  s3SecretKey: 'MESHWORK_S3_SECRET_KEY',
  s3SecretKeyFile: 'MESHWORK_S3_SECRET_KEY_FILE',
  /** An optional session token of temporary credentials, directly or as a file (`_FILE`). */
  s3SessionToken: 'MESHWORK_S3_SESSION_TOKEN',
  s3SessionTokenFile: 'MESHWORK_S3_SESSION_TOKEN_FILE',
  /** `path` (bucket in the path, the default: MinIO) or `virtual` (bucket in the host name). */
  s3Addressing: 'MESHWORK_S3_ADDRESSING',
  /**
   * The store's address as clients reach it (`https://s3.example.com`). When set, `GET
   * /v1/blocks/{sha256}` answers `307` to a presigned URL there instead of streaming the block.
   */
  s3DownloadRedirectEndpoint: 'MESHWORK_S3_DOWNLOAD_REDIRECT_ENDPOINT',
  /** How long a redirect's presigned URL stays valid. */
  s3DownloadRedirectSeconds: 'MESHWORK_S3_DOWNLOAD_REDIRECT_SECONDS',
  /**
   * `store` (default): a block read is not hashed again when the sha256 checksum the store kept
   * since its write names it; `hash`: every block read is hashed.
   */
  s3ReadCheck: 'MESHWORK_S3_READ_CHECK',
  /**
   * `on`: `POST /v1/blocks/uploads` answers presigned PUT URLs at the store's public address (the
   * download redirect's endpoint, required) for users without a quota (ADR 80); `off` (default): none.
   */
  s3UploadRedirect: 'MESHWORK_S3_UPLOAD_REDIRECT',
  /** A file holding the administrator token (from a Secret). */
  adminTokenFile: 'MESHWORK_ADMIN_TOKEN_FILE',
  tombstoneRetentionSeconds: 'MESHWORK_TOMBSTONE_RETENTION_SECONDS',
  sweepIntervalSeconds: 'MESHWORK_SWEEP_INTERVAL_SECONDS',
  /** How long an uploaded block no entry names is kept for the commit that will name it (ADR 24). */
  blockGraceSeconds: 'MESHWORK_BLOCK_GRACE_SECONDS',
  /** How often the block collector runs over the partition's slots (one etcd range read per slot). */
  collectIntervalSeconds: 'MESHWORK_COLLECT_INTERVAL_SECONDS',
  storeDeadlineSeconds: 'MESHWORK_STORE_DEADLINE_SECONDS',
  /** TTL of the lease the partition's slot-map owner record is held under. */
  slotLeaseTtlSeconds: 'MESHWORK_SLOT_LEASE_TTL_SECONDS',
  presenceTtlSeconds: 'MESHWORK_PRESENCE_TTL_SECONDS',
  logLevel: 'MESHWORK_LOG_LEVEL',
  /** Where the one-line reason of a fatal exit goes; read before the rest, so a bad configuration can be reported. */
  terminationMessagePath: 'MESHWORK_TERMINATION_MESSAGE_PATH',
  dataDirs: 'MESHWORK_DATA_DIRS',
  volumeCheckIntervalSeconds: 'MESHWORK_VOLUME_CHECK_INTERVAL_SECONDS',
  /** Free space below which a data volume counts as full (a volume fault). */
  volumeMinFreeBytes: 'MESHWORK_VOLUME_MIN_FREE_BYTES',
  shutdownGraceSeconds: 'MESHWORK_SHUTDOWN_GRACE_SECONDS',
  livenessMaxEventLoopDelayMs: 'MESHWORK_LIVENESS_MAX_EVENT_LOOP_DELAY_MS',
  /** The standard OpenTelemetry variable: where traces go; unset, tracing is off. */
  otlpEndpoint: 'OTEL_EXPORTER_OTLP_ENDPOINT',
  /** Node.js's own variable: the data plane's flags (node-flags.ts) reach the pods through it. */
  nodeOptions: 'NODE_OPTIONS',
  throttleUserRps: 'MESHWORK_THROTTLE_USER_RPS',
  throttleUserBurst: 'MESHWORK_THROTTLE_USER_BURST',
  throttleDeviceRps: 'MESHWORK_THROTTLE_DEVICE_RPS',
  throttleDeviceBurst: 'MESHWORK_THROTTLE_DEVICE_BURST',
  throttleUserBytesPerSecond: 'MESHWORK_THROTTLE_USER_BYTES_PER_SECOND',
  throttleDeviceBytesPerSecond: 'MESHWORK_THROTTLE_DEVICE_BYTES_PER_SECOND',
  throttleDeviceLongPolls: 'MESHWORK_THROTTLE_DEVICE_LONG_POLLS',
  throttleMaxEntryBytes: 'MESHWORK_THROTTLE_MAX_ENTRY_BYTES',
  throttleEventLoopLagMs: 'MESHWORK_THROTTLE_EVENT_LOOP_LAG_MS',
  throttleConcurrencyMin: 'MESHWORK_THROTTLE_CONCURRENCY_MIN',
  throttleConcurrencyMax: 'MESHWORK_THROTTLE_CONCURRENCY_MAX',
  /** Requests in flight to one device through its relay (ADR 52). */
  relayMaxStreams: 'MESHWORK_RELAY_MAX_STREAMS',
  /** Bytes per second one device's relay carries (ADR 52, ADR 65). */
  relayBytesPerSecond: 'MESHWORK_RELAY_BYTES_PER_SECOND',
} as const;

/** The name of a variable of a partition pod's environment. */
export type PartitionEnvName = (typeof PartitionEnv)[keyof typeof PartitionEnv];

/** A partition pod's environment (or part of it) as the operator writes it: only known names, every value a string. */
export type PartitionEnvironment = Partial<Record<PartitionEnvName, string>>;

/** Every variable of the operator's own environment (the Helm chart's Deployment sets them). */
export const OperatorEnv = {
  kubeconfig: 'KUBECONFIG',
  namespace: 'MESHWORK_OPERATOR_NAMESPACE',
  /** The namespace of the operator's pod (downward API), the fallback for `namespace`. */
  podNamespace: 'POD_NAMESPACE',
  watchNamespace: 'MESHWORK_OPERATOR_WATCH_NAMESPACE',
  httpAddress: 'MESHWORK_OPERATOR_HTTP_ADDRESS',
  concurrency: 'MESHWORK_OPERATOR_CONCURRENCY',
  leaderElect: 'MESHWORK_OPERATOR_LEADER_ELECT',
  leaseName: 'MESHWORK_OPERATOR_LEASE_NAME',
  identity: 'MESHWORK_OPERATOR_IDENTITY',
  image: 'MESHWORK_IMAGE',
  maxUnhealthyPercent: 'MESHWORK_WATCHDOG_MAX_UNHEALTHY_PERCENT',
  logLevel: 'MESHWORK_LOG_LEVEL',
} as const;

/** The name of a variable of the operator's environment. */
export type OperatorEnvName = (typeof OperatorEnv)[keyof typeof OperatorEnv];

/** pino's levels, as `MESHWORK_LOG_LEVEL` takes them. */
export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** A pino level. */
export type LogLevel = (typeof logLevels)[number];

/**
 * The partition's throttling defaults, sized for a 2-core / 8 GiB pod (ADR 7): the data plane's
 * schema below defaults to them, and the MeshPartition CRD defaults `spec.throttling` to them.
 */
export const throttlingDefaults = {
  userRequestsPerSecond: 100,
  userBurst: 200,
  deviceRequestsPerSecond: 50,
  deviceBurst: 100,
  userBytesPerSecond: '64Mi',
  deviceBytesPerSecond: '32Mi',
  deviceLongPolls: 4,
  maxEntrySize: '16Gi',
  eventLoopLagMilliseconds: 100,
  concurrency: { min: 4, max: 512 },
} as const;

/**
 * The defaults of a device relay's bounds in a partition pod (ADR 52, ADR 65): requests in
 * flight to one device, and the bytes per second its relay carries. Every relayed byte crosses
 * the pod's event loop twice; the byte rate keeps one device to about 0.6 of a core of a 2-core
 * pod (80 MiB/s since the WebSocket's masking is native, ADR 72; 64 MiB/s before).
 */
export const relayDefaults = {
  maxStreams: 16,
  bytesPerSecond: '80Mi',
} as const;

/** A `host:port` listen address, parsed. */
export const listenAddress = z
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

/**
 * The partition pod's environment: names, formats, bounds and defaults. Credentials given as
 * a value or a `_FILE` are resolved by the data plane itself, which reads the files.
 */
export const partitionEnvSchema = z
  .object({
    [PartitionEnv.listen]: listenAddress.default({ host: '0.0.0.0', port: dataplaneHttpPort }),
    [PartitionEnv.partition]: z
      .string()
      .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be a DNS label (lower-case letters, digits, "-")'),
    [PartitionEnv.podName]: z
      .string()
      .regex(/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/, 'must be a DNS subdomain (lower-case letters, digits, ".", "-")')
      .optional(),
    [PartitionEnv.slots]: z.string().transform((text, ctx) => {
      try {
        return parseSlotRanges(text);
      } catch (err) {
        if (!(err instanceof SlotRangeError)) throw err;
        ctx.addIssue({ code: 'custom', message: err.message });
        return z.NEVER;
      }
    }),
    [PartitionEnv.advertiseUrl]: httpUrl.optional(),
    [PartitionEnv.etcdEndpoints]: z
      .string()
      .transform((text) =>
        text
          .split(',')
          .map((e) => e.trim())
          .filter((e) => e !== ''),
      )
      .pipe(z.array(httpUrl).min(1, 'must list at least one endpoint')),
    [PartitionEnv.s3Endpoint]: httpUrl.transform((u) => new URL(u)),
    [PartitionEnv.s3Bucket]: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a valid bucket name'),
    [PartitionEnv.s3Region]: z.string().min(1).default('us-east-1'),
    // Path-style suits MinIO without a domain; AWS S3 also serves virtual-hosted (bucket.host).
    [PartitionEnv.s3Addressing]: z.enum(['path', 'virtual']).default('path'),
    // An origin only: the presigned path is the store's own, which a proxy with a prefix would change.
    [PartitionEnv.s3DownloadRedirectEndpoint]: z.preprocess(
      (v) => (v === '' ? undefined : v),
      httpUrl
        .refine((u) => {
          const url = new URL(u);
          return url.pathname === '/' && url.search === '' && url.hash === '' && url.username === '' && url.password === '';
        }, 'must be an origin (scheme, host and port) with no path, query or credentials')
        .transform((u) => new URL(u))
        .optional(),
    ),
    // At least a minute (a slow client between the answer and its GET), at most a day.
    [PartitionEnv.s3DownloadRedirectSeconds]: z.coerce.number().int().min(60).max(86_400).default(300),
    [PartitionEnv.s3ReadCheck]: z.enum(['store', 'hash']).default('store'),
    [PartitionEnv.s3UploadRedirect]: z.enum(['on', 'off']).default('off'),
    [PartitionEnv.tombstoneRetentionSeconds]: seconds(7 * 24 * 3600, 0),
    [PartitionEnv.sweepIntervalSeconds]: seconds(300, 1),
    [PartitionEnv.blockGraceSeconds]: seconds(24 * 3600, 0),
    [PartitionEnv.collectIntervalSeconds]: seconds(600, 1),
    [PartitionEnv.storeDeadlineSeconds]: seconds(30, 1),
    // etcd grants no lease shorter than about 2 s (1.5 election timeouts by default).
    [PartitionEnv.slotLeaseTtlSeconds]: seconds(10, 2),
    // etcd grants no lease shorter than about 2 s (1.5 election timeouts by default).
    [PartitionEnv.presenceTtlSeconds]: seconds(60, 2),
    [PartitionEnv.logLevel]: z.enum(logLevels).default('info'),
    [PartitionEnv.terminationMessagePath]: z.string().default(defaultTerminationMessagePath),
    [PartitionEnv.dataDirs]: z
      .string()
      .default('')
      .transform((text) =>
        text
          .split(',')
          .map((d) => d.trim().replace(/(?<=.)\/+$/, ''))
          .filter((d) => d !== ''),
      )
      .refine((dirs) => dirs.every((d) => d.startsWith('/')), 'must list absolute paths')
      .refine((dirs) => new Set(dirs).size === dirs.length, 'lists a directory twice'),
    [PartitionEnv.volumeCheckIntervalSeconds]: seconds(10, 0),
    [PartitionEnv.volumeMinFreeBytes]: bytes('16Mi'),
    // Below Kubernetes' default terminationGracePeriodSeconds (30), so the process exits on its own.
    [PartitionEnv.shutdownGraceSeconds]: seconds(25, 1),
    [PartitionEnv.livenessMaxEventLoopDelayMs]: z.coerce.number().int().min(10).default(5000),
    // Empty counts as unset, as the OpenTelemetry SDKs treat it.
    [PartitionEnv.otlpEndpoint]: z.preprocess((v) => (v === '' ? undefined : v), httpUrl.optional()),
    // Defaults suit a 2-core / 8 GiB pod; the MeshPartition's spec.throttling sets them (ADR 7).
    [PartitionEnv.throttleUserRps]: count(throttlingDefaults.userRequestsPerSecond),
    [PartitionEnv.throttleUserBurst]: count(throttlingDefaults.userBurst),
    [PartitionEnv.throttleDeviceRps]: count(throttlingDefaults.deviceRequestsPerSecond),
    [PartitionEnv.throttleDeviceBurst]: count(throttlingDefaults.deviceBurst),
    [PartitionEnv.throttleUserBytesPerSecond]: bytes(throttlingDefaults.userBytesPerSecond),
    [PartitionEnv.throttleDeviceBytesPerSecond]: bytes(throttlingDefaults.deviceBytesPerSecond),
    [PartitionEnv.throttleDeviceLongPolls]: count(throttlingDefaults.deviceLongPolls, 10_000),
    [PartitionEnv.throttleMaxEntryBytes]: bytes(throttlingDefaults.maxEntrySize),
    [PartitionEnv.throttleEventLoopLagMs]: count(throttlingDefaults.eventLoopLagMilliseconds, 60_000),
    [PartitionEnv.throttleConcurrencyMin]: count(throttlingDefaults.concurrency.min, 100_000),
    [PartitionEnv.throttleConcurrencyMax]: count(throttlingDefaults.concurrency.max, 100_000),
    // The relay's per-device bounds protect the pod's event loop (ADR 65); defaults as relayDefaults.
    [PartitionEnv.relayMaxStreams]: count(relayDefaults.maxStreams, 1024),
    [PartitionEnv.relayBytesPerSecond]: bytes(relayDefaults.bytesPerSecond),
  })
  .superRefine((env, ctx) => {
    const min = env[PartitionEnv.throttleConcurrencyMin];
    const max = env[PartitionEnv.throttleConcurrencyMax];
    if (min > max) {
      ctx.addIssue({
        code: 'custom',
        path: [PartitionEnv.throttleConcurrencyMin],
        message: `must not exceed ${PartitionEnv.throttleConcurrencyMax} (${max})`,
      });
    }
  });

/** A partition pod's environment after parsing: typed values, defaults filled. */
export type ParsedPartitionEnv = z.output<typeof partitionEnvSchema>;

/**
 * Every variable of a gateway pod's environment. The gateway shares the names it has in common
 * with a partition (listen address, etcd, logs, health, shutdown, tracing) and adds its own.
 */
export const GatewayEnv = {
  listen: PartitionEnv.listen,
  etcdEndpoints: PartitionEnv.etcdEndpoints,
  /** A directory holding `tls.crt` and `tls.key` (a mounted `kubernetes.io/tls` Secret); re-read when they change. */
  tlsDir: 'MESHWORK_GATEWAY_TLS_DIR',
  /** `true` serves plain HTTP/1.1 (behind an ingress that terminates TLS); the default is HTTPS. */
  plainHttp: 'MESHWORK_GATEWAY_PLAIN_HTTP',
  /** How long a partition may take to answer with headers (a long poll's `wait` is added). */
  upstreamTimeoutSeconds: 'MESHWORK_GATEWAY_UPSTREAM_TIMEOUT_SECONDS',
  /** How long a client may take to send its request's headers. */
  headersTimeoutSeconds: 'MESHWORK_GATEWAY_HEADERS_TIMEOUT_SECONDS',
  /** How long a client may take to send its whole request. */
  requestTimeoutSeconds: 'MESHWORK_GATEWAY_REQUEST_TIMEOUT_SECONDS',
  /** The largest request line and headers a client may send. */
  maxHeaderBytes: 'MESHWORK_GATEWAY_MAX_HEADER_BYTES',
  /** Connections to each partition replica for ordinary requests (long polls have a pool of their own). */
  upstreamSockets: 'MESHWORK_GATEWAY_UPSTREAM_SOCKETS',
  /** How often each replica's `/readyz` is asked. */
  probeIntervalMs: 'MESHWORK_GATEWAY_PROBE_INTERVAL_MS',
  /** Bounds of the adaptive concurrency limit the gateway keeps per partition. */
  concurrencyMin: 'MESHWORK_GATEWAY_CONCURRENCY_MIN',
  concurrencyMax: 'MESHWORK_GATEWAY_CONCURRENCY_MAX',
  /** The directory of the built web UI (index.html, assets/); default web/dist beside the sources. */
  webDir: 'MESHWORK_GATEWAY_WEB_DIR',
  logLevel: PartitionEnv.logLevel,
  terminationMessagePath: PartitionEnv.terminationMessagePath,
  shutdownGraceSeconds: PartitionEnv.shutdownGraceSeconds,
  livenessMaxEventLoopDelayMs: PartitionEnv.livenessMaxEventLoopDelayMs,
  otlpEndpoint: PartitionEnv.otlpEndpoint,
} as const;

/** The name of a variable of a gateway pod's environment. */
export type GatewayEnvName = (typeof GatewayEnv)[keyof typeof GatewayEnv];

/** The gateway's default port for HTTPS (and plain HTTP); the data plane's port, so probes and Services look alike. */
export const gatewayDefaultListen = { host: '0.0.0.0', port: dataplaneHttpPort } as const;

/** A gateway pod's environment: names, formats, bounds and defaults. */
export const gatewayEnvSchema = z
  .object({
    [GatewayEnv.listen]: listenAddress.default({ ...gatewayDefaultListen }),
    [GatewayEnv.etcdEndpoints]: partitionEnvSchema.shape[PartitionEnv.etcdEndpoints],
    [GatewayEnv.tlsDir]: z.string().startsWith('/', 'must be an absolute path').default('/etc/meshwork/tls'),
    [GatewayEnv.plainHttp]: z
      .enum(['true', 'false'], { error: 'must be true or false' })
      .default('false')
      .transform((v) => v === 'true'),
    [GatewayEnv.upstreamTimeoutSeconds]: seconds(30, 1),
    [GatewayEnv.headersTimeoutSeconds]: seconds(20, 1),
    [GatewayEnv.requestTimeoutSeconds]: seconds(120, 1),
    [GatewayEnv.maxHeaderBytes]: bytes('16Ki'),
    [GatewayEnv.upstreamSockets]: count(256, 100_000),
    [GatewayEnv.probeIntervalMs]: z.coerce.number().int().min(100).default(1000),
    [GatewayEnv.concurrencyMin]: count(8, 100_000),
    [GatewayEnv.concurrencyMax]: count(1024, 100_000),
    [GatewayEnv.webDir]: z.preprocess((v) => (v === '' ? undefined : v), z.string().startsWith('/', 'must be an absolute path').optional()),
    [GatewayEnv.logLevel]: z.enum(logLevels).default('info'),
    [GatewayEnv.terminationMessagePath]: z.string().default(defaultTerminationMessagePath),
    [GatewayEnv.shutdownGraceSeconds]: seconds(25, 1),
    [GatewayEnv.livenessMaxEventLoopDelayMs]: z.coerce.number().int().min(10).default(5000),
    [GatewayEnv.otlpEndpoint]: z.preprocess((v) => (v === '' ? undefined : v), httpUrl.optional()),
  })
  .superRefine((env, ctx) => {
    if (env[GatewayEnv.concurrencyMin] > env[GatewayEnv.concurrencyMax]) {
      ctx.addIssue({
        code: 'custom',
        path: [GatewayEnv.concurrencyMin],
        message: `must not exceed ${GatewayEnv.concurrencyMax} (${env[GatewayEnv.concurrencyMax]})`,
      });
    }
  });

/** A gateway pod's environment after parsing. */
export type ParsedGatewayEnv = z.output<typeof gatewayEnvSchema>;

/**
 * Every variable of a prober pod's environment: it runs a user's journey through the gateway
 * as a dedicated probe account, every interval, and exports how each step went.
 */
export const ProberEnv = {
  listen: PartitionEnv.listen,
  /** The gateway's base URL, as users reach it (`https://mesh.example.com`). */
  target: 'MESHWORK_PROBER_TARGET',
  /** The probe account's token (a user made for probing, not a person's). */
  accountToken: 'MESHWORK_PROBER_ACCOUNT_TOKEN',
  /** Seconds between the starts of two journeys. */
  intervalSeconds: 'MESHWORK_PROBER_INTERVAL_SECONDS',
  /** How long one step may take before it counts as failed. */
  stepTimeoutSeconds: 'MESHWORK_PROBER_STEP_TIMEOUT_SECONDS',
  /** Size of the file each journey uploads and downloads. */
  fileBytes: 'MESHWORK_PROBER_FILE_BYTES',
  logLevel: PartitionEnv.logLevel,
  terminationMessagePath: PartitionEnv.terminationMessagePath,
} as const;

/** The name of a variable of a prober pod's environment. */
export type ProberEnvName = (typeof ProberEnv)[keyof typeof ProberEnv];

/** A prober pod's environment: names, formats, bounds and defaults. */
export const proberEnvSchema = z.object({
  [ProberEnv.listen]: listenAddress.default({ host: '0.0.0.0', port: dataplaneHttpPort }),
  [ProberEnv.target]: httpUrl,
  [ProberEnv.accountToken]: z.string().min(1, 'must not be empty'),
  [ProberEnv.intervalSeconds]: seconds(30, 1),
  [ProberEnv.stepTimeoutSeconds]: seconds(20, 1),
  [ProberEnv.fileBytes]: bytes('64Ki'),
  [ProberEnv.logLevel]: z.enum(logLevels).default('info'),
  [ProberEnv.terminationMessagePath]: z.string().default(defaultTerminationMessagePath),
});

/** A prober pod's environment after parsing. */
export type ParsedProberEnv = z.output<typeof proberEnvSchema>;
