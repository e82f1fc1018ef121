import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { ConfigError, parsePartitionConfig } from './config.ts';

const files: Record<string, string> = {
  '/secrets/admin': 'admin-token-0123456789\n',
  '/secrets/s3-secret': 's3secret',
  '/secrets/empty': '  \n',
};
const readSecret = (path: string): string => {
  const value = files[path];
  if (value === undefined) throw new Error('ENOENT: no such file');
  return value;
};

const valid = {
  MESHWORK_PARTITION: 'p0',
  MESHWORK_SLOTS: '0-2047',
  MESHWORK_ETCD_ENDPOINTS: 'http://127.0.0.1:2379, http://127.0.0.1:2380',
  MESHWORK_S3_ENDPOINT: 'http://127.0.0.1:9000',
  MESHWORK_S3_BUCKET: 'meshwork',
  MESHWORK_S3_ACCESS_KEY: 'access',
  MESHWORK_S3_SECRET_KEY_FILE: '/secrets/s3-secret',
  MESHWORK_ADMIN_TOKEN_FILE: '/secrets/admin',
};

describe('parsePartitionConfig', () => {
  it('parses a complete configuration with defaults', () => {
    const config = parsePartitionConfig(valid, readSecret);
    expect(config.listen).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(config.slots).toEqual([{ first: 0, last: 2047 }]);
    expect(config.etcdEndpoints).toEqual(['http://127.0.0.1:2379', 'http://127.0.0.1:2380']);
    expect(config.s3.secretKey).toBe('s3secret');
    expect(config.adminToken).toBe('admin-token-0123456789');
    expect(config.advertiseUrl).toBe('http://127.0.0.1:8080');
    expect(config.tombstoneRetentionSeconds).toBe(604800);
    expect(config.dataDirs).toEqual([]);
    expect(config.volumeCheckIntervalSeconds).toBe(10);
    expect(config.volumeMinFreeBytes).toBe(16 * 1024 * 1024);
    expect(config.shutdownGraceSeconds).toBe(25);
    expect(config.livenessMaxEventLoopDelayMs).toBe(5000);
    expect(config.otlpEndpoint).toBeUndefined();
    expect(config.presenceTtlSeconds).toBe(60);
    expect(config.throttle).toEqual({
      userRequestsPerSecond: 100,
      userBurst: 200,
      deviceRequestsPerSecond: 50,
      deviceBurst: 100,
      userBytesPerSecond: 64 * 2 ** 20,
      deviceBytesPerSecond: 32 * 2 ** 20,
      deviceLongPolls: 4,
      maxEntryBytes: 16 * 2 ** 30,
      eventLoopLagMs: 100,
      concurrency: { min: 4, max: 512 },
    });
    expect(config.relay).toEqual({ maxStreams: 16, bytesPerSecond: 80 * 2 ** 20 });
  });

  it('reads the relay bounds', () => {
    const config = parsePartitionConfig({ ...valid, MESHWORK_RELAY_MAX_STREAMS: '4', MESHWORK_RELAY_BYTES_PER_SECOND: '8Mi' }, readSecret);
    expect(config.relay).toEqual({ maxStreams: 4, bytesPerSecond: 8 * 2 ** 20 });
  });

  it.each([
    ['/var/lib/meshwork/data-0', ['/var/lib/meshwork/data-0']],
    ['/a, /b/ ,', ['/a', '/b']],
    ['/', ['/']],
  ])('parses MESHWORK_DATA_DIRS %j', (value, dirs) => {
    expect(parsePartitionConfig({ ...valid, MESHWORK_DATA_DIRS: value }, readSecret).dataDirs).toEqual(dirs);
  });

  it('takes the OTLP endpoint, and treats an empty one as unset', () => {
    expect(parsePartitionConfig({ ...valid, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }, readSecret).otlpEndpoint).toBe(
      'http://collector:4318',
    );
    expect(parsePartitionConfig({ ...valid, OTEL_EXPORTER_OTLP_ENDPOINT: '' }, readSecret).otlpEndpoint).toBeUndefined();
  });

  it("gives block upload URLs only when told to, and only with the store's public address (ADR 80)", () => {
    expect(parsePartitionConfig(valid, readSecret).s3.uploadRedirect).toBe(false);
    const endpoint = { MESHWORK_S3_DOWNLOAD_REDIRECT_ENDPOINT: 'https://s3.example.com' };
    expect(parsePartitionConfig({ ...valid, ...endpoint }, readSecret).s3.uploadRedirect).toBe(false);
    expect(parsePartitionConfig({ ...valid, ...endpoint, MESHWORK_S3_UPLOAD_REDIRECT: 'off' }, readSecret).s3.uploadRedirect).toBe(false);
    expect(parsePartitionConfig({ ...valid, ...endpoint, MESHWORK_S3_UPLOAD_REDIRECT: 'on' }, readSecret).s3.uploadRedirect).toBe(true);
    expect(() => parsePartitionConfig({ ...valid, MESHWORK_S3_UPLOAD_REDIRECT: 'on' }, readSecret)).toThrow(
      /MESHWORK_S3_UPLOAD_REDIRECT: needs MESHWORK_S3_DOWNLOAD_REDIRECT_ENDPOINT/,
    );
    expect(() => parsePartitionConfig({ ...valid, ...endpoint, MESHWORK_S3_UPLOAD_REDIRECT: 'yes' }, readSecret)).toThrow(
      /MESHWORK_S3_UPLOAD_REDIRECT/,
    );
  });

  it("redirects block downloads only when given the store's public address, an origin, for 60 s to a day", () => {
    expect(parsePartitionConfig(valid, readSecret).s3.downloadRedirect).toBeUndefined();
    expect(parsePartitionConfig({ ...valid, MESHWORK_S3_DOWNLOAD_REDIRECT_ENDPOINT: '' }, readSecret).s3.downloadRedirect).toBeUndefined();
    const on = parsePartitionConfig({ ...valid, MESHWORK_S3_DOWNLOAD_REDIRECT_ENDPOINT: 'https://s3.example.com' }, readSecret);
    expect(on.s3.downloadRedirect?.endpoint.href).toBe('https://s3.example.com/');
    expect(on.s3.downloadRedirect?.expiresInSeconds).toBe(300);
    const seconds = {
      ...valid,
      MESHWORK_S3_DOWNLOAD_REDIRECT_ENDPOINT: 'https://s3.example.com:9000',
      MESHWORK_S3_DOWNLOAD_REDIRECT_SECONDS: '60',
    };
    expect(parsePartitionConfig(seconds, readSecret).s3.downloadRedirect?.expiresInSeconds).toBe(60);
    for (const bad of [
      'https://s3.example.com/prefix',
      'https://s3.example.com/?x=1',
      'https://user:pw@s3.example.com',
      'ftp://s3.example.com',
    ]) {
      expect(() => parsePartitionConfig({ ...valid, MESHWORK_S3_DOWNLOAD_REDIRECT_ENDPOINT: bad }, readSecret)).toThrow(
        /MESHWORK_S3_DOWNLOAD_REDIRECT_ENDPOINT/,
      );
    }
    for (const bad of ['59', '86401', 'soon']) {
      const env = {
        ...valid,
        MESHWORK_S3_DOWNLOAD_REDIRECT_ENDPOINT: 'https://s3.example.com',
        MESHWORK_S3_DOWNLOAD_REDIRECT_SECONDS: bad,
      };
      expect(() => parsePartitionConfig(env, readSecret)).toThrow(/MESHWORK_S3_DOWNLOAD_REDIRECT_SECONDS/);
    }
  });

  it("checks block reads by the store's kept checksum unless told to hash every one (ADR 77)", () => {
    expect(parsePartitionConfig(valid, readSecret).s3.readCheck).toBe('store');
    expect(parsePartitionConfig({ ...valid, MESHWORK_S3_READ_CHECK: 'hash' }, readSecret).s3.readCheck).toBe('hash');
    expect(() => parsePartitionConfig({ ...valid, MESHWORK_S3_READ_CHECK: 'none' }, readSecret)).toThrow(/MESHWORK_S3_READ_CHECK/);
  });

  it('names the replica after the pod, or after the host when no pod name is given', () => {
    expect(parsePartitionConfig({ ...valid, MESHWORK_POD_NAME: 'p0-2' }, readSecret).replica).toBe('p0-2');
    expect(parsePartitionConfig(valid, readSecret).replica).toBe(hostname());
  });

  it('reads throttling bounds, byte sizes as plain numbers or quantities', () => {
    const config = parsePartitionConfig(
      {
        ...valid,
        MESHWORK_THROTTLE_USER_RPS: '7',
        MESHWORK_THROTTLE_DEVICE_BURST: '3',
        MESHWORK_THROTTLE_USER_BYTES_PER_SECOND: '1048576',
        MESHWORK_THROTTLE_DEVICE_BYTES_PER_SECOND: '512Ki',
        MESHWORK_THROTTLE_MAX_ENTRY_BYTES: '1.5Gi',
        MESHWORK_THROTTLE_CONCURRENCY_MIN: '8',
        MESHWORK_THROTTLE_CONCURRENCY_MAX: '8',
      },
      readSecret,
    );
    expect(config.throttle).toMatchObject({
      userRequestsPerSecond: 7,
      deviceBurst: 3,
      userBytesPerSecond: 1048576,
      deviceBytesPerSecond: 524288,
      maxEntryBytes: 1.5 * 2 ** 30,
      concurrency: { min: 8, max: 8 },
    });
  });

  it('takes the advertise URL and listen address as given', () => {
    const config = parsePartitionConfig(
      { ...valid, MESHWORK_LISTEN: '127.0.0.5:9999', MESHWORK_ADVERTISE_URL: 'http://p0.mesh:8080/' },
      readSecret,
    );
    expect(config.listen).toEqual({ host: '127.0.0.5', port: 9999 });
    expect(config.advertiseUrl).toBe('http://p0.mesh:8080');
  });

  it.each([
    [{ MESHWORK_PARTITION: undefined }, 'MESHWORK_PARTITION', 'is required'],
    [{ MESHWORK_PARTITION: 'Bad_Name' }, 'MESHWORK_PARTITION', 'DNS label'],
    [{ MESHWORK_POD_NAME: 'P0_1' }, 'MESHWORK_POD_NAME', 'DNS subdomain'],
    [{ MESHWORK_SLOTS: '0-5000' }, 'MESHWORK_SLOTS', 'leaves the slot space'],
    [{ MESHWORK_LISTEN: 'localhost' }, 'MESHWORK_LISTEN', 'host:port'],
    [{ MESHWORK_LISTEN: '127.0.0.1:70000' }, 'MESHWORK_LISTEN', '65535'],
    [{ MESHWORK_ETCD_ENDPOINTS: '' }, 'MESHWORK_ETCD_ENDPOINTS', 'at least one'],
    [{ MESHWORK_ETCD_ENDPOINTS: 'etcd:2379' }, 'MESHWORK_ETCD_ENDPOINTS', 'http'],
    [{ MESHWORK_S3_BUCKET: 'A' }, 'MESHWORK_S3_BUCKET', 'bucket'],
    [{ MESHWORK_S3_ACCESS_KEY: undefined }, 'MESHWORK_S3_ACCESS_KEY', 'is required'],
    [{ MESHWORK_S3_SECRET_KEY: 'x' }, 'MESHWORK_S3_SECRET_KEY', 'not both'],
    [{ MESHWORK_S3_SECRET_KEY_FILE: '/secrets/missing' }, 'MESHWORK_S3_SECRET_KEY_FILE', 'cannot read'],
    [{ MESHWORK_ADMIN_TOKEN_FILE: undefined }, 'MESHWORK_ADMIN_TOKEN_FILE', 'is required'],
    [{ MESHWORK_ADMIN_TOKEN_FILE: '/secrets/empty' }, 'MESHWORK_ADMIN_TOKEN_FILE', 'is empty'],
    [{ MESHWORK_ADMIN_TOKEN_FILE: '/secrets/s3-secret' }, 'MESHWORK_ADMIN_TOKEN_FILE', 'at least 16'],
    [{ MESHWORK_TOMBSTONE_RETENTION_SECONDS: '-1' }, 'MESHWORK_TOMBSTONE_RETENTION_SECONDS', ''],
    [{ MESHWORK_LOG_LEVEL: 'loud' }, 'MESHWORK_LOG_LEVEL', ''],
    [{ MESHWORK_DATA_DIRS: 'data-0' }, 'MESHWORK_DATA_DIRS', 'absolute'],
    [{ MESHWORK_DATA_DIRS: '/a,/a/' }, 'MESHWORK_DATA_DIRS', 'twice'],
    [{ MESHWORK_VOLUME_CHECK_INTERVAL_SECONDS: '-1' }, 'MESHWORK_VOLUME_CHECK_INTERVAL_SECONDS', ''],
    [{ MESHWORK_SHUTDOWN_GRACE_SECONDS: '0' }, 'MESHWORK_SHUTDOWN_GRACE_SECONDS', ''],
    [{ MESHWORK_LIVENESS_MAX_EVENT_LOOP_DELAY_MS: 'soon' }, 'MESHWORK_LIVENESS_MAX_EVENT_LOOP_DELAY_MS', ''],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }, 'OTEL_EXPORTER_OTLP_ENDPOINT', 'http'],
    [{ MESHWORK_PRESENCE_TTL_SECONDS: '1' }, 'MESHWORK_PRESENCE_TTL_SECONDS', '2'],
    [{ MESHWORK_PRESENCE_TTL_SECONDS: 'soon' }, 'MESHWORK_PRESENCE_TTL_SECONDS', ''],
    [{ MESHWORK_THROTTLE_USER_RPS: '0' }, 'MESHWORK_THROTTLE_USER_RPS', ''],
    [{ MESHWORK_THROTTLE_DEVICE_BURST: '1.5' }, 'MESHWORK_THROTTLE_DEVICE_BURST', ''],
    [{ MESHWORK_THROTTLE_USER_BYTES_PER_SECOND: '64MB' }, 'MESHWORK_THROTTLE_USER_BYTES_PER_SECOND', 'whole number of bytes'],
    [{ MESHWORK_THROTTLE_MAX_ENTRY_BYTES: '0' }, 'MESHWORK_THROTTLE_MAX_ENTRY_BYTES', 'at least 1'],
    [{ MESHWORK_THROTTLE_DEVICE_LONG_POLLS: 'many' }, 'MESHWORK_THROTTLE_DEVICE_LONG_POLLS', ''],
    [{ MESHWORK_THROTTLE_EVENT_LOOP_LAG_MS: '-5' }, 'MESHWORK_THROTTLE_EVENT_LOOP_LAG_MS', ''],
    [{ MESHWORK_RELAY_MAX_STREAMS: '0' }, 'MESHWORK_RELAY_MAX_STREAMS', ''],
    [{ MESHWORK_RELAY_MAX_STREAMS: '2000' }, 'MESHWORK_RELAY_MAX_STREAMS', ''],
    [{ MESHWORK_RELAY_BYTES_PER_SECOND: '64MB/s' }, 'MESHWORK_RELAY_BYTES_PER_SECOND', 'whole number of bytes'],
    [
      { MESHWORK_THROTTLE_CONCURRENCY_MIN: '64', MESHWORK_THROTTLE_CONCURRENCY_MAX: '32' },
      'MESHWORK_THROTTLE_CONCURRENCY_MIN',
      'must not exceed MESHWORK_THROTTLE_CONCURRENCY_MAX',
    ],
  ])('names the bad field for %j', (override, field, message) => {
    const env: NodeJS.ProcessEnv = { ...valid, ...override };
    for (const [k, v] of Object.entries(override)) if (v === undefined) delete env[k];
    try {
      parsePartitionConfig(env, readSecret);
      expect.unreachable('configuration was accepted');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).field).toBe(field);
      expect((err as ConfigError).message).toContain(field);
      expect((err as ConfigError).message).toContain(message);
    }
  });
});
