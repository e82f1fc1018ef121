// The figures a rollout step is judged by that come from the data plane itself: each updated
// member's own request counters (GET /metrics on the pod's data-plane port, the histogram
// meshwork_http_request_duration_seconds by status). A member that took the new version is a
// new process, so its counters cover exactly its life on that version. Reading is best effort:
// a member that does not answer adds nothing, and readiness (from the pods) covers it.
import http from 'node:http';
import { healthPaths } from '@meshwork/contract';
import type { RequestFigures } from './rollout.ts';

const requestCountMetric = 'meshwork_http_request_duration_seconds_count';
// Label values are Prometheus-escaped strings; status is a number written as a string.
const statusLabel = /(?:^|,)status="(\d{3})"/;

/** Requests and 5xx answers in one /metrics exposition (499, the client leaving first, is not the member's failure). */
export function requestFiguresOf(exposition: string): RequestFigures {
  let total = 0;
  let errors = 0;
  for (const line of exposition.split('\n')) {
    if (!line.startsWith(`${requestCountMetric}{`)) continue;
    const close = line.lastIndexOf('}');
    const status = statusLabel.exec(line.slice(requestCountMetric.length + 1, close))?.[1];
    const value = Number(
      line
        .slice(close + 1)
        .trim()
        .split(' ')[0],
    );
    if (!status || !Number.isFinite(value) || status === '499') continue;
    total += value;
    if (status.startsWith('5')) errors += value;
  }
  return { total, errors };
}

/** The sum of two sets of figures. */
export function addFigures(a: RequestFigures, b: RequestFigures): RequestFigures {
  return { total: a.total + b.total, errors: a.errors + b.errors };
}

/** Reads one member's request figures, or undefined when it does not answer within `timeoutMs`. */
export async function readMemberFigures(ip: string, port: number, timeoutMs: number): Promise<RequestFigures | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ host: ip, port, path: healthPaths.metrics, timeout: timeoutMs, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        // An exposition is tens of kilobytes; anything far larger is not one.
        if (size <= 8 * 1024 * 1024) chunks.push(c);
      });
      res.on('end', () => resolve(res.statusCode === 200 ? requestFiguresOf(Buffer.concat(chunks).toString('utf8')) : undefined));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy(new Error('metrics read timed out')));
    req.on('error', () => resolve(undefined));
  });
}
