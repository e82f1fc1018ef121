// Informers and leader election on a private control plane that the test stops and
// restarts: the classic failure of a Node operator is a watch that silently stops.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1ConfigMap } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane, type ControlPlane } from '../../../e2e/harness/controlplane.ts';
import { waitFor } from '../../../e2e/harness/wait.ts';
import { KubeClient } from '../kube/client.ts';
import { loadKubeconfigFile } from '../kube/credentials.ts';
import { ResilientInformer } from './informer.ts';
import { LeaderElector } from './leaderelection.ts';

const log = pino({ level: 'silent' });
const configMaps = { apiVersion: 'v1', resource: 'configmaps', namespace: 'default' };

describe('on a control plane that restarts', () => {
  let dir = '';
  let port = 0;
  let controlPlane: ControlPlane | undefined;
  let client: KubeClient;
  let informer: ResilientInformer<V1ConfigMap>;
  let restarts = 0;
  let relists = 0;
  let watches = 0;
  const seen = new Set<string>();

  const start = async (): Promise<ControlPlane> => {
    const cp = await startControlPlane({ dir, apiServerPort: port || undefined });
    port = Number(new URL(cp.server).port);
    return cp;
  };
  const create = (name: string): Promise<unknown> =>
    client.create(configMaps, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name, namespace: 'default', labels: { test: 'informer' } },
      data: { a: '1' },
    });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshwork-resilience-'));
    controlPlane = await start();
    client = new KubeClient(loadKubeconfigFile(controlPlane.adminKubeconfig), {
      timeoutMs: 3_000,
      observe: (verb) => void (verb === 'watch' && watches++),
    });
    informer = new ResilientInformer<V1ConfigMap>({
      client,
      ref: configMaps,
      labelSelector: 'test=informer',
      log,
      restarted: () => restarts++,
      relisted: () => relists++,
      baseDelayMs: 200,
      maxDelayMs: 2_000,
      watchTimeoutSeconds: 2,
    });
    informer.onChange((obj, event) => {
      if (event !== 'delete') seen.add(obj.metadata!.name!);
    });
    await informer.start();
  });

  afterAll(async () => {
    await informer?.stop();
    client?.close();
    await controlPlane?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps delivering changes after the API server ends its watches', async () => {
    expect(informer.synced).toBe(true);
    await create('first');
    await waitFor(() => seen.has('first'), { description: 'the informer to see ConfigMap first', timeoutMs: 10_000 });
    // The informer asks the server to end each watch after 2 to 3 s; a change made after that must still arrive.
    const watchesBefore = watches;
    await waitFor(() => watches >= watchesBefore + 2, { description: 'the server to end two watches', timeoutMs: 15_000 });
    expect(restarts).toBe(0);
    await create('after-timeout');
    await waitFor(() => seen.has('after-timeout'), {
      description: 'the informer to see a change after its watch timed out',
      timeoutMs: 10_000,
    });
    expect(informer.get('after-timeout', 'default')?.data).toEqual({ a: '1' });
  });

  it('restarts after the API server was down and sees changes again', async () => {
    await controlPlane!.stop();
    controlPlane = undefined;
    await waitFor(() => restarts > 0, { description: 'the informer to notice the API server is gone', timeoutMs: 60_000 });
    controlPlane = await start();
    await create('after-restart');
    await waitFor(() => seen.has('after-restart'), {
      description: 'the informer to see a change after the API server restarted',
      timeoutMs: 60_000,
    });
    expect(
      informer
        .list('default')
        .map((c) => c.metadata!.name)
        .sort(),
    ).toEqual(['after-restart', 'after-timeout', 'first']);
    console.log(`The informer restarted ${restarts} times and relisted ${relists} times across the API server restart`);
    // The cache holds what the operator reads, without managedFields.
    expect(informer.get('first', 'default')!.metadata!.managedFields).toBeUndefined();
  });

  it('makes a leader that cannot renew step down within the renew deadline', async () => {
    const timings = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 250 };
    let leading = false;
    let stoppedAt = 0;
    let reason = '';
    const leaseClient = new KubeClient(loadKubeconfigFile(controlPlane!.adminKubeconfig), { timeoutMs: 500 });
    const elector = new LeaderElector({
      client: leaseClient,
      namespace: 'default',
      name: 'resilience',
      identity: 'me',
      log,
      timings,
      onStartedLeading: () => (leading = true),
      onStoppedLeading: (why) => {
        stoppedAt = Date.now();
        reason = why;
      },
    });
    elector.start();
    await waitFor(() => leading, { description: 'the elector to lead', timeoutMs: 10_000 });
    // Freeze the API server: renewals hang, as on a partitioned network.
    const apiserver = controlPlane!.processes.find((p) => p.spec.component === 'kube-apiserver')!;
    apiserver.signal('SIGSTOP');
    const frozenAt = Date.now();
    try {
      await waitFor(() => stoppedAt > 0, { description: 'the leader to step down', timeoutMs: 10_000, intervalMs: 50 });
    } finally {
      apiserver.signal('SIGCONT');
      leaseClient.close();
    }
    expect(elector.isLeader).toBe(false);
    expect(reason).toContain('not renewed');
    // Within the renew deadline plus one retry and one request deadline; well before the lease expires for others.
    expect(stoppedAt - frozenAt).toBeLessThan(timings.renewDeadlineMs + timings.retryPeriodMs + 500 + 250);
  });
});
