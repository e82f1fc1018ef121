// Operator benchmark: 500 MeshPartitions applied at once against a private control plane,
// timed until every StatefulSet exists and every status is written; then the operator's
// memory, and its API writes over a window in which nothing changes.
// Baseline, measured in the same run: the API server accepting 500 plain StatefulSet
// creates from the same client and concurrency.
//   npm run bench -- operator [--partitions=500] [--steady-seconds=300] [--controller-manager-qps=20] [--progress]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { KubernetesObject, V1StatefulSet } from '@kubernetes/client-node';
import { pino } from 'pino';
import { parse } from 'yaml';
import { repoRoot } from '../e2e/harness/binaries.ts';
import { startControlPlane } from '../e2e/harness/controlplane.ts';
import { waitFor } from '../e2e/harness/wait.ts';
import { samplePartition } from '../operator/src/api/fixtures.ts';
import { apiVersion, type MeshPartition } from '../operator/src/api/v1alpha1.ts';
import { ResilientInformer } from '../operator/src/controller/informer.ts';
import { KubeClient, type KubeObject } from '../operator/src/kube/client.ts';
import { loadKubeconfigFile } from '../operator/src/kube/credentials.ts';
import { buildStatefulSet } from '../operator/src/specs/statefulset.ts';
import {
  installCrds,
  kubectlOk,
  leaseWrites,
  reconcileWrites,
  startOperator,
  waitForWritesToSettle,
  sumMetric,
} from '../e2e/operator/harness.ts';
import { cpuSeconds } from './proc.ts';

const { values } = parseArgs({
  options: {
    partitions: { type: 'string', default: '500' },
    'steady-seconds': { type: 'string', default: '300' },
    concurrency: { type: 'string', default: '16' },
    progress: { type: 'boolean', default: false },
    // The Kubernetes default. A higher rate lets pods and claims follow sooner but competes
    // with the operator for the API server while the partitions are created.
    'controller-manager-qps': { type: 'string', default: '20' },
  },
});
const count = Number(values.partitions);
const steadySeconds = Number(values['steady-seconds']);
const clientConcurrency = Number(values.concurrency);

/** Runs `task` for 0..n-1 with at most `limit` in flight. */
async function inParallel(n: number, limit: number, task: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, n) }, async () => {
      while (next < n) await task(next++);
    }),
  );
}

function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'))!;
  return Number(/(\d+)/.exec(line)![1]) / 1024;
}

const seconds = (ms: number): number => Math.round(ms / 10) / 100;

const controllerManagerQps = Number(values['controller-manager-qps']);
const controlPlane = await startControlPlane({
  extraArgs: { 'kube-controller-manager': [`--kube-api-qps=${controllerManagerQps}`, `--kube-api-burst=${controllerManagerQps * 2}`] },
});
const admin = controlPlane.adminKubeconfig;
const client = new KubeClient(loadKubeconfigFile(controlPlane.adminKubeconfig), { timeoutMs: 60_000 });
let operatorStop: (() => Promise<unknown>) | undefined;
let stopWatches: (() => Promise<unknown>) | undefined;
try {
  await installCrds(admin);
  for (const ns of ['baseline', 'bench', 'meshwork-system']) await kubectlOk(admin, ['create', 'namespace', ns]);
  const sample = parse(readFileSync(join(repoRoot, 'crds/samples/meshpartition.yaml'), 'utf8')) as MeshPartition;

  // Baseline: plain StatefulSets (0 replicas, so no controller work follows) straight to the API server.
  const baselineStart = performance.now();
  await inParallel(count, clientConcurrency, async (i) => {
    const sts = buildStatefulSet(samplePartition(`base-${i}`, {}, 'baseline'));
    sts.spec!.replicas = 0;
    delete sts.metadata!.ownerReferences;
    await client.create({ apiVersion: 'apps/v1', resource: 'statefulsets', namespace: 'baseline' }, sts as KubeObject);
  });
  const baselineMs = performance.now() - baselineStart;

  const operator = await startOperator({
    kubeconfig: admin,
    namespace: 'meshwork-system',
    watchNamespace: 'bench',
    logFile: join(controlPlane.dir, 'logs', 'operator.log'),
    extraEnv: { MESHWORK_LOG_LEVEL: 'warn' },
  });
  operatorStop = () => operator.process.stop();
  await waitFor(async () => (await operator.metric('meshwork_leader_election_is_leader')) === 1, {
    description: 'the operator to lead',
    timeoutMs: 30_000,
  });

  // Progress is followed with watches: polling lists of 500 objects would load the API server it measures.
  const watchLog = pino({ level: 'silent' });
  const watchedPartitions = new ResilientInformer<MeshPartition & KubernetesObject>({
    client,
    ref: { apiVersion, resource: 'meshpartitions', namespace: 'bench' },
    log: watchLog,
  });
  const watchedStatefulSets = new ResilientInformer<V1StatefulSet>({
    client,
    ref: { apiVersion: 'apps/v1', resource: 'statefulsets', namespace: 'bench' },
    log: watchLog,
  });
  await Promise.all([watchedPartitions.start(), watchedStatefulSets.start()]);
  stopWatches = () => Promise.all([watchedPartitions.stop(), watchedStatefulSets.stop()]);

  const createStart = performance.now();
  await inParallel(count, clientConcurrency, (i) =>
    client.create(
      { apiVersion, resource: 'meshpartitions', namespace: 'bench' },
      { ...sample, metadata: { name: `p${i}`, namespace: 'bench' } },
    ),
  );
  const acceptedMs = performance.now() - createStart;
  let lastProgress = 0;
  await waitFor(
    async () => {
      const statefulSets = watchedStatefulSets.list().length;
      const written = watchedPartitions.list().filter((p) => p.status?.observedGeneration === p.metadata.generation).length;
      if (values.progress && performance.now() - lastProgress > 5_000) {
        lastProgress = performance.now();
        const text = await operator.metrics();
        console.log(
          JSON.stringify({
            t: seconds(performance.now() - createStart),
            statefulsets: statefulSets,
            statuses: written,
            queue: sumMetric(text, 'meshwork_workqueue_depth'),
            reconciles: sumMetric(text, 'meshwork_reconcile_total'),
            writes: reconcileWrites(text),
            operator_cpu_s: cpuSeconds(operator.process.pid),
          }),
        );
      }
      return statefulSets >= count && written === count;
    },
    { description: `${count} StatefulSets and statuses`, timeoutMs: 600_000, intervalMs: 100 },
  );
  const createMs = performance.now() - createStart;
  const rssAfterCreate = rssMb(operator.process.pid);

  // Let the StatefulSet controller finish creating pods and claims, and status follow.
  const settleStart = performance.now();
  await waitFor(
    () => watchedPartitions.list().every((p) => p.status?.members?.length === p.spec.replicas && p.status.replicas === p.spec.replicas),
    { description: 'every partition to list all its members', timeoutMs: 900_000, intervalMs: 2_000 },
  );
  await waitForWritesToSettle(operator, { description: 'the operator writes to stop', timeoutMs: 300_000, intervalMs: 10_000 });
  const settleMs = performance.now() - settleStart;

  const before = await operator.metrics();
  const reconcilesBefore = await operator.metric('meshwork_reconcile_total');
  const windowStart = performance.now();
  await waitFor(() => performance.now() - windowStart >= steadySeconds * 1000, {
    description: 'the steady window',
    timeoutMs: steadySeconds * 1000 + 5_000,
    intervalMs: 1_000,
  });
  const after = await operator.metrics();
  const minutes = steadySeconds / 60;
  const steadyWrites = reconcileWrites(after) - reconcileWrites(before);
  const leaseRenewals = leaseWrites(after) - leaseWrites(before);
  const reconcilesDuring = (await operator.metric('meshwork_reconcile_total')) - reconcilesBefore;
  const rss = rssMb(operator.process.pid);
  const heapMb = (await operator.metric('meshwork_operator_nodejs_heap_size_used_bytes')) / 2 ** 20;
  const totalWrites = reconcileWrites(after);

  const rows: [string, string, string][] = [
    [`baseline: ${count} plain StatefulSet creates accepted`, `${seconds(baselineMs)} s`, ''],
    [`${count} MeshPartition creates accepted`, `${seconds(acceptedMs)} s`, ''],
    [`create_${count}_s: every StatefulSet exists, every status written`, `${seconds(createMs)} s`, 'target < 60 s'],
    ['pods and claims created, status settled', `${seconds(settleMs)} s`, `controller manager at ${controllerManagerQps} requests/s`],
    ['operator writes in total (apply, status, events)', `${totalWrites}`, `${(totalWrites / count).toFixed(1)} per partition`],
    ['operator RSS after create', `${rssAfterCreate.toFixed(0)} MB`, ''],
    ['operator_rss_mb after the steady window', `${rss.toFixed(0)} MB`, `target < 250; JS heap in use ${heapMb.toFixed(0)} MB`],
    [
      `steady_writes_per_min over ${steadySeconds} s`,
      `${(steadyWrites / minutes).toFixed(2)}`,
      `target 0; ${reconcilesDuring} reconciles ran`,
    ],
    ['leader Lease renewals per min (not counted above)', `${(leaseRenewals / minutes).toFixed(1)}`, 'one per 2 s retry period'],
  ];
  const width = Math.max(...rows.map((r) => r[0].length));
  console.log(`\n${'measure'.padEnd(width)}  ${'value'.padStart(10)}  note`);
  for (const [name, value, note] of rows) console.log(`${name.padEnd(width)}  ${value.padStart(10)}  ${note}`);
  console.log(
    JSON.stringify({
      benchmark: 'operator',
      partitions: count,
      controller_manager_qps: controllerManagerQps,
      [`baseline_${count}_statefulsets_s`]: seconds(baselineMs),
      [`create_${count}_s`]: seconds(createMs),
      operator_rss_mb: Math.round(rss),
      steady_window_s: steadySeconds,
      steady_writes_per_min: Math.round((steadyWrites / minutes) * 100) / 100,
      lease_renewals_per_min: Math.round((leaseRenewals / minutes) * 10) / 10,
    }),
  );
} finally {
  await stopWatches?.();
  await operatorStop?.();
  client.close();
  await controlPlane.stop();
}
