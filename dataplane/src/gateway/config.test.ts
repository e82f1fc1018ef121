// The gateway's configuration from its environment: defaults, plain HTTP, and a bad value named.
import { describe, expect, it } from 'vitest';
import { ConfigError, GatewayEnv } from '@meshwork/contract';
import { parseGatewayConfig } from './config.ts';

const minimal = { [GatewayEnv.etcdEndpoints]: 'http://etcd:2379' };

describe('parseGatewayConfig', () => {
  it('fills the defaults: HTTPS from the Secret directory on port 8080', () => {
    expect(parseGatewayConfig(minimal)).toMatchObject({
      listen: { host: '0.0.0.0', port: 8080 },
      etcdEndpoints: ['http://etcd:2379'],
      tlsDir: '/etc/meshwork/tls',
      upstreamTimeoutMs: 30_000,
      headersTimeoutMs: 20_000,
      requestTimeoutMs: 120_000,
      maxHeaderBytes: 16 * 1024,
      upstreamSockets: 256,
      probeIntervalMs: 1000,
      concurrency: { min: 8, max: 1024 },
    });
  });

  it('serves plain HTTP when asked', () => {
    expect(parseGatewayConfig({ ...minimal, [GatewayEnv.plainHttp]: 'true' }).tlsDir).toBeUndefined();
  });

  it.each([
    [{ [GatewayEnv.etcdEndpoints]: undefined }, GatewayEnv.etcdEndpoints],
    [{ [GatewayEnv.plainHttp]: 'yes' }, GatewayEnv.plainHttp],
    [{ [GatewayEnv.tlsDir]: 'relative/dir' }, GatewayEnv.tlsDir],
    [{ [GatewayEnv.maxHeaderBytes]: 'lots' }, GatewayEnv.maxHeaderBytes],
    [{ [GatewayEnv.concurrencyMin]: '50', [GatewayEnv.concurrencyMax]: '10' }, GatewayEnv.concurrencyMin],
  ])('names the variable at fault in %j', (override, field) => {
    let error: unknown;
    try {
      parseGatewayConfig({ ...minimal, ...override });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).field).toBe(field);
  });
});
