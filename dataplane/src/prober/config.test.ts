// The prober's configuration: defaults, and a bad value refused with its variable named.
import { describe, expect, it } from 'vitest';
import { ConfigError } from '@meshwork/contract';
import { parseProberConfig } from './config.ts';

const required = { MESHWORK_PROBER_TARGET: 'https://mesh.example.com', MESHWORK_PROBER_ACCOUNT_TOKEN: 'mwu.token' };

describe('parseProberConfig', () => {
  it('applies the defaults', () => {
    expect(parseProberConfig(required)).toEqual({
      listen: { host: '0.0.0.0', port: 8080 },
      target: 'https://mesh.example.com',
      accountToken: 'mwu.token',
      intervalMs: 30_000,
      stepTimeoutMs: 20_000,
      fileBytes: 65_536,
      logLevel: 'info',
    });
  });

  it('reads every variable', () => {
    const config = parseProberConfig({
      ...required,
      MESHWORK_LISTEN: '127.0.0.1:9100',
      MESHWORK_PROBER_INTERVAL_SECONDS: '5',
      MESHWORK_PROBER_STEP_TIMEOUT_SECONDS: '3',
      MESHWORK_PROBER_FILE_BYTES: '1Mi',
      MESHWORK_LOG_LEVEL: 'debug',
    });
    expect(config).toMatchObject({
      listen: { host: '127.0.0.1', port: 9100 },
      intervalMs: 5000,
      stepTimeoutMs: 3000,
      fileBytes: 1_048_576,
      logLevel: 'debug',
    });
  });

  it.each([
    ['MESHWORK_PROBER_TARGET', { MESHWORK_PROBER_TARGET: undefined }],
    ['MESHWORK_PROBER_TARGET', { MESHWORK_PROBER_TARGET: 'ftp://mesh' }],
    ['MESHWORK_PROBER_ACCOUNT_TOKEN', { MESHWORK_PROBER_ACCOUNT_TOKEN: '' }],
    ['MESHWORK_PROBER_INTERVAL_SECONDS', { MESHWORK_PROBER_INTERVAL_SECONDS: '0' }],
    ['MESHWORK_PROBER_FILE_BYTES', { MESHWORK_PROBER_FILE_BYTES: 'lots' }],
  ])('refuses a bad %s', (name, env) => {
    expect(() => parseProberConfig({ ...required, ...env })).toThrow(ConfigError);
    expect(() => parseProberConfig({ ...required, ...env })).toThrow(name);
  });
});
