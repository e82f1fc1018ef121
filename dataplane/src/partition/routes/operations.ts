// Operations routes, unauthenticated and cheap for the caller to ask: /livez, /readyz,
// /healthz/deep and /metrics. Failures answer 503 with the checks and, like every error of the
// API, an {"error":{"code","message"}}.
import { Router } from 'express';
import type { Response } from 'express';
import { deepHealthOk, healthPaths, type DeepHealthBody } from '@meshwork/contract';
import type { VolumeFaultError } from '../../health/volumes.ts';
import type { PartitionContext } from '../context.ts';

/** Paths that keep answering while the process drains. */
export const operationsPaths: ReadonlySet<string> = new Set(Object.values(healthPaths));

function failing(res: Response, body: Record<string, unknown>, code: string, message: string): void {
  res.status(503).json({ ...body, error: { code, message } });
}

/** The operations routes; `onVolumeFault` runs once the answer reporting a fault is sent. */
export function operationsRoutes(ctx: PartitionContext, onVolumeFault: (fault: VolumeFaultError) => void): Router {
  const router = Router();

  router.get(healthPaths.live, (_req, res) => {
    const loop = ctx.health.liveness();
    const body = {
      status: loop.ok ? 'ok' : 'failing',
      eventLoopDelayMs: loop.delayMs,
      maxEventLoopDelayMs: loop.maxDelayMs,
      limitMs: loop.limitMs,
    };
    if (loop.ok) res.json(body);
    else
      failing(
        res,
        body,
        'event_loop_stalled',
        `the event loop stalled for ${loop.maxDelayMs} ms within the last ${loop.windowMs / 1000} s (limit ${loop.limitMs} ms)`,
      );
  });

  router.get(healthPaths.ready, (_req, res) => {
    const report = ctx.health.readiness();
    if (report.ok) {
      res.json({ status: 'ready', checks: report.checks });
      return;
    }
    const failed = report.checks.filter((c) => !c.ok);
    failing(
      res,
      { status: 'not_ready', checks: report.checks },
      'not_ready',
      failed.map((c) => `${c.name}: ${c.error ?? 'failing'}`).join('; '),
    );
  });

  router.get(healthPaths.deep, async (_req, res) => {
    const report = await ctx.health.deep();
    const body = {
      status: report.ok ? deepHealthOk : 'failing',
      checkedAt: report.checkedAt,
      checks: report.checks,
    } satisfies DeepHealthBody;
    // After the answer (or the caller's departure): the caller learns why before the process exits.
    if (report.faults.length > 0) res.once('close', () => onVolumeFault(report.faults[0]!));
    if (report.ok) res.json(body);
    else {
      const failed = report.checks.filter((c) => !c.ok);
      failing(res, body, 'unhealthy', failed.map((c) => `${c.name}: ${c.error ?? 'failing'}`).join('; '));
    }
  });

  router.get(healthPaths.metrics, async (_req, res) => {
    const text = await ctx.metrics.registry.metrics();
    res.setHeader('Content-Type', ctx.metrics.registry.contentType);
    res.send(text);
  });

  return router;
}
