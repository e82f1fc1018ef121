// Watchdog benchmark: time from a fault to the member being Ready again, with the watchdog
// (mode Enforce) and without it (Kubernetes alone: the same operator with the watchdog in
// Observe mode, so nothing but Kubernetes acts), on a private local cluster with real
// data-plane processes. Faults: a frozen process (hang), a powered-off node (node lost),
// a read-only data volume (volume fault: the data plane exits with code 4).
// The runs without the watchdog wait at most --cap-seconds (600) and report the cap.
// `--defaults` runs with the watchdog settings a user gets (the CRD's defaults) instead of the
// short demo settings, and names its figures mttr_*_default_s.
//   npm run bench -- watchdog [--defaults] [--cap-seconds=600] [--skip-baseline] [--faults=hang,node_lost,volume_fault] [--verbose: node agent log, keep the operator log]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { WatchdogSpec } from '../operator/src/api/v1alpha1.ts';
import { startControlPlane } from '../e2e/harness/controlplane.ts';
import { startMinio } from '../e2e/harness/minio.ts';
import { DeadlineExceededError } from '../e2e/harness/wait.ts';
import { containerRestarts, WatchdogCluster } from '../e2e/watchdog/cluster.ts';

const { values } = parseArgs({
  options: {
    'cap-seconds': { type: 'string', default: '600' },
    'skip-baseline': { type: 'boolean', default: false },
    faults: { type: 'string', default: 'hang,node_lost,volume_fault' },
    verbose: { type: 'boolean', default: false },
    defaults: { type: 'boolean', default: false },
  },
});
const capSeconds = Number(values['cap-seconds']);

/** Demo settings: short enough to measure in minutes, printed beside the numbers. */
const demoSettings: Partial<WatchdogSpec> = {
  tolerationSeconds: 5,
  healthyResetSeconds: 120,
  nodeLostSeconds: 30,
  recoverySeconds: 30,
  probeTimeoutSeconds: 1,
  probePeriodSeconds: 2,
  fencing: 'ForceDelete',
  maxConcurrent: 1,
  actionsPerHour: 20,
};
/** The watchdog settings of every run: with --defaults none (the CRD fills in the defaults). */
const settings: Partial<WatchdogSpec> = values.defaults ? {} : demoSettings;

type Fault = 'hang' | 'node_lost' | 'volume_fault';
interface Outcome {
  seconds: number;
  capped: boolean;
}

const round = (s: number): number => Math.round(s * 10) / 10;
const log = (message: string): void => console.log(`${new Date().toISOString()} ${message}`);

const logDir = await mkdtemp(join(tmpdir(), 'meshwork-bench-watchdog-'));
const controlPlane = await startControlPlane({
  // As in the tests: a node is NotReady 20 s after its last heartbeat.
  extraArgs: { 'kube-controller-manager': ['--node-monitor-grace-period=20s', '--node-monitor-period=2s'] },
});
const minio = await startMinio();
const cluster = new WatchdogCluster({
  adminKubeconfig: controlPlane.adminKubeconfig,
  minio,
  logDir,
  nodeCount: 5,
  addressBlock: 7,
  // The baselines leave members broken on purpose; they must not pause the measured runs.
  maxUnhealthyPercent: 100,
  verbose: values.verbose,
});

interface Prepared {
  partition: string;
  fault: Fault;
  pod: string;
  uid: string;
  restarts: number;
  node: string;
}

/** Applies a partition, waits for its members and picks the member to break (not on `avoidNodes`). */
async function prepare(partition: string, mode: 'Enforce' | 'Observe', fault: Fault, avoidNodes: string[] = []): Promise<Prepared> {
  await cluster.applyPartition(partition, { ...settings, mode });
  const pods = await cluster.waitForReadyMembers(partition, 3, 180_000);
  const target = pods
    .filter((p) => !avoidNodes.includes(p.spec!.nodeName!))
    .sort((a, b) => a.metadata!.name!.localeCompare(b.metadata!.name!))[0]!;
  return {
    partition,
    fault,
    pod: target.metadata!.name!,
    uid: target.metadata!.uid!,
    restarts: containerRestarts(target),
    node: target.spec!.nodeName!,
  };
}

/** Injects the fault and times the member back to Ready in a new pod (or, for a hang, a restarted container), or to the cap. */
async function run(p: Prepared, capMs: number): Promise<Outcome> {
  const started = Date.now();
  let repair = (): Promise<void> => Promise.resolve();
  // The kubelet keeps probing the hung process, so without the watchdog its liveness probe
  // restarts it: the baseline is what Kubernetes alone really does.
  if (p.fault === 'hang') cluster.agent.freezePod(cluster.namespace, p.pod, { probes: 'continue' });
  if (p.fault === 'node_lost') await cluster.agent.powerOff(p.node, 'kill');
  if (p.fault === 'volume_fault') repair = await cluster.breakVolume(`data-1-${p.pod}`);
  log(`${p.partition}: ${p.fault} on ${p.pod} (node ${p.node})`);
  try {
    await cluster.waitForMemberReady(p.pod, capMs, p.uid, p.fault === 'hang' ? p.restarts : undefined);
    return { seconds: (Date.now() - started) / 1000, capped: false };
  } catch (err) {
    if (!(err instanceof DeadlineExceededError)) throw err;
    return { seconds: capMs / 1000, capped: true };
  } finally {
    await repair();
    if (p.fault === 'node_lost') await cluster.agent.powerOn(p.node);
    log(`${p.partition}: done after ${round((Date.now() - started) / 1000)} s`);
  }
}

const withWatchdog: Partial<Record<Fault, Outcome>> = {};
const without: Partial<Record<Fault, Outcome>> = {};
const allFaults: Fault[] = ['hang', 'node_lost', 'volume_fault'];
const faults = values.faults.split(',').map((f) => f.trim()) as Fault[];
for (const f of faults) if (!allFaults.includes(f)) throw new Error(`--faults: unknown fault "${f}"; choose from ${allFaults.join(', ')}`);
const capMs = capSeconds * 1000;
try {
  await cluster.start();
  log(`Started the cluster (operator log in ${logDir})`);
  // With the watchdog: one fault at a time, each on a fresh partition.
  for (const fault of faults) {
    const prepared = await prepare(`with-${fault.replace('_', '-')}`, 'Enforce', fault);
    withWatchdog[fault] = await run(prepared, capMs);
    await cluster.deletePartition(prepared.partition);
  }
  if (!values['skip-baseline']) {
    // Kubernetes alone: the faults at once, each on its own partition, the node-lost one on a
    // node no other broken member uses, so the capped waits overlap instead of adding up.
    const lost = faults.includes('node_lost') ? [await prepare('alone-node-lost', 'Observe', 'node_lost')] : [];
    const avoid = lost.map((p) => p.node);
    const others = await Promise.all(
      faults.filter((f) => f !== 'node_lost').map((f) => prepare(`alone-${f.replace('_', '-')}`, 'Observe', f, avoid)),
    );
    const outcomes = await Promise.all([...lost, ...others].map(async (p) => [p.fault, await run(p, capMs)] as const));
    for (const [fault, outcome] of outcomes) without[fault] = outcome;
  }
} finally {
  await cluster.stop().catch(() => undefined);
  await minio.stop();
  await controlPlane.stop();
  if (!values.verbose) await rm(logDir, { recursive: true, force: true }).catch(() => undefined);
}

const targets: Record<Fault, number> = values.defaults
  ? { hang: 20, node_lost: 45, volume_fault: 30 }
  : { hang: 30, node_lost: 90, volume_fault: 60 };
const show = (o: Outcome | undefined): string => (o ? `${round(o.seconds)} s${o.capped ? ' (cap)' : ''}` : 'not run');
console.log(
  `\nwatchdog settings: ${values.defaults ? 'the defaults' : JSON.stringify(settings)}; maxUnhealthyPercent 100; cap without the watchdog: ${capSeconds} s`,
);
console.log('without the watchdog = Kubernetes alone (the operator runs with mode: Observe)');
console.log(`\n${'fault'.padEnd(14)}  ${'with watchdog'.padStart(14)}  ${'without'.padStart(14)}  target`);
for (const fault of ['hang', 'node_lost', 'volume_fault'] as Fault[]) {
  console.log(
    `${fault.padEnd(14)}  ${show(withWatchdog[fault]).padStart(14)}  ${show(without[fault]).padStart(14)}  <= ${targets[fault]} s`,
  );
}
const figure = (o: Outcome | undefined): number | null => (o ? round(o.seconds) : null);
const suffix = values.defaults ? '_default' : '';
console.log(
  JSON.stringify({
    ...Object.fromEntries(
      allFaults.flatMap((f) => [
        [`mttr_${f}${suffix}_s`, figure(withWatchdog[f])],
        [`mttr_${f}${suffix}_without_s`, figure(without[f])],
      ]),
    ),
    without_capped: Object.entries(without)
      .filter(([, o]) => o.capped)
      .map(([f]) => f),
    cap_s: capSeconds,
    settings,
  }),
);
