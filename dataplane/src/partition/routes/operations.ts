// Operations routes, unauthenticated and cheap for the caller to ask: /livez, /readyz,
// /healthz/deep and /metrics. Failures answer 503 with the checks and, like every error of the
// API, an {"error":{"code","message"}}.
import { Router } from 'express';
import type { Response } from 'express';
import { healthPaths } from '@meshwork/contract';
import { deepHealthAnswer, livenessAnswer, readinessAnswer, type HealthAnswer } from '../../health/answers.ts';
import type { VolumeFaultError } from '../../health/volumes.ts';
import type { PartitionContext } from '../context.ts';

/** Paths that keep answering while the process drains. */
export const operationsPaths: ReadonlySet<string> = new Set(Object.values(healthPaths));

function send(res: Response, answer: HealthAnswer): void {
  res.status(answer.status).json(answer.body);
}

/** The operations routes; `onVolumeFault` runs once the answer reporting a fault is sent. */
export function operationsRoutes(ctx: PartitionContext, onVolumeFault: (fault: VolumeFaultError) => void): Router {
  const router = Router();

  router.get(healthPaths.live, (_req, res) => {
    send(res, livenessAnswer(ctx.health.liveness()));
  });

  router.get(healthPaths.ready, (_req, res) => {
    send(res, readinessAnswer(ctx.health.readiness()));
  });

  router.get(healthPaths.deep, async (_req, res) => {
    const report = await ctx.health.deep();
    // After the answer (or the caller's departure): the caller learns why before the process exits.
    if (report.faults.length > 0) res.once('close', () => onVolumeFault(report.faults[0]!));
    send(res, deepHealthAnswer(report));
  });

  router.get(healthPaths.metrics, async (_req, res) => {
    const text = await ctx.metrics.registry.metrics();
    res.setHeader('Content-Type', ctx.metrics.registry.contentType);
    res.send(text);
  });

  return router;
}
