// The figures a rollout step is judged by that come from the data plane itself: each updated
// member's own request counters (GET /metrics on the pod's data-plane port, the histogram
// meshwork_http_request_duration_seconds by route and status). A member that took the new
// version is a new process, so its counters cover exactly its life on that version. Reading is
// best effort: a member that does not answer adds nothing, and readiness (from the pods) covers it.
import http from 'node:http';
import { healthPaths, latencyExcludedRouteLabels } from '@meshwork/contract';
import type { LatencyHistogram, RequestFigures } from './rollout.ts';

const requestMetric = 'meshwork_http_request_duration_seconds';
// Label values are Prometheus-escaped strings; status is a number written as a string.
const statusLabel = /(?:^|,)status="(\d{3})"/;
const routeLabel = /(?:^|,)route="((?:[^"\\]|\\.)*)"/;
const leLabel = /(?:^|,)le="([^"]*)"/;
const notLatency = new Set<string>(latencyExcludedRouteLabels);

/** A sample line of the request histogram: which series (`_count` or `_bucket`), its labels and value. */
function sampleOf(line: string): { series: 'count' | 'bucket'; labels: string; value: number } | undefined {
  let series: 'count' | 'bucket';
  if (line.startsWith(`${requestMetric}_count{`)) series = 'count';
  else if (line.startsWith(`${requestMetric}_bucket{`)) series = 'bucket';
  else return undefined;
  const open = line.indexOf('{');
  const close = line.lastIndexOf('}');
  const value = Number(
    line
      .slice(close + 1)
      .trim()
      .split(' ')[0],
  );
  return Number.isFinite(value) ? { series, labels: line.slice(open + 1, close), value } : undefined;
}

/**
 * Requests, 5xx answers and the latency histogram in one /metrics exposition. 499 (the client
 * leaving first) is not the member's failure and is left out; long polls, which wait by design,
 * and WebDAV requests, which are transfers, are left out of the latency histogram only.
 */
export function requestFiguresOf(exposition: string): RequestFigures {
  let total = 0;
  let errors = 0;
  const buckets = new Map<number, number>();
  for (const line of exposition.split('\n')) {
    const sample = sampleOf(line);
    if (!sample) continue;
    const status = statusLabel.exec(sample.labels)?.[1];
    if (!status || status === '499') continue;
    if (sample.series === 'count') {
      total += sample.value;
      if (status.startsWith('5')) errors += sample.value;
      continue;
    }
    const route = routeLabel.exec(sample.labels)?.[1];
    const le = leLabel.exec(sample.labels)?.[1];
    if (route === undefined || le === undefined || notLatency.has(route)) continue;
    const bound = le === '+Inf' ? Infinity : Number(le);
    if (Number.isNaN(bound)) continue;
    buckets.set(bound, (buckets.get(bound) ?? 0) + sample.value);
  }
  const bounds = [...buckets.keys()].sort((a, b) => a - b);
  return { total, errors, latency: { bounds, counts: bounds.map((b) => buckets.get(b)!) } };
}

/** Two cumulative histograms added bucket by bucket (over the union of their bounds). */
function addHistograms(a: LatencyHistogram, b: LatencyHistogram): LatencyHistogram {
  const bounds = [...new Set([...a.bounds, ...b.bounds])].sort((x, y) => x - y);
  // A cumulative count at a bound one histogram lacks is its count at its next lower bound.
  const at = (h: LatencyHistogram, bound: number): number => {
    let count = 0;
    h.bounds.forEach((hb, i) => {
      if (hb <= bound) count = h.counts[i]!;
    });
    return count;
  };
  return { bounds, counts: bounds.map((bound) => at(a, bound) + at(b, bound)) };
}

/** The sum of two sets of figures. */
export function addFigures(a: RequestFigures, b: RequestFigures): RequestFigures {
  const latency = a.latency && b.latency ? addHistograms(a.latency, b.latency) : (a.latency ?? b.latency);
  return { total: a.total + b.total, errors: a.errors + b.errors, ...(latency ? { latency } : {}) };
}

/** A prober's journeys by outcome in its /metrics exposition (meshwork_prober_journeys_total). */
export function proberJourneysOf(exposition: string): { ok: number; error: number } | undefined {
  let ok: number | undefined;
  let error: number | undefined;
  for (const line of exposition.split('\n')) {
    const match = /^meshwork_prober_journeys_total\{outcome="(ok|error)"\}\s+(\S+)/.exec(line);
    if (!match) continue;
    const value = Number(match[2]);
    if (!Number.isFinite(value)) continue;
    if (match[1] === 'ok') ok = value;
    else error = value;
  }
  return ok === undefined || error === undefined ? undefined : { ok, error };
}

/** Reads one member's request figures, or undefined when it does not answer within `timeoutMs`. */
export async function readMemberFigures(ip: string, port: number, timeoutMs: number): Promise<RequestFigures | undefined> {
  const text = await readMetrics(ip, port, timeoutMs);
  return text === undefined ? undefined : requestFiguresOf(text);
}

/** Reads one prober pod's journey counters, or undefined when it does not answer within `timeoutMs`. */
export async function readProberJourneys(ip: string, port: number, timeoutMs: number): Promise<{ ok: number; error: number } | undefined> {
  const text = await readMetrics(ip, port, timeoutMs);
  return text === undefined ? undefined : proberJourneysOf(text);
}

/** GET /metrics of a pod: its text, or undefined when it does not answer 200 within `timeoutMs`. */
async function readMetrics(ip: string, port: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ host: ip, port, path: healthPaths.metrics, timeout: timeoutMs, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        // An exposition is tens of kilobytes; anything far larger is not one.
        if (size <= 8 * 1024 * 1024) chunks.push(c);
      });
      res.on('end', () => resolve(res.statusCode === 200 ? Buffer.concat(chunks).toString('utf8') : undefined));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy(new Error('metrics read timed out')));
    req.on('error', () => resolve(undefined));
  });
}
