// The metric names Meshwork's components export, read from their prom-client declarations, so
// that a dashboard or alert naming a metric that nothing exports fails a unit test by name.
// The names come from the sources, not from a list kept by hand: a metric renamed in a role
// breaks the dashboards' test at once.
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

/** Where the prom-client declarations live. */
const sourceRoots = ['dataplane/src', 'operator/src'];

/** The process metrics prom-client's collectDefaultMetrics exports (version 15), without their prefix. */
const defaultMetrics: Record<string, 'counter' | 'gauge' | 'histogram'> = {
  process_cpu_user_seconds_total: 'counter',
  process_cpu_system_seconds_total: 'counter',
  process_cpu_seconds_total: 'counter',
  process_start_time_seconds: 'gauge',
  process_resident_memory_bytes: 'gauge',
  process_virtual_memory_bytes: 'gauge',
  process_heap_bytes: 'gauge',
  process_open_fds: 'gauge',
  process_max_fds: 'gauge',
  nodejs_eventloop_lag_seconds: 'gauge',
  nodejs_eventloop_lag_min_seconds: 'gauge',
  nodejs_eventloop_lag_max_seconds: 'gauge',
  nodejs_eventloop_lag_mean_seconds: 'gauge',
  nodejs_eventloop_lag_stddev_seconds: 'gauge',
  nodejs_eventloop_lag_p50_seconds: 'gauge',
  nodejs_eventloop_lag_p90_seconds: 'gauge',
  nodejs_eventloop_lag_p99_seconds: 'gauge',
  nodejs_active_resources: 'gauge',
  nodejs_active_resources_total: 'gauge',
  nodejs_active_handles: 'gauge',
  nodejs_active_handles_total: 'gauge',
  nodejs_active_requests: 'gauge',
  nodejs_active_requests_total: 'gauge',
  nodejs_heap_size_total_bytes: 'gauge',
  nodejs_heap_size_used_bytes: 'gauge',
  nodejs_external_memory_bytes: 'gauge',
  nodejs_heap_space_size_total_bytes: 'gauge',
  nodejs_heap_space_size_used_bytes: 'gauge',
  nodejs_heap_space_size_available_bytes: 'gauge',
  nodejs_version_info: 'gauge',
  nodejs_gc_duration_seconds: 'histogram',
};

/** The prefixes the roles give their default metrics (`meshwork_${role}_`). */
const defaultMetricPrefixes = ['meshwork_operator_', 'meshwork_partition_', 'meshwork_gateway_', 'meshwork_prober_'];

/** Series Prometheus itself adds to every target. */
const scrapeSeries = ['up', 'scrape_duration_seconds', 'scrape_samples_scraped'];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [path] : [];
  });
}

/** Every series name a component exports (histograms with their _bucket, _sum and _count), with the file that declares it. */
export function exportedSeries(repoRoot: string): Map<string, string> {
  const series = new Map<string, string>();
  const add = (name: string, kind: string, from: string): void => {
    const names = kind === 'Histogram' || kind === 'histogram' ? ['_bucket', '_sum', '_count'].map((s) => name + s) : [name];
    for (const n of names) series.set(n, from);
  };
  const declaration = /new (Counter|Gauge|Histogram|Summary)\(\{\s*name: '([a-z_:][a-z0-9_:]*)'/g;
  for (const root of sourceRoots) {
    for (const file of sourceFiles(join(repoRoot, root))) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(declaration)) add(m[2]!, m[1]!, relative(repoRoot, file));
    }
  }
  for (const prefix of defaultMetricPrefixes) {
    for (const [name, kind] of Object.entries(defaultMetrics)) add(prefix + name, kind, 'prom-client collectDefaultMetrics');
  }
  for (const name of scrapeSeries) series.set(name, 'Prometheus');
  return series;
}

const promqlWords = new Set([
  'sum',
  'min',
  'max',
  'avg',
  'count',
  'stddev',
  'stdvar',
  'topk',
  'bottomk',
  'quantile',
  'count_values',
  'group',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'rate',
  'irate',
  'increase',
  'delta',
  'idelta',
  'deriv',
  'histogram_quantile',
  'absent',
  'absent_over_time',
  'clamp_min',
  'clamp_max',
  'max_over_time',
  'min_over_time',
  'avg_over_time',
  'sum_over_time',
  'last_over_time',
  'changes',
  'resets',
  'time',
  'vector',
  'scalar',
  'label_replace',
  'abs',
  'round',
  'sort',
  'sort_desc',
  'inf',
  'nan',
]);

/** The series names a PromQL expression reads (identifiers outside braces, strings and durations that are not functions or keywords). */
export function seriesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '{}')
    .replace(/\[[^\]]*\]/g, '[]')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:]|\s*\()/g)) {
    const word = m[1]!;
    if (!promqlWords.has(word.toLowerCase())) names.add(word);
  }
  return [...names];
}
