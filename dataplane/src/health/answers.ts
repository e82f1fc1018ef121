// The answers of the operations routes /livez, /readyz and /healthz/deep, the same for the
// partition and the gateway (docs/api.md "Operations"): 200 with the checks, or 503 with the
// checks and, like every error of the API, an {"error":{"code","message"}}. Pure: each role
// sends the answer with its own HTTP layer.
import { deepHealthOk, type DeepHealthBody } from '@meshwork/contract';
import type { EventLoopStatus } from './event-loop.ts';
import type { CheckResult, DeepHealthReport, ReadinessReport } from './health.ts';

/** The status code and JSON body a health route answers with. */
export interface HealthAnswer {
  status: 200 | 503;
  body: Record<string, unknown>;
}

function answer(ok: boolean, body: Record<string, unknown>, code: string, message: () => string): HealthAnswer {
  return ok ? { status: 200, body } : { status: 503, body: { ...body, error: { code, message: message() } } };
}

/** `name: error` of each failed check, for an error message. */
function failedChecks(checks: readonly CheckResult[]): string {
  return checks
    .filter((c) => !c.ok)
    .map((c) => `${c.name}: ${c.error ?? 'failing'}`)
    .join('; ');
}

/** The answer of /livez: whether the event loop kept within its delay limit. */
export function livenessAnswer(loop: EventLoopStatus): HealthAnswer {
  const body = {
    status: loop.ok ? 'ok' : 'failing',
    eventLoopDelayMs: loop.delayMs,
    maxEventLoopDelayMs: loop.maxDelayMs,
    limitMs: loop.limitMs,
  };
  return answer(
    loop.ok,
    body,
    'event_loop_stalled',
    () => `the event loop stalled for ${loop.maxDelayMs} ms within the last ${loop.windowMs / 1000} s (limit ${loop.limitMs} ms)`,
  );
}

/** The answer of /readyz: the readiness checks. */
export function readinessAnswer(report: ReadinessReport): HealthAnswer {
  if (report.ok) return { status: 200, body: { status: 'ready', checks: report.checks } };
  return answer(false, { status: 'not_ready', checks: report.checks }, 'not_ready', () => failedChecks(report.checks));
}

/** The answer of /healthz/deep: the deep checks. */
export function deepHealthAnswer(report: DeepHealthReport): HealthAnswer {
  const body = {
    status: report.ok ? deepHealthOk : 'failing',
    checkedAt: report.checkedAt,
    checks: report.checks,
  } satisfies DeepHealthBody;
  return answer(report.ok, body, 'unhealthy', () => failedChecks(report.checks));
}
