// Meshwork's Prometheus alerts as data (ADR 40): one source for the plain rules file and the
// chart's PrometheusRule (which embeds that file), each alert with its runbook in
// docs/runbooks/<alert>.md. The label conventions are the dashboards' (scrape.ts).
import { notLatencyRoutes } from './dashboards.ts';

/** One alerting rule and the page that says what to do about it. */
export interface AlertSpec {
  alert: string;
  expr: string;
  for: string;
  severity: 'critical' | 'warning';
  summary: string;
  description: string;
}

/** A group of alerts evaluated together. */
export interface AlertGroup {
  name: string;
  rules: AlertSpec[];
}

const http = 'meshwork_http_request_duration_seconds';
const store = 'meshwork_store_operation_duration_seconds';

/** Every alert, by group. */
export const alertGroups: readonly AlertGroup[] = [
  {
    name: 'meshwork-dataplane',
    rules: [
      {
        alert: 'MeshworkPartitionNotReady',
        expr: 'min by (namespace, partition, pod) (up{role="partition"}) == 0',
        for: '5m',
        severity: 'critical',
        summary: 'Partition member {{ $labels.namespace }}/{{ $labels.pod }} has not answered for 5 minutes.',
        description:
          'Prometheus cannot scrape /metrics of a member of partition {{ $labels.partition }}: the process is down, hung or unreachable, so it serves no requests either.',
      },
      {
        alert: 'MeshworkHighErrorRatio',
        expr: `sum by (namespace, role) (rate(${http}_count{status=~"5.."}[5m])) / sum by (namespace, role) (rate(${http}_count[5m])) > 0.05`,
        for: '10m',
        severity: 'critical',
        summary:
          'More than 5% of {{ $labels.role }} responses in {{ $labels.namespace }} are server errors ({{ $value | humanizePercentage }}).',
        description: 'Counts every 5xx, including the documented 503s of shedding and draining.',
      },
      {
        alert: 'MeshworkHighLatency',
        expr: `histogram_quantile(0.99, sum by (namespace, role, le) (rate(${http}_bucket{route!~"${notLatencyRoutes}"}[5m]))) > 2.5`,
        for: '10m',
        severity: 'warning',
        summary: 'p99 latency of {{ $labels.role }} in {{ $labels.namespace }} is {{ $value | humanizeDuration }}.',
        description: 'Long polls, which wait by design, and WebDAV requests, which move whole files, are left out.',
      },
      {
        alert: 'MeshworkStoreErrors',
        expr: `sum by (namespace, role, store) (rate(${store}_count{outcome="error"}[5m])) / sum by (namespace, role, store) (rate(${store}_count[5m])) > 0.01`,
        for: '10m',
        severity: 'critical',
        summary:
          'More than 1% of {{ $labels.store }} operations of {{ $labels.role }} in {{ $labels.namespace }} fail ({{ $value | humanizePercentage }}).',
        description: 'The data plane cannot reach or use its store reliably.',
      },
      {
        alert: 'MeshworkProberFailing',
        expr: 'sum by (namespace, pod) (rate(meshwork_prober_journeys_total{outcome="error"}[10m])) / sum by (namespace, pod) (rate(meshwork_prober_journeys_total[10m])) > 0.5',
        for: '5m',
        severity: 'critical',
        summary:
          'More than half of the journeys of prober {{ $labels.namespace }}/{{ $labels.pod }} fail ({{ $value | humanizePercentage }}).',
        description:
          'Users cannot create, upload, get notified, download or delete through the gateway; the Prober step failures panel names the step.',
      },
    ],
  },
  {
    name: 'meshwork-operator',
    rules: [
      {
        alert: 'MeshworkOperatorDown',
        expr: 'absent(up{role="operator"} == 1)',
        for: '5m',
        severity: 'critical',
        summary: 'No Meshwork operator replica is being scraped.',
        description: 'Without the operator nothing is reconciled and the watchdog repairs nothing.',
      },
      {
        alert: 'MeshworkOperatorNoLeader',
        expr: 'sum(meshwork_leader_election_is_leader) < 1',
        for: '2m',
        severity: 'critical',
        summary: 'No Meshwork operator replica holds the leader Lease; nothing is reconciled.',
        description: 'Replicas run but none leads.',
      },
      {
        alert: 'MeshworkReconcileErrors',
        expr: 'sum by (namespace, controller) (rate(meshwork_reconcile_errors_total[10m])) > 0.1',
        for: '15m',
        severity: 'warning',
        summary: 'The {{ $labels.controller }} reconciler keeps failing.',
        description: 'More than one failed reconcile every 10 seconds for 15 minutes.',
      },
      {
        alert: 'MeshworkWorkqueueBacklog',
        expr: 'max by (namespace, name) (meshwork_workqueue_depth) > 100',
        for: '15m',
        severity: 'warning',
        summary: 'The {{ $labels.name }} work queue is not draining.',
        description: 'More than 100 keys have waited for 15 minutes.',
      },
      {
        alert: 'MeshworkSlotsUncovered',
        expr: 'min by (mesh_namespace, mesh) (meshwork_mesh_slots_covered) < 4096',
        for: '10m',
        severity: 'critical',
        summary:
          'Mesh {{ $labels.mesh_namespace }}/{{ $labels.mesh }} has slots that no ready partition serves alone ({{ $value }} of 4096 covered).',
        description: 'Users whose slots are uncovered get 503s.',
      },
      {
        alert: 'MeshworkRolloutHalted',
        expr: 'max by (mesh_namespace, mesh) (meshwork_mesh_rollout_halted) == 1',
        for: '5m',
        severity: 'warning',
        summary: 'The rollout of Mesh {{ $labels.mesh_namespace }}/{{ $labels.mesh }} halted on its analysis.',
        description: 'A new partition template failed a step; the partitions that did not take it are untouched.',
      },
    ],
  },
  {
    name: 'meshwork-watchdog',
    rules: [
      {
        alert: 'MeshworkRemediationPaused',
        expr: 'max(meshwork_watchdog_remediation_paused) == 1',
        for: '10m',
        severity: 'critical',
        summary: 'Most partition members are unhealthy; the watchdog repairs nothing until the systemic failure clears.',
        description: "The share of unhealthy members is past the operator's maxUnhealthyPercent.",
      },
      {
        alert: 'MeshworkWatchdogOutOfBudget',
        expr: 'max(meshwork_watchdog_refused_members{refusal="ActionBudget"}) > 0',
        for: '15m',
        severity: 'warning',
        summary: '{{ $value }} partition member(s) need a repair that the watchdog holds back: its hourly action budget is spent.',
        description: 'Repairs resume as the hour rolls on; meanwhile the members stay unhealthy.',
      },
      {
        alert: 'MeshworkWatchdogGaveUp',
        expr: 'max(meshwork_watchdog_members{level="4"}) > 0',
        for: '5m',
        severity: 'warning',
        summary: 'The watchdog gave up on {{ $value }} partition member(s); a person must replace what is broken.',
        description: 'Every rung of the ladder (restart, reschedule, volume rebuild) was tried.',
      },
    ],
  },
];

/** The file name of an alert's runbook in docs/runbooks/. */
export function runbookFile(alert: string): string {
  return `${alert.replace(/([a-z])([A-Z])/g, '$1-$2').toLowerCase()}.md`;
}

/** The rule groups in Prometheus' rules-file form (what `promtool check rules` reads). */
export function rulesFile(runbookBase = 'docs/runbooks/'): { groups: unknown[] } {
  return {
    groups: alertGroups.map((g) => ({
      name: g.name,
      rules: g.rules.map((r) => ({
        alert: r.alert,
        expr: r.expr,
        for: r.for,
        labels: { severity: r.severity },
        annotations: { summary: r.summary, description: r.description, runbook_url: runbookBase + runbookFile(r.alert) },
      })),
    })),
  };
}
