// Proof that no panel is empty: a partition, a gateway, a prober and the operator run as real
// processes (the operator against the shared control plane, with a sample Mesh), a user works
// through the gateway, a second operator on a control plane of its own watches a one-member
// partition on a process-backed node whose process is killed (its time to recover), and a real
// Prometheus scrapes them all with the labels the scrape configuration gives pods. Then every panel's queries and every alert expression go through
// Prometheus' HTTP API: each parses, each panel returns data, and every metric they name was
// scraped (a metric that no component exports fails the test by name).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { MeshworkClient } from '@meshwork/client';
import { dataplaneNodeFlags } from '@meshwork/contract';
import { alertGroups } from '../../observability/alerts.ts';
import { dashboardSpecs } from '../../observability/dashboards.ts';
import { seriesIn } from '../../observability/metrics.ts';
import { repoRoot } from '../harness/binaries.ts';
import { startControlPlane, type ControlPlane } from '../harness/controlplane.ts';
import { startEtcd, type EtcdServer } from '../harness/etcd.ts';
import { startMinio, type MinioServer } from '../harness/minio.ts';
import { freePort } from '../harness/ports.ts';
import { ManagedProcess } from '../harness/process.ts';
import { startPrometheus, type PrometheusServer } from '../harness/prometheus.ts';
import { waitFor } from '../harness/wait.ts';
import { startGateway, type RunningGateway } from '../dataplane/gateway-process.ts';
import { startPartition, type RunningPartition } from '../dataplane/partition-process.ts';
import { kubectlOk, startOperatorUnderRbac, stopOperatorUnderRbac, type OperatorProcess } from '../operator/harness.ts';
import { WatchdogCluster } from '../watchdog/cluster.ts';

const stack = inject('stack');
const suffix = randomBytes(3).toString('hex');
const setup = {
  admin: stack.controlPlane.adminKubeconfig,
  suffix,
  operatorNamespace: `mw-obs-operator-${suffix}`,
  namespace: `mw-obs-${suffix}`,
};
const namespace = setup.namespace;
const dir = mkdtempSync(join(tmpdir(), 'meshwork-panels-'));
/** What Grafana would put in the variables: every namespace and partition, a short rate window. */
const variables: Record<string, string> = { $__rate_interval: '10s', $__range: '1h', $namespace: '.*', $partition: '.*' };

/**
 * Counters that have no series until their first event (an error, a retry, a watchdog action):
 * a quiet run does not scrape them. Their panels fall back to a zero line of the same
 * component; the unit tests check that the components declare them.
 */
const eventCounters = new Set([
  'meshwork_reconcile_errors_total',
  'meshwork_workqueue_retries_total',
  'meshwork_watchdog_actions_total',
  'meshwork_watchdog_intentions_total',
  'meshwork_events_total',
]);

let etcd: EtcdServer;
let minio: MinioServer;
let partition: RunningPartition;
let gateway: RunningGateway;
let prober: ManagedProcess;
let operator: OperatorProcess;
let prometheus: PrometheusServer;
let startedAt: number;
let watchdogPlane: ControlPlane | undefined;
let watchdogCluster: WatchdogCluster | undefined;

const hostPort = (url: string): string => new URL(url).host;

async function promApi<T>(path: string, params: Record<string, string>): Promise<{ status: string; data: T; error?: string }> {
  const res = await fetch(`${prometheus.url}/api/v1/${path}?${new URLSearchParams(params).toString()}`);
  return (await res.json()) as { status: string; data: T; error?: string };
}

type RangeResult = { resultType: string; result: { metric: Record<string, string>; values: [number, string][] }[] };

async function queryRange(expr: string): Promise<{ status: string; data: RangeResult; error?: string }> {
  const end = Date.now() / 1000;
  return promApi<RangeResult>('query_range', { query: expr, start: String(startedAt / 1000), end: String(end), step: '2' });
}

const substitute = (expr: string): string => Object.entries(variables).reduce((e, [k, v]) => e.split(k).join(v), expr);
const hasData = (r: RangeResult): boolean => r.result.some((s) => s.values.some(([, v]) => v !== 'NaN'));

/**
 * A control plane of its own with one process-backed node and an operator watching a
 * one-member partition, until that member is Ready and the watchdog has seen it healthy (the
 * watchdog's cluster installs CRDs and cluster-wide RBAC, which the shared control plane's
 * operator test must not see; its node must not take the shared cluster's pods).
 */
async function startWatchdogCluster(): Promise<{ cluster: WatchdogCluster; member: string }> {
  watchdogPlane = await startControlPlane({
    extraArgs: { 'kube-controller-manager': ['--node-monitor-grace-period=20s', '--node-monitor-period=2s'] },
  });
  watchdogCluster = new WatchdogCluster({
    adminKubeconfig: watchdogPlane.adminKubeconfig,
    minio: stack.minio,
    logDir: dir,
    nodeCount: 1,
    addressBlock: 9,
  });
  const cluster = watchdogCluster;
  await cluster.start();
  await cluster.applyPartition('ttr', { tolerationSeconds: 30, probePeriodSeconds: 1, probeTimeoutSeconds: 1 }, 1);
  const [pod] = await cluster.waitForReadyMembers('ttr', 1, 120_000);
  const member = pod!.metadata!.name!;
  await waitFor(
    async () => (await cluster.partition('ttr')).status?.members?.find((m) => m.pod === member)?.health === 'Healthy' || undefined,
    {
      description: `the watchdog to see member ${member} healthy`,
      timeoutMs: 60_000,
      intervalMs: 250,
    },
  );
  return { cluster, member };
}

/** Kills the member's process: the node restarts it, and the watchdog sees it unhealthy, then healthy again. */
async function killAndRecover(cluster: WatchdogCluster, member: string): Promise<void> {
  const before = await cluster.pod(member);
  cluster.agent.killPod(cluster.namespace, member);
  await cluster.waitForMemberReady(member, 90_000, before?.metadata?.uid, containerRestartsOf(before));
  await waitFor(async () => ((await cluster.operator.metric('meshwork_watchdog_recovery_seconds_count')) > 0 ? true : undefined), {
    description: `the watchdog to record the recovery of member ${member}`,
    timeoutMs: 60_000,
    intervalMs: 250,
  });
}

const containerRestartsOf = (pod: Awaited<ReturnType<WatchdogCluster['pod']>>): number =>
  (pod?.status?.containerStatuses ?? []).reduce((sum, c) => sum + c.restartCount, 0);

beforeAll(async () => {
  startedAt = Date.now();
  const watchdogReady = startWatchdogCluster();
  // Awaited below; a failure here must not go unhandled meanwhile.
  watchdogReady.catch(() => undefined);
  [etcd, minio] = await Promise.all([startEtcd({ name: 'panels-etcd' }), startMinio({ bucket: 'panels' })]);
  const adminToken = `admin-${randomBytes(16).toString('hex')}`;
  partition = await startPartition({ etcdEndpoint: etcd.endpoint, minio }, { partition: 'obs', slots: '0-4095', adminToken });
  gateway = await startGateway({ etcdEndpoint: etcd.endpoint, env: { MESHWORK_GATEWAY_PROBE_INTERVAL_MS: '200' } });
  await waitFor(async () => ((await (await fetch(`${gateway.url}/v1/slots`)).text()).includes('"obs"') ? true : undefined), {
    description: 'the gateway to see partition obs',
    timeoutMs: 20_000,
  });
  const admin = new MeshworkClient({ baseUrl: gateway.url, token: adminToken });
  const probeAccount = await admin.createUser('meshwork-prober');
  const proberPort = await freePort();
  prober = ManagedProcess.start({
    component: 'prober',
    binary: process.execPath,
    args: [...dataplaneNodeFlags, join(repoRoot, 'dataplane/src/main.ts'), 'prober'],
    logFile: join(dir, 'prober.log'),
    cwd: repoRoot,
    env: {
      PATH: process.env.PATH,
      MESHWORK_LISTEN: `127.0.0.1:${proberPort}`,
      MESHWORK_PROBER_TARGET: gateway.url,
      MESHWORK_PROBER_ACCOUNT_TOKEN: probeAccount.token,
      MESHWORK_PROBER_INTERVAL_SECONDS: '1',
      MESHWORK_PROBER_STEP_TIMEOUT_SECONDS: '10',
      MESHWORK_PROBER_FILE_BYTES: '300Ki',
      MESHWORK_TERMINATION_MESSAGE_PATH: join(dir, 'prober-termination'),
    },
  });
  const proberUrl = `http://127.0.0.1:${proberPort}`;
  await prober.waitReady(async () => (await fetch(`${proberUrl}/readyz`).catch(() => undefined))?.ok === true, {
    timeoutMs: 30_000,
    what: 'to answer /readyz',
  });
  operator = await startOperatorUnderRbac(setup, join(dir, 'operator.log'));
  const { cluster: watchdog, member } = await watchdogReady;

  const common = { namespace };
  prometheus = await startPrometheus({
    dataDir: join(dir, 'prometheus'),
    scrapeInterval: '1s',
    ruleFiles: [join(repoRoot, 'charts/meshwork/alerts/meshwork.rules.yaml')],
    targets: [
      { address: hostPort(partition.url), labels: { ...common, role: 'partition', partition: 'obs', pod: 'obs-0' } },
      { address: hostPort(gateway.url), labels: { ...common, role: 'gateway', mesh: 'mesh', pod: 'mesh-gateway-0' } },
      { address: hostPort(proberUrl), labels: { ...common, role: 'prober', mesh: 'mesh', pod: 'mesh-prober-0' } },
      { address: hostPort(operator.url), labels: { namespace: setup.operatorNamespace, role: 'operator', pod: 'meshwork-operator-0' } },
      {
        address: hostPort(watchdog.operator.url),
        labels: { namespace: watchdog.operatorNamespace, role: 'operator', pod: 'meshwork-operator-watchdog' },
      },
    ],
  });

  // The Mesh once Prometheus has scraped the operator, so that it sees the reconciles rise.
  await waitFor(
    async () =>
      (await promApi<{ result: unknown[] }>('query', { query: 'count_over_time(up{role="operator"}[1m]) >= 2' })).data.result.length > 0 ||
      undefined,
    { description: 'Prometheus to have scraped the operator twice', timeoutMs: 30_000, intervalMs: 250 },
  );
  await kubectlOk(setup.admin, ['apply', '-n', namespace, '-f', join(repoRoot, 'crds/samples/mesh.yaml')]);
  // The recovery once Prometheus has scraped the watchdog's zero series: increase() sees it then.
  await waitFor(
    async () =>
      (
        await promApi<{ result: unknown[] }>('query', {
          query: 'meshwork_watchdog_recovery_seconds_count{pod="meshwork-operator-watchdog"}',
        })
      ).data.result.length > 0 || undefined,
    { description: "Prometheus to have scraped the watchdog's operator", timeoutMs: 30_000, intervalMs: 250 },
  );
  const recovered = killAndRecover(watchdog, member);

  // A user's work through the gateway besides the prober's: several files, long polls, a miss.
  const user = await admin.createUser('alice');
  const alice = new MeshworkClient({ baseUrl: gateway.url, token: user.token });
  const object = await alice.createObject({ name: 'docs' });
  for (let i = 0; i < 5; i++) {
    const { cursor } = await alice.notifications({ wait: 0 });
    await alice.upload(object.id, `file-${i}.bin`, randomBytes(200_000), { ifNoneMatch: '*' });
    await alice.notifications({ cursor, wait: 5 });
    await alice.download(object.id, `file-${i}.bin`, new WritableStream());
  }
  await alice.getObject('00000000000000000000000000').catch(() => undefined);
  await recovered;

  // Enough scrapes for every rate window (a rate needs two samples in it), good journeys, the
  // operator's reconciles and its view of the Mesh.
  await waitFor(
    async () => {
      const checks = [
        'count(up == 1) == 5',
        'sum(rate(meshwork_prober_journeys_total{outcome="ok"}[10s])) > 0',
        'sum(rate(meshwork_http_request_duration_seconds_count{role="partition"}[10s])) > 0',
        // Reconciles seen at least 3 s ago: the panels' range queries step every 2 s from the
        // start, so their last point may lie up to 2 s before now; a rate first seen in the last
        // second would be missing from them.
        'max_over_time(sum(rate(meshwork_reconcile_total{role="operator"}[10s]))[5m:1s] offset 3s) > 0',
        'count(meshwork_mesh_slots_covered)',
        'count(meshwork_watchdog_members)',
        // Seen at least 3 s ago, as the reconciles above.
        'max_over_time(sum(increase(meshwork_watchdog_recovery_seconds_count[1h]))[5m:1s] offset 3s) > 0',
      ];
      const results = await Promise.all(
        checks.map(async (q) => (await promApi<{ result: unknown[] }>('query', { query: q })).data.result.length > 0),
      );
      const failing = checks.filter((_, i) => !results[i]);
      if (failing.length > 0) throw new Error(`still empty: ${failing.join(' ; ')}`);
      return true;
    },
    { description: 'Prometheus to have scraped the workload', timeoutMs: 90_000, intervalMs: 1000 },
  );
}, 240_000);

afterAll(async () => {
  await prometheus?.stop();
  await prober?.stop();
  await stopOperatorUnderRbac(setup, operator);
  await watchdogCluster?.stop();
  await watchdogPlane?.stop();
  await Promise.all([gateway?.stop(), partition?.stop()]);
  await Promise.all([etcd?.stop(), minio?.stop()]);
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

const panels = dashboardSpecs.flatMap((d) => d.rows.flatMap((r) => r.panels.map((p) => [`${d.title} / ${p.title}`, p] as const)));

describe('every dashboard panel on a real Prometheus', () => {
  it.each(panels)('%s parses and returns data', async (_name, panel) => {
    const answers = await Promise.all(panel.queries.map(async (q) => ({ expr: q.expr, answer: await queryRange(substitute(q.expr)) })));
    for (const { expr, answer } of answers) expect(answer.status, `${expr}: ${answer.error ?? ''}`).toBe('success');
    expect(
      answers.some(({ answer }) => hasData(answer.data)),
      `no query of the panel returned data: ${panel.queries.map((q) => q.expr).join(' ; ')}`,
    ).toBe(true);
  });

  it('names only metrics that were scraped (or counters that only an event creates)', async () => {
    const names = new Set((await promApi<string[]>('label/__name__/values', {})).data);
    const used = new Set([
      ...panels.flatMap(([, p]) => p.queries.flatMap((q) => seriesIn(q.expr))),
      ...alertGroups.flatMap((g) => g.rules.flatMap((r) => seriesIn(r.expr))),
    ]);
    const missing = [...used].filter((n) => !names.has(n) && !eventCounters.has(n)).sort();
    expect(missing, `metrics no component exported: ${missing.join(', ')}`).toEqual([]);
  });
});

describe('every alert on a real Prometheus', () => {
  const rules = alertGroups.flatMap((g) => g.rules.map((r) => [r.alert, r.expr] as const));
  it.each(rules)('%s parses', async (_alert, expr) => {
    const answer = await promApi<unknown>('query', { query: expr });
    expect(answer.status, answer.error).toBe('success');
  });

  it('are loaded and evaluate without errors, and none fires on a healthy workload but the uncovered Mesh', async () => {
    const groups = await waitFor(
      async () => {
        const answer = await promApi<{ groups: { rules: { name: string; health: string; lastError?: string; state: string }[] }[] }>(
          'rules',
          {},
        );
        const all = answer.data.groups.flatMap((g) => g.rules);
        return all.length === rules.length && all.every((r) => r.health === 'ok') ? all : undefined;
      },
      { description: 'every rule to have been evaluated', timeoutMs: 30_000, intervalMs: 1000 },
    );
    expect(groups.map((r) => r.name).sort()).toEqual(rules.map(([a]) => a).sort());
    // The sample Mesh has no running partitions here (no kubelet runs its pods), so its slots are uncovered.
    const pendingOrFiring = groups.filter((r) => r.state !== 'inactive').map((r) => r.name);
    expect(pendingOrFiring.filter((n) => n !== 'MeshworkSlotsUncovered')).toEqual([]);
  });
});
