// The gateway's operations routes, answered by the gateway itself with the same bodies as the
// partition's (docs/api.md "Operations"): /livez (event loop), /readyz (the slot map was read and
// its watch is live, etcd answered recently, not draining), /healthz/deep (a round trip to etcd
// now), /metrics; and GET /v1/slots, the slot map it routes by.
import type { ServerResponse } from 'node:http';
import { ApiError, healthPaths } from '@meshwork/contract';
import { deepHealthAnswer, livenessAnswer, readinessAnswer, type HealthAnswer } from '../health/answers.ts';
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

function send(res: GatewayResponse, answer: HealthAnswer, head: boolean): void {
  json(res, answer.status, answer.body, head);
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
    case healthPaths.live:
      send(res, livenessAnswer(health.liveness()), head);
      return;
    case healthPaths.ready:
      send(res, readinessAnswer(health.readiness()), head);
      return;
    case healthPaths.deep:
      send(res, deepHealthAnswer(await health.deep()), head);
      return;
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
