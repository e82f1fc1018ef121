// The generated CRD on a real kube-apiserver: it defaults a MeshPartition exactly as the
// definition's own defaulting (and so the test fixtures) does, enforces the rules the
// MeshPartition tests do not reach, and requires every member's health and level in status.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { repoRoot } from '../../../e2e/harness/binaries.ts';
import { installCrds, kubectl, kubectlOk } from '../../../e2e/operator/harness.ts';
import { apiVersion, defaultedMeshPartitionSpec, meshPartitionKind, type MeshPartitionSpec } from './v1alpha1.ts';

const admin = inject('stack').controlPlane.adminKubeconfig;
const namespace = `mw-crd-${randomBytes(3).toString('hex')}`;
const sample = parse(readFileSync(join(repoRoot, 'crds/samples/meshpartition.yaml'), 'utf8')) as { spec: MeshPartitionSpec };
const required = {
  slots: [{ start: 0, end: 10 }],
  stores: {
    etcd: { endpoints: ['http://etcd:2379'] },
    s3: { endpoint: 'http://s3:9000', bucket: 'blocks', credentialsSecretRef: { name: 's3' } },
  },
};

const manifest = (name: string, spec: object): string =>
  JSON.stringify({ apiVersion, kind: meshPartitionKind, metadata: { name, namespace }, spec });

describe('the generated MeshPartition CRD on a real API server', () => {
  beforeAll(async () => {
    await installCrds(admin);
    await kubectlOk(admin, ['create', 'namespace', namespace]);
  });

  afterAll(async () => {
    await kubectl(admin, ['delete', 'namespace', namespace, '--wait=false']);
  });

  it.each([
    { case: 'the sample', spec: sample.spec },
    {
      case: 'a spec that sets some fields of each defaulted object',
      spec: {
        ...required,
        resources: { cpu: '500m' },
        storage: { volumes: 2 },
        throttling: { userBurst: 7, maxEntrySize: 1024, concurrency: { max: 64 } },
        watchdog: { mode: 'Observe', tolerationSeconds: 30 },
        rollout: {},
      },
    },
    {
      case: 'a download redirect without its expiry',
      spec: {
        ...required,
        stores: { ...required.stores, s3: { ...required.stores.s3, downloadRedirect: { endpoint: 'https://s3.example.com' } } },
      },
    },
  ])('defaults $case as defaultedMeshPartitionSpec does', async ({ spec }) => {
    const output = await kubectlOk(admin, ['create', '--dry-run=server', '-o', 'json', '-f', '-'], manifest('defaults', spec));
    const created = JSON.parse(output) as { spec: unknown };
    expect(created.spec).toEqual(defaultedMeshPartitionSpec(spec as MeshPartitionSpec));
  });

  it.each([
    { case: 'a toleration of 0', spec: { watchdog: { tolerationSeconds: 0 } }, message: 'watchdog.tolerationSeconds must be at least 1' },
    {
      case: 'a toleration as long as nodeLost',
      spec: { watchdog: { tolerationSeconds: 300, healthyResetSeconds: 900 } },
      message: 'watchdog.tolerationSeconds must be shorter than nodeLostSeconds',
    },
    {
      case: 'a probe timeout longer than its period',
      spec: { watchdog: { probeTimeoutSeconds: 20, probePeriodSeconds: 10 } },
      message: 'watchdog.probeTimeoutSeconds must not be longer than probePeriodSeconds',
    },
    {
      case: 'a probe period of 301 s',
      spec: { watchdog: { probePeriodSeconds: 301 } },
      message: 'watchdog.probePeriodSeconds must be between 1 and 300',
    },
    { case: '21 actions an hour', spec: { watchdog: { actionsPerHour: 21 } }, message: 'watchdog.actionsPerHour must be between 0 and 20' },
    { case: 'no concurrent repair', spec: { watchdog: { maxConcurrent: 0 } }, message: 'watchdog.maxConcurrent must be at least 1' },
    { case: 'a recovery of 0', spec: { watchdog: { recoverySeconds: 0 } }, message: 'watchdog.recoverySeconds must be at least 1' },
    { case: 'a negative rollout partition', spec: { rollout: { partition: -1 } }, message: 'rollout.partition must be 0 or more' },
    {
      case: 'a concurrency minimum of 0',
      spec: { throttling: { concurrency: { min: 0 } } },
      message: 'throttling.concurrency.min must be between 1 and 100000',
    },
    {
      case: 'a lag bound of 60001 ms',
      spec: { throttling: { eventLoopLagMilliseconds: 60_001 } },
      message: 'throttling.eventLoopLagMilliseconds must be between 1 and 60000',
    },
    { case: 'an unknown fencing policy', spec: { watchdog: { fencing: 'Reboot' } }, message: 'Unsupported value: "Reboot"' },
    {
      case: 'a redirect endpoint with a path',
      spec: {
        stores: { ...required.stores, s3: { ...required.stores.s3, downloadRedirect: { endpoint: 'https://s3.example.com/blocks' } } },
      },
      message: 'spec.stores.s3.downloadRedirect.endpoint',
    },
    {
      case: 'a redirect valid for 30 s',
      spec: {
        stores: {
          ...required.stores,
          s3: { ...required.stores.s3, downloadRedirect: { endpoint: 'https://s3.example.com', expirySeconds: 30 } },
        },
      },
      message: 'downloadRedirect.expirySeconds must be between 60 and 86400',
    },
  ])('rejects $case with the rule message', async ({ spec, message }) => {
    const result = await kubectl(admin, ['create', '--dry-run=server', '-f', '-'], manifest('invalid', { ...required, ...spec }));
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(message);
  });

  describe('with a stored MeshPartition', () => {
    const name = 'stored';
    beforeAll(async () => {
      await kubectlOk(admin, ['create', '-f', '-'], manifest(name, required));
    });

    const patchStatus = (status: object) =>
      kubectl(admin, [
        'patch',
        '-n',
        namespace,
        'meshpartition',
        name,
        '--subresource=status',
        '--type=merge',
        '-p',
        JSON.stringify({ status }),
      ]);

    it('refuses a member without health and level, and takes one with them', async () => {
      const bare = await patchStatus({ members: [{ pod: `${name}-0` }] });
      expect(bare.code).not.toBe(0);
      expect(bare.stderr).toContain('status.members[0].health: Required value');
      expect(bare.stderr).toContain('status.members[0].level: Required value');
      const whole = await patchStatus({ members: [{ pod: `${name}-0`, health: 'Healthy', level: 0 }] });
      expect(whole.stderr).toBe('');
      expect(whole.code).toBe(0);
    });

    it('refuses a change of storage', async () => {
      const patch = JSON.stringify({ spec: { storage: { volumes: 2 } } });
      const result = await kubectl(admin, ['patch', '-n', namespace, 'meshpartition', name, '--type=merge', '-p', patch]);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain('storage cannot be changed after creation');
    });
  });
});
