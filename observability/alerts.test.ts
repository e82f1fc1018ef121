// The alert rules checked by Prometheus' own tool: `promtool check rules` on the generated file,
// and `promtool test rules` with synthetic series for every alert, once where it must fire and
// once where it must stay quiet. Annotations are left out of the unit-test copy (promtool
// compares them verbatim); check rules parses their templates.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { requireBinary } from '../e2e/harness/binaries.ts';
import { alertGroups, rulesFile, runbookFile } from './alerts.ts';
import { repoRoot } from './generate.ts';
import { exportedSeries, seriesIn } from './metrics.ts';

const dir = mkdtempSync(join(tmpdir(), 'meshwork-rules-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// The promtool `make tools` builds with Prometheus (tools/prometheus), the version the stack runs.
const promtoolBinary = requireBinary('promtool');
const promtool = (...args: string[]): string => execFileSync(promtoolBinary, args, { encoding: 'utf8', stdio: 'pipe' });

interface Case {
  alert: string;
  series: [string, string][];
  at: string;
  /** The labels of each alert expected at `at` (severity is added); empty: none may fire. */
  fires: Record<string, string>[];
}

const m = (labels: string): string => `{namespace="ns", ${labels}}`;
const http = 'meshwork_http_request_duration_seconds';
const store = 'meshwork_store_operation_duration_seconds';
const operatorUp: [string, string] = ['up{role="operator", namespace="ops", pod="op-0"}', '1x30'];

const cases: Case[] = [
  {
    alert: 'MeshworkPartitionNotReady',
    at: '10m',
    series: [[`up${m('role="partition", partition="p", pod="p-0"')}`, '1 1 0x20']],
    fires: [{ namespace: 'ns', partition: 'p', pod: 'p-0' }],
  },
  {
    alert: 'MeshworkPartitionNotReady',
    at: '10m',
    series: [[`up${m('role="partition", partition="p", pod="p-0"')}`, '1 1 0 1x20']],
    fires: [],
  },
  {
    alert: 'MeshworkHighErrorRatio',
    at: '20m',
    series: [
      [`${http}_count${m('role="gateway", route="/v1/me", method="GET", status="200"')}`, '0+600x30'],
      [`${http}_count${m('role="gateway", route="/v1/me", method="GET", status="503"')}`, '0+120x30'],
    ],
    fires: [{ namespace: 'ns', role: 'gateway' }],
  },
  {
    alert: 'MeshworkHighErrorRatio',
    at: '20m',
    series: [
      [`${http}_count${m('role="gateway", route="/v1/me", method="GET", status="200"')}`, '0+600x30'],
      [`${http}_count${m('role="gateway", route="/v1/me", method="GET", status="503"')}`, '0+6x30'],
    ],
    fires: [],
  },
  {
    alert: 'MeshworkHighLatency',
    at: '20m',
    series: [
      [`${http}_bucket${m('role="partition", route="/v1/objects", method="GET", status="200", le="2.5"')}`, '0+10x30'],
      [`${http}_bucket${m('role="partition", route="/v1/objects", method="GET", status="200", le="5"')}`, '0+100x30'],
      [`${http}_bucket${m('role="partition", route="/v1/objects", method="GET", status="200", le="+Inf"')}`, '0+100x30'],
    ],
    fires: [{ namespace: 'ns', role: 'partition' }],
  },
  {
    // Slow long polls are the normal case.
    alert: 'MeshworkHighLatency',
    at: '20m',
    series: [
      [`${http}_bucket${m('role="partition", route="/v1/notifications", method="GET", status="200", le="2.5"')}`, '0x30'],
      [`${http}_bucket${m('role="partition", route="/v1/notifications", method="GET", status="200", le="+Inf"')}`, '0+100x30'],
      [`${http}_bucket${m('role="partition", route="/v1/objects", method="GET", status="200", le="2.5"')}`, '0+100x30'],
      [`${http}_bucket${m('role="partition", route="/v1/objects", method="GET", status="200", le="+Inf"')}`, '0+100x30'],
    ],
    fires: [],
  },
  {
    // WebDAV moves a whole file per request: a slow one is a large file, not a slow gateway.
    alert: 'MeshworkHighLatency',
    at: '20m',
    series: [
      [`${http}_bucket${m('role="gateway", route="/dav", method="PUT", status="201", le="2.5"')}`, '0x30'],
      [`${http}_bucket${m('role="gateway", route="/dav", method="PUT", status="201", le="+Inf"')}`, '0+100x30'],
      [`${http}_bucket${m('role="gateway", route="/v1/objects", method="GET", status="200", le="2.5"')}`, '0+100x30'],
      [`${http}_bucket${m('role="gateway", route="/v1/objects", method="GET", status="200", le="+Inf"')}`, '0+100x30'],
    ],
    fires: [],
  },
  {
    alert: 'MeshworkStoreErrors',
    at: '20m',
    series: [
      [`${store}_count${m('role="partition", store="etcd", operation="get", outcome="ok"')}`, '0+100x30'],
      [`${store}_count${m('role="partition", store="etcd", operation="get", outcome="error"')}`, '0+10x30'],
    ],
    fires: [{ namespace: 'ns', role: 'partition', store: 'etcd' }],
  },
  {
    alert: 'MeshworkStoreErrors',
    at: '20m',
    series: [[`${store}_count${m('role="partition", store="s3", operation="get", outcome="ok"')}`, '0+100x30']],
    fires: [],
  },
  {
    alert: 'MeshworkProberFailing',
    at: '20m',
    series: [
      ['meshwork_prober_journeys_total{namespace="ns", pod="prober-0", outcome="ok"}', '0+1x10 10x20'],
      ['meshwork_prober_journeys_total{namespace="ns", pod="prober-0", outcome="error"}', '0x10 0+2x20'],
    ],
    fires: [{ namespace: 'ns', pod: 'prober-0' }],
  },
  {
    alert: 'MeshworkProberFailing',
    at: '20m',
    series: [
      ['meshwork_prober_journeys_total{namespace="ns", pod="prober-0", outcome="ok"}', '0+2x30'],
      ['meshwork_prober_journeys_total{namespace="ns", pod="prober-0", outcome="error"}', '0x10 0+1x20'],
    ],
    fires: [],
  },
  { alert: 'MeshworkOperatorDown', at: '10m', series: [['up{role="operator", namespace="ops", pod="op-0"}', '0x30']], fires: [{}] },
  { alert: 'MeshworkOperatorDown', at: '10m', series: [operatorUp], fires: [] },
  {
    alert: 'MeshworkOperatorNoLeader',
    at: '5m',
    series: [
      ['meshwork_leader_election_is_leader{pod="op-0"}', '0x10'],
      ['meshwork_leader_election_is_leader{pod="op-1"}', '0x10'],
    ],
    fires: [{}],
  },
  {
    alert: 'MeshworkOperatorNoLeader',
    at: '5m',
    series: [
      ['meshwork_leader_election_is_leader{pod="op-0"}', '0x10'],
      ['meshwork_leader_election_is_leader{pod="op-1"}', '1x10'],
    ],
    fires: [],
  },
  {
    alert: 'MeshworkReconcileErrors',
    at: '30m',
    series: [['meshwork_reconcile_errors_total{namespace="ops", controller="meshpartition"}', '0+60x40']],
    fires: [{ namespace: 'ops', controller: 'meshpartition' }],
  },
  {
    alert: 'MeshworkReconcileErrors',
    at: '30m',
    series: [['meshwork_reconcile_errors_total{namespace="ops", controller="meshpartition"}', '0+1x40']],
    fires: [],
  },
  {
    alert: 'MeshworkWorkqueueBacklog',
    at: '20m',
    series: [['meshwork_workqueue_depth{namespace="ops", name="meshpartition"}', '500x30']],
    fires: [{ namespace: 'ops', name: 'meshpartition' }],
  },
  {
    alert: 'MeshworkWorkqueueBacklog',
    at: '20m',
    series: [['meshwork_workqueue_depth{namespace="ops", name="meshpartition"}', '3x30']],
    fires: [],
  },
  {
    alert: 'MeshworkSlotsUncovered',
    at: '15m',
    series: [['meshwork_mesh_slots_covered{mesh_namespace="ns", mesh="m", pod="op-0"}', '4000x20']],
    fires: [{ mesh_namespace: 'ns', mesh: 'm' }],
  },
  {
    alert: 'MeshworkSlotsUncovered',
    at: '15m',
    series: [['meshwork_mesh_slots_covered{mesh_namespace="ns", mesh="m", pod="op-0"}', '4096x20']],
    fires: [],
  },
  {
    alert: 'MeshworkRolloutHalted',
    at: '10m',
    series: [['meshwork_mesh_rollout_halted{mesh_namespace="ns", mesh="m", pod="op-0"}', '1x20']],
    fires: [{ mesh_namespace: 'ns', mesh: 'm' }],
  },
  {
    alert: 'MeshworkRolloutHalted',
    at: '10m',
    series: [['meshwork_mesh_rollout_halted{mesh_namespace="ns", mesh="m", pod="op-0"}', '0x20']],
    fires: [],
  },
  { alert: 'MeshworkRemediationPaused', at: '15m', series: [['meshwork_watchdog_remediation_paused{pod="op-0"}', '1x20']], fires: [{}] },
  { alert: 'MeshworkRemediationPaused', at: '15m', series: [['meshwork_watchdog_remediation_paused{pod="op-0"}', '0x20']], fires: [] },
  {
    alert: 'MeshworkWatchdogOutOfBudget',
    at: '20m',
    series: [['meshwork_watchdog_refused_members{pod="op-0", refusal="ActionBudget"}', '2x30']],
    fires: [{}],
  },
  {
    alert: 'MeshworkWatchdogOutOfBudget',
    at: '20m',
    series: [['meshwork_watchdog_refused_members{pod="op-0", refusal="MaxConcurrent"}', '2x30']],
    fires: [],
  },
  { alert: 'MeshworkWatchdogGaveUp', at: '10m', series: [['meshwork_watchdog_members{pod="op-0", level="4"}', '1x20']], fires: [{}] },
  { alert: 'MeshworkWatchdogGaveUp', at: '10m', series: [['meshwork_watchdog_members{pod="op-0", level="3"}', '1x20']], fires: [] },
];

const severity = new Map(alertGroups.flatMap((g) => g.rules.map((r) => [r.alert, r.severity] as const)));
const alerts = [...severity.keys()];

describe('alert rules', () => {
  it('pass promtool check rules', () => {
    const file = join(repoRoot, 'charts/meshwork/alerts/meshwork.rules.yaml');
    expect(promtool('check', 'rules', file)).toContain(`SUCCESS: ${alerts.length} rules found`);
  });

  it('fire, and stay quiet, as promtool test rules shows', () => {
    const rules = rulesFile();
    for (const g of rules.groups as { rules: { annotations?: unknown }[] }[]) for (const r of g.rules) delete r.annotations;
    writeFileSync(join(dir, 'rules.yaml'), stringify(rules));
    const tests = cases.map((c) => ({
      interval: '1m',
      input_series: c.series.map(([series, values]) => ({ series, values })),
      alert_rule_test: [
        {
          eval_time: c.at,
          alertname: c.alert,
          exp_alerts: c.fires.map((labels) => ({ exp_labels: { ...labels, severity: severity.get(c.alert) } })),
        },
      ],
    }));
    writeFileSync(join(dir, 'tests.yaml'), stringify({ rule_files: ['rules.yaml'], evaluation_interval: '1m', tests }));
    const run = spawnSync(promtoolBinary, ['test', 'rules', 'tests.yaml'], { cwd: dir, encoding: 'utf8' });
    expect(run.status, `promtool test rules failed:\n${run.stdout}${run.stderr}`).toBe(0);
    expect(run.stdout).toContain('SUCCESS');
  });

  it.each(alerts)('%s is tested firing and quiet', (alert) => {
    expect(cases.filter((c) => c.alert === alert && c.fires.length > 0)).not.toHaveLength(0);
    expect(cases.filter((c) => c.alert === alert && c.fires.length === 0)).not.toHaveLength(0);
  });

  it.each(alerts)('%s has a runbook', (alert) => {
    expect(existsSync(join(repoRoot, 'docs/runbooks', runbookFile(alert)))).toBe(true);
  });

  const exported = exportedSeries(repoRoot);
  it.each(alertGroups.flatMap((g) => g.rules.map((r) => [r.alert, r.expr] as const)))('%s reads only exported series', (_alert, expr) => {
    const missing = seriesIn(expr).filter((s) => !exported.has(s));
    expect(missing, `series no component exports: ${missing.join(', ')}`).toEqual([]);
  });
});
