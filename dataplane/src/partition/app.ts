// The partition's HTTP application. Its layers (docs/architecture.md): routes declare their
// hooks (hooks.ts: authentication, slot ownership, object access) and call the sync services
// (sync/), which use the stores; this file assembles them from the process's parts, adds JSON
// bodies only where a route wants one and request logs, and answers every failure with the
// error catalogue of @meshwork/contract as {"error":{"code","message",...}}.
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import { ApiError, type ApiError as CatalogueError } from '@meshwork/contract';
import type { VolumeFaultError } from '../health/volumes.ts';
import type { OwnershipLostError } from '../stores/metadata-store.ts';
import type { PartitionContext } from './context.ts';
import { drainGate } from './drain.ts';
import { classifyFailure } from './errors.ts';
import { RouteHooks } from './hooks.ts';
import { requestTelemetry } from './request-telemetry.ts';
import { accountRoutes } from './routes/accounts.ts';
import { contentRoutes } from './routes/content.ts';
import { entryRoutes } from './routes/entries.ts';
import { notificationHandler } from './routes/notifications.ts';
import { objectRoutes } from './routes/objects.ts';
import { operationsRoutes } from './routes/operations.ts';
import { presenceRoutes } from './routes/presence.ts';
import { ObjectAccess } from './sync/access.ts';

/** The largest JSON body accepted (an entry of 10,000 blocks fits). */
export const maxJsonBytes = 2 * 1024 * 1024;

/** What the app reports to its host process. */
export interface AppHooks {
  /** Called when a write found the fence moved; the process must stop serving. */
  onOwnershipLost(err: OwnershipLostError): void;
  /** Called when a deep health check found a volume fault, once its answer is sent. */
  onVolumeFault(fault: VolumeFaultError): void;
}

function sendError(res: Response, error: CatalogueError): void {
  for (const [name, value] of Object.entries(error.headers)) res.setHeader(name, value);
  res.status(error.status).json(error.toJSON());
}

/** Builds the express app of the partition role. */
export function createPartitionApp(ctx: PartitionContext, hooks: AppHooks): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', 'simple');
  const json = express.json({ limit: maxJsonBytes, type: () => true });

  // Each service gets the stores it needs, never the whole context.
  const { metadata, blocks, changeFeed, longPolls, presence, throttle, logger } = ctx;
  const access = new ObjectAccess(metadata, ctx.objectCache);
  const routeHooks = new RouteHooks({ auth: ctx.auth, partition: ctx.config.partition, slots: ctx.config.slots, slotMap: ctx.slotMap, access });

  app.use(requestTelemetry(ctx));
  app.use(drainGate(ctx.health));
  app.use(operationsRoutes(ctx, (fault) => hooks.onVolumeFault(fault)));
  app.get('/v1/slots', async (_req, res) => {
    res.json({ partitions: await ctx.slotMap.list() });
  });

  app.use(accountRoutes(routeHooks, { metadata, presence, slots: ctx.config.slots, logger }, json));
  app.use(objectRoutes(routeHooks, { metadata, access, logger }, json));
  app.use(entryRoutes(routeHooks, { entries: { metadata, blocks, access }, changes: { metadata, changeFeed, access }, longPolls, throttle }, json));
  // Before the content routes: .../content/{path}/sources would otherwise be read as a file's content.
  app.use(presenceRoutes(routeHooks, { metadata, presence }, json));
  app.use(contentRoutes(routeHooks, { blocks, metadata, logger }, json));
  // On the app, not in a Router: a waiting poll keeps its router chain alive, and each level costs memory per poll.
  app.get('/v1/notifications', notificationHandler(routeHooks, longPolls));

  app.use((req, res) => {
    sendError(res, new ApiError('not_found', `no route for ${req.method} ${req.path}`));
  });

  app.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const failure = classifyFailure(err, maxJsonBytes);
    if (failure.kind === 'store') logger.error({ err, method: req.method, path: req.path }, 'Failed to reach a store');
    else if (failure.kind === 'internal') logger.error({ err, method: req.method, path: req.path }, 'Failed request with an unexpected error');
    sendError(res, failure.error);
    if (failure.kind === 'ownership_lost') hooks.onOwnershipLost(err as OwnershipLostError);
  });

  return app;
}
