import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import {
  ContainerConfigError,
  containerCommand,
  containerEnv,
  downwardField,
  expandReferences,
  pathMapper,
  type ReferenceResolver,
} from './container-env.ts';
import { ProbeTracker, probePort, restartDelayMs } from './probes.ts';

const pod: V1Pod = {
  metadata: { name: 'p-0', namespace: 'ns', uid: 'u-1', labels: { app: 'web' }, annotations: { note: 'n' } },
  spec: { nodeName: 'node-1', serviceAccountName: 'sa', containers: [{ name: 'c', resources: { limits: { cpu: '2' } } }] },
};
const facts = { podIP: '127.1.1.2', hostIP: '127.1.1.1', nodeName: 'node-1' };
const resolver: ReferenceResolver = {
  configMapKey: (name, key) => Promise.resolve(name === 'cm' ? { a: '1' }[key] : undefined),
  secretKey: (name, key) => Promise.resolve(name === 's' ? { pw: 'secret' }[key] : undefined),
  configMap: (name) => Promise.resolve(name === 'cm' ? { a: '1', b: '2' } : undefined),
  secret: () => Promise.resolve(undefined),
};

describe('downwardField', () => {
  it.each([
    ['metadata.name', 'p-0'],
    ['metadata.namespace', 'ns'],
    ['metadata.uid', 'u-1'],
    ["metadata.labels['app']", 'web'],
    ["metadata.annotations['note']", 'n'],
    ['spec.nodeName', 'node-1'],
    ['spec.serviceAccountName', 'sa'],
    ['status.podIP', '127.1.1.2'],
    ['status.hostIP', '127.1.1.1'],
  ])('%s is %s', (path, value) => {
    expect(downwardField(pod, facts, path)).toBe(value);
  });

  it('refuses a field it does not know', () => {
    expect(() => downwardField(pod, facts, 'spec.bogus')).toThrow(ContainerConfigError);
  });
});

describe('expandReferences', () => {
  it.each([
    ['$(POD_IP):8080', '127.1.1.2:8080'],
    ['$$(POD_IP)', '$(POD_IP)'],
    ['$(UNKNOWN)/x', '$(UNKNOWN)/x'],
    ['plain', 'plain'],
  ])('%s expands to %s', (input, output) => {
    expect(expandReferences(input, { POD_IP: '127.1.1.2' })).toBe(output);
  });
});

describe('pathMapper', () => {
  const map = pathMapper([
    { podPath: '/data', hostPath: '/h/data' },
    { podPath: '/data/0', hostPath: '/h/vol0' },
    { podPath: '/dev/termination-log', hostPath: '/h/term' },
  ]);
  it.each([
    ['/data/0', '/h/vol0'],
    ['/data/0/blocks', '/h/vol0/blocks'],
    ['/data/1', '/h/data/1'],
    ['/database', '/database'],
    ['/dev/termination-log', '/h/term'],
    ['relative', 'relative'],
    ['/data/0,/data/1,/other', '/h/vol0,/h/data/1,/other'],
    ['a,/data/0', 'a,/data/0'],
  ])('%s maps to %s', (input, output) => {
    expect(map(input)).toBe(output);
  });
});

describe('containerEnv', () => {
  it('resolves downward fields, references and $(VAR) in order, with pod facts provided by default', async () => {
    const env = await containerEnv(
      pod,
      {
        name: 'c',
        envFrom: [{ configMapRef: { name: 'cm' }, prefix: 'CM_' }],
        env: [
          { name: 'ME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          { name: 'LISTEN', value: '$(POD_IP):8080' },
          { name: 'PW', valueFrom: { secretKeyRef: { name: 's', key: 'pw' } } },
          { name: 'CPU', valueFrom: { resourceFieldRef: { resource: 'limits.cpu' } } },
          { name: 'SELF', value: '$(ME)-$(CM_a)' },
        ],
      },
      facts,
      resolver,
    );
    expect(env).toMatchObject({
      POD_NAME: 'p-0',
      POD_NAMESPACE: 'ns',
      POD_IP: '127.1.1.2',
      NODE_NAME: 'node-1',
      CM_a: '1',
      CM_b: '2',
      ME: 'p-0',
      LISTEN: '127.1.1.2:8080',
      PW: 'secret',
      CPU: '2',
      SELF: 'p-0-1',
    });
  });

  it('fails with a clear error for a missing Secret key unless optional', async () => {
    const missing = { name: 'X', valueFrom: { secretKeyRef: { name: 's', key: 'nope' } } };
    await expect(containerEnv(pod, { name: 'c', env: [missing] }, facts, resolver)).rejects.toThrow('secret "s" key "nope" not found');
    const optional = { name: 'X', valueFrom: { secretKeyRef: { name: 's', key: 'nope', optional: true } } };
    expect((await containerEnv(pod, { name: 'c', env: [optional] }, facts, resolver)).X).toBeUndefined();
  });
});

describe('containerCommand', () => {
  it.each([
    [{ name: 'c', command: ['node', 'x.ts'], args: ['$(ROLE)'] }, ['node', 'x.ts', 'partition']],
    [{ name: 'c', args: ['operator'] }, ['node', 'meshwork.ts', 'operator']],
    [{ name: 'c' }, ['node', 'meshwork.ts']],
  ])('%j runs %j', (container, argv) => {
    expect(containerCommand(container, ['node', 'meshwork.ts'], { ROLE: 'partition' })).toEqual(argv);
  });
});

describe('probes', () => {
  it.each([
    [8080, {}, 8080],
    ['8081', {}, 8081],
    ['http', { http: 9000 }, 9000],
    ['nope', {}, undefined],
  ] as const)('port %j resolves to %j', (port, named, expected) => {
    expect(probePort(port, named)).toBe(expected);
  });

  it('turns false after failureThreshold failures and true after successThreshold successes', () => {
    const t = new ProbeTracker({ failureThreshold: 3, successThreshold: 2 }, true);
    expect([t.record(false), t.record(false), t.record(false)]).toEqual([true, true, false]);
    expect([t.record(true), t.record(true)]).toEqual([false, true]);
  });

  it.each([
    [0, 0],
    [1, 10_000],
    [2, 20_000],
    [5, 160_000],
    [6, 300_000],
    [60, 300_000],
  ])('waits %i crashes -> %i ms before restarting', (crashes, delay) => {
    expect(restartDelayMs(crashes, 10_000, 300_000)).toBe(delay);
  });
});
