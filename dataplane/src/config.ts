// Configuration of a data-plane process, read once at start from environment variables (the
// operator's ConfigMap and StatefulSet set them) and validated; a bad value names its variable.
// The variables, their formats and defaults are the contract's schema (@meshwork/contract,
// env.ts), which the operator builds against; this module adds the secrets read from files and
// the shape the process uses.
import { hostname } from 'node:os';
import { ConfigError, parseEnvironment, PartitionEnv, partitionEnvSchema, type LogLevel, type SlotRange } from '@meshwork/contract';

export { ConfigError };

/** The partition role's configuration. */
export interface PartitionConfig {
  listen: { host: string; port: number };
  partition: string;
  /** This replica's name within the partition (the pod name), unique among its replicas. */
  replica: string;
  slots: SlotRange[];
  advertiseUrl: string;
  etcdEndpoints: string[];
  s3: {
    endpoint: URL;
    bucket: string;
    region: string;
    accessKey: string;
    secretKey: string;
    /** The session token of temporary credentials (MESHWORK_S3_SESSION_TOKEN or ..._FILE). */
    sessionToken: string | undefined;
    /** The files credentials came from, re-read by the block store when they change. */
    credentialFiles: { accessKey: string | undefined; secretKey: string | undefined; sessionToken: string | undefined };
    addressing: 'path' | 'virtual';
    /** Whether a block read the store vouches for by its kept checksum is hashed again (`hash`) or not (`store`): ADR 77. */
    readCheck: 'store' | 'hash';
    /** Block uploads may go straight to the store at the download redirect's endpoint (ADR 80). */
    uploadRedirect: boolean;
    /** Where block downloads are redirected (presigned URLs at the store's public address); off when absent. */
    downloadRedirect: { endpoint: URL; expiresInSeconds: number } | undefined;
  };
  adminToken: string;
  /** How long deleted entries stay visible to `changes`; older cursors get 410. */
  tombstoneRetentionSeconds: number;
  /** How often the tombstone sweeper runs. */
  sweepIntervalSeconds: number;
  /** How long an uploaded block that no entry names is kept before the collector may delete it. */
  blockGraceSeconds: number;
  /** How often the block collector runs. */
  collectIntervalSeconds: number;
  /** How long start-up waits for etcd and S3 before giving up. */
  storeDeadlineSeconds: number;
  /** TTL of the lease the slot-map owner record is held under. */
  slotLeaseSeconds: number;
  /** How long a device's presence lasts without a refresh. */
  presenceTtlSeconds: number;
  logLevel: LogLevel;
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
  /** Per-device bounds of the relay (ADR 52, ADR 65). */
  relay: { maxStreams: number; bytesPerSecond: number };
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

/** Reads a secret file; injected so that parsing stays testable without files. */
export type SecretReader = (path: string) => string;

/** Resolves a secret from the variable `name` or from the file named by `fileName` (exactly one must be set). */
function secretFromEnv(env: NodeJS.ProcessEnv, name: string, fileName: string, readSecret: SecretReader): string {
  const direct = env[name];
  const file = env[fileName];
  if (direct !== undefined && file !== undefined) throw new ConfigError(name, `set either ${name} or ${fileName}, not both`);
  if (direct !== undefined) {
    if (direct === '') throw new ConfigError(name, 'is empty');
    return direct;
  }
  if (file === undefined) throw new ConfigError(name, `is required (or ${fileName} naming a file that holds it)`);
  return readSecretFile(fileName, file, readSecret);
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

function downloadRedirectOf(endpoint: URL | undefined, expiresInSeconds: number): PartitionConfig['s3']['downloadRedirect'] {
  return endpoint === undefined ? undefined : { endpoint, expiresInSeconds };
}

function uploadRedirectOf(setting: 'on' | 'off', endpoint: URL | undefined): boolean {
  if (setting === 'off') return false;
  // The URLs point at the store as clients reach it, which only the download redirect's setting says.
  if (endpoint === undefined)
    throw new ConfigError(
      PartitionEnv.s3UploadRedirect,
      `needs ${PartitionEnv.s3DownloadRedirectEndpoint} (the store as clients reach it)`,
    );
  return true;
}

/** Parses and validates the partition role's configuration from `env`. */
export function parsePartitionConfig(env: NodeJS.ProcessEnv, readSecret: SecretReader): PartitionConfig {
  const e = parseEnvironment(partitionEnvSchema, env);
  const adminTokenFile = env[PartitionEnv.adminTokenFile];
  if (adminTokenFile === undefined || adminTokenFile === '') {
    throw new ConfigError(PartitionEnv.adminTokenFile, 'is required (a file holding the administrator token)');
  }
  const adminToken = readSecretFile(PartitionEnv.adminTokenFile, adminTokenFile, readSecret);
  if (adminToken.length < 16) throw new ConfigError(PartitionEnv.adminTokenFile, 'the token must be at least 16 characters');
  const listen = e[PartitionEnv.listen];
  const advertiseHost = listen.host === '0.0.0.0' || listen.host === '::' ? '127.0.0.1' : listen.host;
  return {
    listen,
    partition: e[PartitionEnv.partition],
    replica: e[PartitionEnv.podName] ?? hostname(),
    slots: e[PartitionEnv.slots],
    advertiseUrl: (e[PartitionEnv.advertiseUrl] ?? `http://${advertiseHost}:${listen.port}`).replace(/\/+$/, ''),
    etcdEndpoints: e[PartitionEnv.etcdEndpoints],
    s3: {
      endpoint: e[PartitionEnv.s3Endpoint],
      bucket: e[PartitionEnv.s3Bucket],
      region: e[PartitionEnv.s3Region],
      accessKey: secretFromEnv(env, PartitionEnv.s3AccessKey, PartitionEnv.s3AccessKeyFile, readSecret),
      secretKey: secretFromEnv(env, PartitionEnv.s3SecretKey, PartitionEnv.s3SecretKeyFile, readSecret),
      sessionToken:
        env[PartitionEnv.s3SessionToken] !== undefined || env[PartitionEnv.s3SessionTokenFile] !== undefined
          ? secretFromEnv(env, PartitionEnv.s3SessionToken, PartitionEnv.s3SessionTokenFile, readSecret)
          : undefined,
      credentialFiles: {
        accessKey: env[PartitionEnv.s3AccessKeyFile],
        secretKey: env[PartitionEnv.s3SecretKeyFile],
        sessionToken: env[PartitionEnv.s3SessionTokenFile],
      },
      addressing: e[PartitionEnv.s3Addressing],
      downloadRedirect: downloadRedirectOf(e[PartitionEnv.s3DownloadRedirectEndpoint], e[PartitionEnv.s3DownloadRedirectSeconds]),
      readCheck: e[PartitionEnv.s3ReadCheck],
      uploadRedirect: uploadRedirectOf(e[PartitionEnv.s3UploadRedirect], e[PartitionEnv.s3DownloadRedirectEndpoint]),
    },
    adminToken,
    tombstoneRetentionSeconds: e[PartitionEnv.tombstoneRetentionSeconds],
    sweepIntervalSeconds: e[PartitionEnv.sweepIntervalSeconds],
    blockGraceSeconds: e[PartitionEnv.blockGraceSeconds],
    collectIntervalSeconds: e[PartitionEnv.collectIntervalSeconds],
    storeDeadlineSeconds: e[PartitionEnv.storeDeadlineSeconds],
    slotLeaseSeconds: e[PartitionEnv.slotLeaseTtlSeconds],
    presenceTtlSeconds: e[PartitionEnv.presenceTtlSeconds],
    logLevel: e[PartitionEnv.logLevel],
    dataDirs: e[PartitionEnv.dataDirs],
    volumeCheckIntervalSeconds: e[PartitionEnv.volumeCheckIntervalSeconds],
    volumeMinFreeBytes: e[PartitionEnv.volumeMinFreeBytes],
    shutdownGraceSeconds: e[PartitionEnv.shutdownGraceSeconds],
    livenessMaxEventLoopDelayMs: e[PartitionEnv.livenessMaxEventLoopDelayMs],
    otlpEndpoint: e[PartitionEnv.otlpEndpoint],
    throttle: {
      userRequestsPerSecond: e[PartitionEnv.throttleUserRps],
      userBurst: e[PartitionEnv.throttleUserBurst],
      deviceRequestsPerSecond: e[PartitionEnv.throttleDeviceRps],
      deviceBurst: e[PartitionEnv.throttleDeviceBurst],
      userBytesPerSecond: e[PartitionEnv.throttleUserBytesPerSecond],
      deviceBytesPerSecond: e[PartitionEnv.throttleDeviceBytesPerSecond],
      deviceLongPolls: e[PartitionEnv.throttleDeviceLongPolls],
      maxEntryBytes: e[PartitionEnv.throttleMaxEntryBytes],
      eventLoopLagMs: e[PartitionEnv.throttleEventLoopLagMs],
      concurrency: { min: e[PartitionEnv.throttleConcurrencyMin], max: e[PartitionEnv.throttleConcurrencyMax] },
    },
    relay: { maxStreams: e[PartitionEnv.relayMaxStreams], bytesPerSecond: e[PartitionEnv.relayBytesPerSecond] },
  };
}
