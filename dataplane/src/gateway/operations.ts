// The gateway's operations routes, answered by the gateway itself with the same bodies as the
// partition's (docs/api.md "Operations"): /livez (event loop), /readyz (the slot map was read and
// its watch is live, etcd answered recently, not draining), /healthz/deep (a round trip to etcd
// now), /metrics; and GET /v1/slots, the slot map it routes by.
import type { ServerResponse } from 'node:http';
import { ApiError, deepHealthOk, healthPaths, type DeepHealthBody } from '@meshwork/contract';
import type { ProcessHealth } from '../health/health.ts';
import type { DataplaneMetrics } from '../telemetry/metrics.ts';
import { sendError, type GatewayResponse } from './gateway.ts';

/** What the operations routes read. */
export interface OperationsDeps {
  health: ProcessHealth;
  metrics: DataplaneMetrics;
}

function json(res: GatewayResponse, status: number, body: unknown, head: boolean): void {
  const text = JSON.stringify(body);
  (res as ServerResponse).writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    'cache-control': 'no-store',
  });
  if (head) res.end();
  else res.end(text);
}

function failing(res: GatewayResponse, body: Record<string, unknown>, code: string, message: string, head: boolean): void {
  json(res, 503, { ...body, error: { code, message } }, head);
}

/** Whether `pathname` is an operations path. */
export function isOperationsPath(pathname: string): boolean {
  return (Object.values(healthPaths) as string[]).includes(pathname);
}

/** Answers an operations route. */
export async function answerOperations(deps: OperationsDeps, method: string, pathname: string, res: GatewayResponse): Promise<void> {
  if (method !== 'GET' && method !== 'HEAD') {
    sendError(res, new ApiError('method_not_allowed', `${pathname} takes GET, HEAD, not ${method}`, { headers: { Allow: 'GET, HEAD' } }));
    return;
  }
  const head = method === 'HEAD';
  const { health } = deps;
  switch (pathname) {
    case healthPaths.live: {
      const loop = health.liveness();
      const body = {
        status: loop.ok ? 'ok' : 'failing',
        eventLoopDelayMs: loop.delayMs,
        maxEventLoopDelayMs: loop.maxDelayMs,
        limitMs: loop.limitMs,
      };
      if (loop.ok) json(res, 200, body, head);
      else
        failing(
          res,
          body,
          'event_loop_stalled',
          `the event loop stalled for ${loop.maxDelayMs} ms within the last ${loop.windowMs / 1000} s (limit ${loop.limitMs} ms)`,
          head,
        );
      return;
    }
    case healthPaths.ready: {
      const report = health.readiness();
      if (report.ok) json(res, 200, { status: 'ready', checks: report.checks }, head);
      else {
        const failed = report.checks.filter((c) => !c.ok);
        const message = failed.map((c) => `${c.name}: ${c.error ?? 'failing'}`).join('; ');
        failing(res, { status: 'not_ready', checks: report.checks }, 'not_ready', message, head);
      }
      return;
    }
    case healthPaths.deep: {
      const report = await health.deep();
      const body = {
        status: report.ok ? deepHealthOk : 'failing',
        checkedAt: report.checkedAt,
        checks: report.checks,
      } satisfies DeepHealthBody;
      if (report.ok) json(res, 200, body, head);
      else {
        const failed = report.checks.filter((c) => !c.ok);
        failing(res, body, 'unhealthy', failed.map((c) => `${c.name}: ${c.error ?? 'failing'}`).join('; '), head);
      }
      return;
    }
    default: {
      const text = await deps.metrics.registry.metrics();
      (res as ServerResponse).writeHead(200, { 'content-type': deps.metrics.registry.contentType });
      if (head) res.end();
      else res.end(text);
    }
  }
}

/** Answers `GET /v1/slots` from the gateway's own map. */
export function answerSlots(res: GatewayResponse, method: string, body: unknown): void {
  if (method !== 'GET' && method !== 'HEAD') {
    sendError(res, new ApiError('method_not_allowed', `/v1/slots takes GET, HEAD, not ${method}`, { headers: { Allow: 'GET, HEAD' } }));
    return;
  }
  json(res, 200, body, method === 'HEAD');
}
