// Meshwork's Grafana dashboards as code (ADR 39): Overview, Partition, Operator and watchdog,
// Stores. Each panel is declared once here as data (title, unit, PromQL) and built with the
// Grafana Foundation SDK's typed builders; `generate.ts` writes the JSON the chart ships.
//
// The queries read the labels that the scrape configuration adds from the pod's labels
// (`role`, `partition`, `mesh`, `namespace`, `pod`; see scrape.ts). A panel whose series may
// not exist yet (a counter that no error has touched) adds `or <a series that does exist> * 0`,
// so it shows a zero line rather than "No data" while the component is up, and stays empty
// when the component is not scraped at all.
import { latencyExcludedRouteLabels, longPollRouteLabels } from '@meshwork/contract';
import {
  DashboardBuilder,
  DatasourceVariableBuilder,
  QueryVariableBuilder,
  RowBuilder,
  VariableRefresh,
  VariableSort,
} from '@grafana/grafana-foundation-sdk/dashboard';
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { VisibilityMode } from '@grafana/grafana-foundation-sdk/common';
import { DataqueryBuilder } from '@grafana/grafana-foundation-sdk/prometheus';
import { PanelBuilder as StatPanelBuilder } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TimeseriesPanelBuilder } from '@grafana/grafana-foundation-sdk/timeseries';

/** One PromQL query of a panel and the legend of its series. */
export interface PanelQuery {
  expr: string;
  legend: string;
}

/** A panel as data: what it shows, in which unit, from which queries. */
export interface PanelSpec {
  title: string;
  description: string;
  /** A Grafana unit id: reqps, ops, s, percentunit, bytes, Bps, short. */
  unit: string;
  kind?: 'timeseries' | 'stat';
  queries: PanelQuery[];
}

/** A dashboard as data: rows of panels and the variables its queries use besides `datasource`. */
export interface DashboardSpec {
  uid: string;
  file: string;
  title: string;
  description: string;
  variables: ('namespace' | 'partition')[];
  rows: { title: string; panels: PanelSpec[] }[];
}

/** Routes whose requests wait by design (long polls). */
export const longPollRoutes = longPollRouteLabels.join('|');

/** Routes kept out of latency panels and alerts: long polls and WebDAV (transfers of whole files). */
export const notLatencyRoutes = latencyExcludedRouteLabels.join('|');

const ns = 'namespace=~"$namespace"';
const http = 'meshwork_http_request_duration_seconds';
const store = 'meshwork_store_operation_duration_seconds';
const rate = (selector: string): string => `rate(${selector}[$__rate_interval])`;
/** `num / den` where `num` may have no series yet: missing groups count as zero. */
const ratio = (by: string, num: string, den: string): string =>
  `(sum by (${by}) (${rate(num)}) or sum by (${by}) (${rate(den)}) * 0) / sum by (${by}) (${rate(den)})`;
const p = (q: number, by: string, selector: string): string => `histogram_quantile(${q}, sum by (${by}, le) (${rate(selector)}))`;

const overview: DashboardSpec = {
  uid: 'meshwork-overview',
  file: 'overview.json',
  title: 'Meshwork / Overview',
  description: 'Requests, errors and latency per role and partition; sync, notifications and long polls; throttling; the prober.',
  variables: ['namespace'],
  rows: [
    {
      title: 'Requests, errors, latency',
      panels: [
        {
          title: 'Requests by role',
          description: 'Requests answered per second by each role (partition, gateway).',
          unit: 'reqps',
          queries: [{ expr: `sum by (role) (${rate(`${http}_count{${ns}}`)})`, legend: '{{role}}' }],
        },
        {
          title: 'Requests by partition',
          description: 'Requests answered per second by the members of each partition.',
          unit: 'reqps',
          queries: [{ expr: `sum by (partition) (${rate(`${http}_count{${ns}, role="partition"}`)})`, legend: '{{partition}}' }],
        },
        {
          title: 'Server error ratio by role',
          description: 'Share of responses with a 5xx status (503 included: shedding and draining).',
          unit: 'percentunit',
          queries: [{ expr: ratio('role', `${http}_count{${ns}, status=~"5.."}`, `${http}_count{${ns}}`), legend: '{{role}}' }],
        },
        {
          title: 'Responses by status',
          description: 'Responses per second by role and status code (499: the client went away first).',
          unit: 'reqps',
          queries: [{ expr: `sum by (role, status) (${rate(`${http}_count{${ns}}`)})`, legend: '{{role}} {{status}}' }],
        },
        {
          title: 'Latency by role (p50, p99)',
          description: 'Request latency without the long polls, which wait by design, and WebDAV, whose requests move whole files.',
          unit: 's',
          queries: [
            { expr: p(0.5, 'role', `${http}_bucket{${ns}, route!~"${notLatencyRoutes}"}`), legend: 'p50 {{role}}' },
            { expr: p(0.99, 'role', `${http}_bucket{${ns}, route!~"${notLatencyRoutes}"}`), legend: 'p99 {{role}}' },
          ],
        },
        {
          title: 'Latency p99 by partition',
          description: 'p99 request latency of each partition, long polls left out.',
          unit: 's',
          queries: [
            {
              expr: p(0.99, 'partition', `${http}_bucket{${ns}, role="partition", route!~"${notLatencyRoutes}"}`),
              legend: '{{partition}}',
            },
          ],
        },
        {
          title: 'Latency p99 by route',
          description: 'p99 latency of each route pattern on the partitions, long polls left out.',
          unit: 's',
          queries: [
            { expr: p(0.99, 'route', `${http}_bucket{${ns}, role="partition", route!~"${notLatencyRoutes}"}`), legend: '{{route}}' },
          ],
        },
        {
          title: 'Requests in flight',
          description: 'Requests being served now, by role.',
          unit: 'short',
          queries: [{ expr: `sum by (role) (meshwork_http_requests_in_flight{${ns}})`, legend: '{{role}}' }],
        },
        {
          title: 'Gateway exchanges with partitions',
          description:
            "The gateway's upstream exchanges per second, by partition and outcome (status class, unreachable, timeout, broken, misdirected, draining).",
          unit: 'reqps',
          queries: [
            {
              expr: `sum by (partition, outcome) (${rate(`meshwork_gateway_upstream_total{${ns}}`)})`,
              legend: '{{partition}} {{outcome}}',
            },
          ],
        },
      ],
    },
    {
      title: 'Sync',
      panels: [
        {
          title: 'Sync activity',
          description: 'Entry commits and deletes, change feeds, content and block transfers per second on the partitions.',
          unit: 'reqps',
          queries: [
            {
              expr: `sum by (method, route) (${rate(`${http}_count{${ns}, role="partition", route=~"/v1/objects/:id/(entries|changes|content).*|/v1/blocks/.*"}`)})`,
              legend: '{{method}} {{route}}',
            },
          ],
        },
        {
          title: 'Bytes in and out',
          description: 'Request and response bytes per second (headers and bodies, streamed transfers included), by role.',
          unit: 'Bps',
          queries: [
            { expr: `sum by (role) (${rate(`meshwork_http_request_bytes_total{${ns}}`)})`, legend: 'in {{role}}' },
            { expr: `sum by (role) (${rate(`meshwork_http_response_bytes_total{${ns}}`)})`, legend: 'out {{role}}' },
          ],
        },
      ],
    },
    {
      title: 'Notifications and long polls',
      panels: [
        {
          title: 'Long polls open',
          description: 'Change and notification long polls waiting for a change, by partition.',
          unit: 'short',
          queries: [{ expr: `sum by (partition) (meshwork_long_polls_open{${ns}, role="partition"})`, legend: '{{partition}}' }],
        },
        {
          title: 'Long polls answered',
          description: 'Notification and change-feed requests answered per second, by route and status.',
          unit: 'reqps',
          queries: [
            {
              expr: `sum by (route, status) (${rate(`${http}_count{${ns}, role="partition", route=~"${longPollRoutes}"}`)})`,
              legend: '{{route}} {{status}}',
            },
          ],
        },
      ],
    },
    {
      title: 'Throttling',
      panels: [
        {
          title: 'Throttled requests by reason',
          description: 'Requests the partitions refused (429: per-client bounds, entry size; 503: concurrency, event-loop lag).',
          unit: 'reqps',
          queries: [{ expr: `sum by (reason) (${rate(`meshwork_throttled_requests_total{${ns}}`)})`, legend: '{{reason}}' }],
        },
        {
          title: 'Gateway retries and sheds',
          description: 'Requests the gateway sent again, by reason, and requests it refused at its per-partition concurrency limit.',
          unit: 'reqps',
          queries: [
            { expr: `sum by (reason) (${rate(`meshwork_gateway_retries_total{${ns}}`)})`, legend: 'retry {{reason}}' },
            { expr: `sum by (partition) (${rate(`meshwork_gateway_shed_total{${ns}}`)})`, legend: 'shed {{partition}}' },
          ],
        },
        {
          title: 'Concurrency limits',
          description:
            'The adaptive concurrency limit of each partition member and of the gateway per partition, and the requests holding a place.',
          unit: 'short',
          queries: [
            { expr: `sum by (pod) (meshwork_concurrency_limit{${ns}})`, legend: 'limit {{pod}}' },
            { expr: `sum by (pod) (meshwork_concurrency_inflight{${ns}})`, legend: 'in flight {{pod}}' },
            { expr: `max by (partition) (meshwork_gateway_concurrency_limit{${ns}})`, legend: 'gateway limit {{partition}}' },
          ],
        },
      ],
    },
    {
      title: 'Prober',
      panels: [
        {
          title: 'Prober journeys succeeded',
          description:
            'Share of the probe journeys (create, upload, notify, download, delete through the gateway) in which every step succeeded.',
          unit: 'percentunit',
          queries: [
            {
              expr: `sum by (namespace) (${rate(`meshwork_prober_journeys_total{${ns}, outcome="ok"}`)}) / sum by (namespace) (${rate(`meshwork_prober_journeys_total{${ns}}`)})`,
              legend: '{{namespace}}',
            },
          ],
        },
        {
          title: 'Prober step latency p95',
          description: 'p95 time of each step of the probe journey that succeeded.',
          unit: 's',
          queries: [{ expr: p(0.95, 'step', `meshwork_prober_step_duration_seconds_bucket{${ns}, outcome="ok"}`), legend: '{{step}}' }],
        },
        {
          title: 'Prober step failures',
          description: 'Failed steps per second, by step: which part of the journey breaks.',
          unit: 'ops',
          queries: [{ expr: `sum by (step) (${rate(`meshwork_prober_steps_total{${ns}, outcome="error"}`)})`, legend: '{{step}}' }],
        },
        {
          title: 'Since the last successful journey',
          description: 'Time since each prober last completed a journey.',
          unit: 's',
          kind: 'stat',
          queries: [{ expr: `time() - max by (pod) (meshwork_prober_last_success_timestamp_seconds{${ns}})`, legend: '{{pod}}' }],
        },
      ],
    },
  ],
};

const pf = `${ns}, role="partition", partition=~"$partition"`;
const partition: DashboardSpec = {
  uid: 'meshwork-partition',
  file: 'partition.json',
  title: 'Meshwork / Partition',
  description:
    'Each member of a partition: event-loop lag, memory, CPU, requests, store latency and errors, long polls, throttling, slots.',
  variables: ['namespace', 'partition'],
  rows: [
    {
      title: 'Members',
      panels: [
        {
          title: 'Members scraped',
          description: 'Members whose /metrics answered at the last scrape.',
          unit: 'short',
          kind: 'stat',
          queries: [{ expr: `sum by (partition) (up{${pf}})`, legend: '{{partition}}' }],
        },
        {
          title: 'Event-loop lag p99',
          description: "Node.js's p99 event-loop delay per member, and the mean the shedder acts on.",
          unit: 's',
          queries: [
            { expr: `meshwork_partition_nodejs_eventloop_lag_p99_seconds{${pf}}`, legend: 'p99 {{pod}}' },
            { expr: `meshwork_throttle_event_loop_lag_seconds{${pf}}`, legend: 'shedder {{pod}}' },
          ],
        },
        {
          title: 'Memory',
          description: 'Resident set size and V8 heap in use per member.',
          unit: 'bytes',
          queries: [
            { expr: `meshwork_partition_process_resident_memory_bytes{${pf}}`, legend: 'RSS {{pod}}' },
            { expr: `meshwork_partition_nodejs_heap_size_used_bytes{${pf}}`, legend: 'heap {{pod}}' },
          ],
        },
        {
          title: 'CPU',
          description: 'CPU time per second of wall time per member (1 = one core).',
          unit: 'percentunit',
          queries: [{ expr: rate(`meshwork_partition_process_cpu_seconds_total{${pf}}`), legend: '{{pod}}' }],
        },
      ],
    },
    {
      title: 'Requests',
      panels: [
        {
          title: 'Requests by member',
          description: 'Requests answered per second by each member.',
          unit: 'reqps',
          queries: [{ expr: `sum by (pod) (${rate(`${http}_count{${pf}}`)})`, legend: '{{pod}}' }],
        },
        {
          title: 'Server error ratio by member',
          description: 'Share of 5xx responses per member.',
          unit: 'percentunit',
          queries: [{ expr: ratio('pod', `${http}_count{${pf}, status=~"5.."}`, `${http}_count{${pf}}`), legend: '{{pod}}' }],
        },
        {
          title: 'Latency p99 by member',
          description: 'p99 request latency per member, long polls and WebDAV left out.',
          unit: 's',
          queries: [{ expr: p(0.99, 'pod', `${http}_bucket{${pf}, route!~"${notLatencyRoutes}"}`), legend: '{{pod}}' }],
        },
        {
          title: 'Long polls open by member',
          description: 'Long polls waiting for a change on each member.',
          unit: 'short',
          queries: [{ expr: `meshwork_long_polls_open{${pf}}`, legend: '{{pod}}' }],
        },
        {
          title: 'Throttled by member and reason',
          description: 'Requests each member refused, by reason.',
          unit: 'reqps',
          queries: [{ expr: `sum by (pod, reason) (${rate(`meshwork_throttled_requests_total{${pf}}`)})`, legend: '{{pod}} {{reason}}' }],
        },
      ],
    },
    {
      title: 'Stores and slots',
      panels: [
        {
          title: 'Store latency p99 by member',
          description: 'p99 latency of etcd and S3 operations per member.',
          unit: 's',
          queries: [{ expr: p(0.99, 'pod, store', `${store}_bucket{${pf}}`), legend: '{{pod}} {{store}}' }],
        },
        {
          title: 'Store errors by member',
          description: 'Failed etcd and S3 operations per second per member.',
          unit: 'ops',
          queries: [
            {
              expr: `sum by (pod, store) (${rate(`${store}_count{${pf}, outcome="error"}`)}) or sum by (pod, store) (${rate(`${store}_count{${pf}}`)}) * 0`,
              legend: '{{pod}} {{store}}',
            },
          ],
        },
        {
          title: 'Slots covered per Mesh',
          description: 'Slots (of 4096) owned by exactly one ready partition, as the operator sees it.',
          unit: 'short',
          queries: [
            {
              expr: 'max by (mesh_namespace, mesh) (meshwork_mesh_slots_covered{mesh_namespace=~"$namespace"})',
              legend: '{{mesh_namespace}}/{{mesh}}',
            },
          ],
        },
      ],
    },
  ],
};

const op = `${ns}, role="operator"`;
const operator: DashboardSpec = {
  uid: 'meshwork-operator',
  file: 'operator.json',
  title: 'Meshwork / Operator and watchdog',
  description:
    'Reconciles, work queue, Kubernetes API requests, leadership, and the watchdog: members by ladder level, remediations, refusals.',
  variables: ['namespace'],
  rows: [
    {
      title: 'Reconciles and work queue',
      panels: [
        {
          title: 'Leader',
          description: 'Which operator replica holds the leader Lease (1).',
          unit: 'short',
          kind: 'stat',
          queries: [{ expr: `max by (pod) (meshwork_leader_election_is_leader{${op}})`, legend: '{{pod}}' }],
        },
        {
          title: 'Reconciles by controller and result',
          description: 'Reconciles per second (success, error, requeue).',
          unit: 'ops',
          queries: [
            { expr: `sum by (controller, result) (${rate(`meshwork_reconcile_total{${op}}`)})`, legend: '{{controller}} {{result}}' },
          ],
        },
        {
          title: 'Reconcile errors',
          description: 'Failed reconciles per second by controller.',
          unit: 'ops',
          queries: [
            {
              expr: `sum by (controller) (${rate(`meshwork_reconcile_errors_total{${op}}`)}) or sum by (controller) (${rate(`meshwork_reconcile_total{${op}}`)}) * 0`,
              legend: '{{controller}}',
            },
          ],
        },
        {
          title: 'Reconcile duration p99',
          description: 'p99 time of one reconcile by controller.',
          unit: 's',
          queries: [{ expr: p(0.99, 'controller', `meshwork_reconcile_time_seconds_bucket{${op}}`), legend: '{{controller}}' }],
        },
        {
          title: 'Work queue depth',
          description: 'Keys waiting in each work queue.',
          unit: 'short',
          queries: [{ expr: `max by (name) (meshwork_workqueue_depth{${op}})`, legend: '{{name}}' }],
        },
        {
          title: 'Work queue adds and retries',
          description: 'Keys added per second, and keys requeued with backoff after a failed reconcile.',
          unit: 'ops',
          queries: [
            { expr: `sum by (name) (${rate(`meshwork_workqueue_adds_total{${op}}`)})`, legend: 'adds {{name}}' },
            {
              expr: `sum by (name) (${rate(`meshwork_workqueue_retries_total{${op}}`)}) or sum by (name) (${rate(`meshwork_workqueue_adds_total{${op}}`)}) * 0`,
              legend: 'retries {{name}}',
            },
          ],
        },
        {
          title: 'Work queue wait p99',
          description: 'p99 time a key waited before a worker took it.',
          unit: 's',
          queries: [{ expr: p(0.99, 'name', `meshwork_workqueue_queue_duration_seconds_bucket{${op}}`), legend: '{{name}}' }],
        },
      ],
    },
    {
      title: 'Kubernetes API',
      panels: [
        {
          title: 'API requests by verb and code',
          description: 'Kubernetes API requests per second ("error": no answer came).',
          unit: 'reqps',
          queries: [{ expr: `sum by (verb, code) (${rate(`meshwork_kube_api_requests_total{${op}}`)})`, legend: '{{verb}} {{code}}' }],
        },
        {
          title: 'API latency p99',
          description: 'p99 latency of Kubernetes API requests (watches excluded) by verb and resource.',
          unit: 's',
          queries: [
            {
              expr: p(0.99, 'verb, resource', `meshwork_kube_api_request_duration_seconds_bucket{${op}}`),
              legend: '{{verb}} {{resource}}',
            },
          ],
        },
        {
          title: 'Events by reason',
          description: 'Kubernetes Events the operator recorded per second, by reason.',
          unit: 'ops',
          queries: [
            {
              expr: `sum by (reason) (${rate(`meshwork_events_total{${op}}`)}) or sum(${rate(`meshwork_reconcile_total{${op}}`)}) * 0`,
              legend: '{{reason}}',
            },
          ],
        },
      ],
    },
    {
      title: 'Watchdog',
      panels: [
        {
          title: 'Members by ladder level',
          description:
            'Partition members at each level of the watchdog ladder (0 observe, 1 restarted, 2 rescheduled, 3 volume recreated, 4 given up); a member stays above 0 until it has been healthy for healthyResetSeconds.',
          unit: 'short',
          queries: [{ expr: `max by (level) (meshwork_watchdog_members{${op}})`, legend: 'level {{level}}' }],
        },
        {
          title: 'Remediations by action and outcome',
          description: 'Actions the watchdog performed (and, in Observe mode, would have performed) per second, by action.',
          unit: 'ops',
          queries: [
            {
              expr: `sum by (action) (${rate(`meshwork_watchdog_actions_total{${op}}`)}) or sum(meshwork_watchdog_members{${op}}) * 0`,
              legend: 'performed {{action}}',
            },
            {
              expr: `sum by (action) (${rate(`meshwork_watchdog_intentions_total{${op}}`)}) or sum(meshwork_watchdog_members{${op}}) * 0`,
              legend: 'observed {{action}}',
            },
          ],
        },
        {
          title: 'Time to recover',
          description:
            'From the watchdog first seeing a member unhealthy to seeing it healthy again, over the time range shown: the mean and the p90, by the level of the last remediation in between (0: it came back without one). Empty while nothing recovered.',
          unit: 's',
          queries: [
            {
              expr: `sum by (level) (increase(meshwork_watchdog_recovery_seconds_sum{${op}}[$__range])) / sum by (level) (increase(meshwork_watchdog_recovery_seconds_count{${op}}[$__range]))`,
              legend: 'mean, level {{level}}',
            },
            {
              expr: `histogram_quantile(0.9, sum by (level, le) (increase(meshwork_watchdog_recovery_seconds_bucket{${op}}[$__range])))`,
              legend: 'p90, level {{level}}',
            },
          ],
        },
        {
          title: 'Refused and paused',
          description:
            'Members whose due action is held back, by refusal (ActionBudget: the hourly budget is spent), and whether remediation is paused (1).',
          unit: 'short',
          queries: [
            { expr: `max by (refusal) (meshwork_watchdog_refused_members{${op}})`, legend: 'refused {{refusal}}' },
            { expr: `max(meshwork_watchdog_remediation_paused{${op}})`, legend: 'paused' },
          ],
        },
        {
          title: 'Operator memory',
          description: 'Resident set size per replica.',
          unit: 'bytes',
          queries: [{ expr: `meshwork_operator_process_resident_memory_bytes{${op}}`, legend: '{{pod}}' }],
        },
      ],
    },
  ],
};

const stores: DashboardSpec = {
  uid: 'meshwork-stores',
  file: 'stores.json',
  title: 'Meshwork / Stores',
  description: 'etcd and S3 calls of the data plane: rate, latency and errors by operation.',
  variables: ['namespace'],
  rows: ['etcd', 's3'].map((name) => {
    const sel = `${ns}, store="${name}"`;
    return {
      title: name === 'etcd' ? 'etcd' : 'S3',
      panels: [
        {
          title: `${name === 'etcd' ? 'etcd' : 'S3'} operations`,
          description: 'Operations per second by operation and role.',
          unit: 'ops',
          queries: [{ expr: `sum by (role, operation) (${rate(`${store}_count{${sel}}`)})`, legend: '{{role}} {{operation}}' }],
        },
        {
          title: `${name === 'etcd' ? 'etcd' : 'S3'} latency (p50, p99)`,
          description: 'Operation latency by operation (S3 reads until the response headers).',
          unit: 's',
          queries: [
            { expr: p(0.5, 'operation', `${store}_bucket{${sel}}`), legend: 'p50 {{operation}}' },
            { expr: p(0.99, 'operation', `${store}_bucket{${sel}}`), legend: 'p99 {{operation}}' },
          ],
        },
        {
          title: `${name === 'etcd' ? 'etcd' : 'S3'} error ratio`,
          description: 'Share of operations that failed, by operation.',
          unit: 'percentunit',
          queries: [
            { expr: ratio('operation', `${store}_count{${sel}, outcome="error"}`, `${store}_count{${sel}}`), legend: '{{operation}}' },
          ],
        },
      ],
    };
  }),
};

/** Every dashboard, in the order the chart lists them. */
export const dashboardSpecs: readonly DashboardSpec[] = [overview, partition, operator, stores];

const datasource = { type: 'prometheus', uid: '${datasource}' };

function variable(name: 'namespace' | 'partition'): QueryVariableBuilder {
  const query =
    name === 'namespace'
      ? 'label_values(up{role=~"partition|gateway|operator|prober"}, namespace)'
      : 'label_values(up{role="partition", namespace=~"$namespace"}, partition)';
  return new QueryVariableBuilder(name)
    .label(name === 'namespace' ? 'Namespace' : 'Partition')
    .datasource(datasource)
    .query(query)
    .definition(query)
    .refresh(VariableRefresh.OnTimeRangeChanged)
    .sort(VariableSort.AlphabeticalAsc)
    .multi(true)
    .includeAll(true)
    .allValue('.*');
}

function panel(spec: PanelSpec): TimeseriesPanelBuilder | StatPanelBuilder {
  const builder =
    spec.kind === 'stat' ? new StatPanelBuilder() : new TimeseriesPanelBuilder().fillOpacity(10).showPoints(VisibilityMode.Never);
  builder.title(spec.title).description(spec.description).unit(spec.unit).datasource(datasource);
  for (const q of spec.queries) builder.withTarget(new DataqueryBuilder().expr(q.expr).legendFormat(q.legend).datasource(datasource));
  return builder;
}

/** The Grafana dashboard model of one spec. */
export function buildDashboard(spec: DashboardSpec): Dashboard {
  const builder = new DashboardBuilder(spec.title)
    .uid(spec.uid)
    .description(spec.description)
    .tags(['meshwork'])
    .editable()
    .refresh('30s')
    .time({ from: 'now-1h', to: 'now' })
    .timezone('browser')
    .withVariable(new DatasourceVariableBuilder('datasource').label('Data source').type('prometheus'));
  for (const name of spec.variables) builder.withVariable(variable(name));
  for (const row of spec.rows) {
    builder.withRow(new RowBuilder(row.title));
    for (const p of row.panels) builder.withPanel(panel(p));
  }
  return builder.build();
}
