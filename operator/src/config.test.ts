import { describe, expect, it } from 'vitest';
import { ConfigError } from '@meshwork/contract';
import { loadConfig } from './config.ts';

describe('loadConfig', () => {
  it('fills defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      namespace: 'meshwork-system',
      watchNamespace: '',
      http: { host: '0.0.0.0', port: 8081 },
      concurrency: 8,
      leaderElect: true,
    });
    expect(config.identity).not.toBe('');
  });

  it.each([
    { env: { MESHWORK_OPERATOR_HTTP_ADDRESS: '127.0.0.1:9000' }, expected: { http: { host: '127.0.0.1', port: 9000 } } },
    { env: { MESHWORK_OPERATOR_CONCURRENCY: '8' }, expected: { concurrency: 8 } },
    { env: { MESHWORK_OPERATOR_LEADER_ELECT: 'false' }, expected: { leaderElect: false } },
    { env: { POD_NAMESPACE: 'ops' }, expected: { namespace: 'ops' } },
    { env: { POD_NAMESPACE: 'ops', MESHWORK_OPERATOR_NAMESPACE: 'mw' }, expected: { namespace: 'mw' } },
  ])('reads $env', ({ env, expected }) => {
    expect(loadConfig(env)).toMatchObject(expected);
  });

  it.each([
    { env: { MESHWORK_OPERATOR_CONCURRENCY: '0' }, field: 'MESHWORK_OPERATOR_CONCURRENCY' },
    { env: { MESHWORK_OPERATOR_HTTP_ADDRESS: 'nowhere' }, field: 'MESHWORK_OPERATOR_HTTP_ADDRESS' },
    { env: { MESHWORK_OPERATOR_LEADER_ELECT: 'yes' }, field: 'MESHWORK_OPERATOR_LEADER_ELECT' },
    { env: { MESHWORK_LOG_LEVEL: 'loud' }, field: 'MESHWORK_LOG_LEVEL' },
  ])('rejects a bad $field and names it', ({ env, field }) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(field);
  });
});
