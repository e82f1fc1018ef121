// The partition's HTTP application. Its layers (docs/architecture.md): routes declare their
// hooks (hooks.ts: authentication, slot ownership, object access) and call the sync services
// (sync/), which use the stores; this file assembles them from the process's parts, adds JSON
// bodies only where a route wants one and request logs, and answers every failure with the
// error catalogue of @meshwork/contract as {"error":{"code","message",...}}: a path that does not
// percent-decode is 400 before routing, a known path under another method is 405 with Allow,
// and what a client still sends of a refused body is drained, bounded, before the connection
// is closed (RFC 9112 §9.6), so that the client reads the answer instead of a reset.
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import type { IncomingMessage } from 'node:http';
import { ApiError, type ApiError as CatalogueError } from '@meshwork/contract';
import type { VolumeFaultError } from '../health/volumes.ts';
import type { OwnershipLostError } from '../stores/metadata-store.ts';
import type { PartitionContext } from './context.ts';
import { allowedMethods, routeTable, type AllowedRoute, type RouteListing } from './allowed-methods.ts';
import { drainGate } from './drain.ts';
import { classifyFailure } from './errors.ts';
import { RouteHooks } from './hooks.ts';
import { jsonBody } from './json-body.ts';
import { checkPercentEncoding } from './request-params.ts';
import { requestTelemetry } from './request-telemetry.ts';
import { accountRoutes } from './routes/accounts.ts';
import { sessionRoutes } from './routes/sessions.ts';
import { AddressFailures } from './sign-in/lockout.ts';
import { contentRoutes } from './routes/content.ts';
import { entryRoutes } from './routes/entries.ts';
import { notificationHandler } from './routes/notifications.ts';
import { objectRoutes } from './routes/objects.ts';
import { operationsRoutes } from './routes/operations.ts';
import { presenceRoutes } from './routes/presence.ts';
import { remoteRoutes } from './routes/remote.ts';
import { ObjectAccess } from './sync/access.ts';

/** The largest JSON body accepted (an entry of 10,000 blocks fits). */
export const maxJsonBytes = 2 * 1024 * 1024;

/**
 * How much of a refused body is read and discarded before the connection is closed. The byte
 * bound is generous: on a fast link a client may send tens of MiB before it has parsed the
 * answer, and closing while it sends resets the connection under the answer it has not read.
 */
export const refusedBodyDrain = { maxBytes: 32 * 1024 * 1024, maxMs: 2000 };

/**
 * Reads and discards what is left of a request whose answer is sent, so that a client still
 * sending reads the answer (closing with unread bytes makes TCP reset the connection, and the
 * client may lose the answer). Past `maxBytes` or `maxMs` the connection is closed anyway.
 */
export function drainRefusedBody(req: IncomingMessage, limits: { maxBytes: number; maxMs: number } = refusedBodyDrain): void {
  if (req.complete || req.destroyed) return;
  let drained = 0;
  const stop = (close: boolean): void => {
    clearTimeout(timer);
    req.off('data', onData);
    req.off('end', onEnd);
    if (close) req.socket.destroy();
  };
  const onData = (chunk: Buffer): void => {
    drained += chunk.length;
    if (drained > limits.maxBytes) stop(true);
  };
  const onEnd = (): void => stop(false);
  const timer = setTimeout(() => stop(true), limits.maxMs);
  timer.unref();
  req.on('data', onData);
  req.once('end', onEnd);
  req.resume();
}

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
  const json = jsonBody(maxJsonBytes);

  // Each service gets the stores it needs, never the whole context.
  const { metadata, blocks, changeFeed, longPolls, presence, throttle, logger } = ctx;
  const access = new ObjectAccess(metadata, ctx.objectCache);
  const routeHooks = new RouteHooks({
    auth: ctx.auth,
    partition: ctx.config.partition,
    owners: ctx.owners,
    slotMap: ctx.slotMap,
    access,
  });

  app.use(requestTelemetry(ctx));
  app.use(drainGate(ctx.health));
  app.use((req, _res, next) => {
    checkPercentEncoding(req.path);
    next();
  });
  app.use(operationsRoutes(ctx, (fault) => hooks.onVolumeFault(fault)));
  app.get('/v1/slots', async (_req, res) => {
    res.json({ partitions: await ctx.slotMap.list() });
  });

  const accounts = { slots: () => ctx.owners.ranges(), fenceFor: (slot: number) => ctx.owners.fenceFor(slot) };
  app.use(accountRoutes(routeHooks, { metadata, presence, ...accounts, logger, quotas: ctx.quotas }, json));
  app.use(sessionRoutes(routeHooks, { metadata, addresses: new AddressFailures(), now: Date.now, logger }, json));
  app.use(objectRoutes(routeHooks, { metadata, access, logger }, json));
  app.use(
    entryRoutes(
      routeHooks,
      { entries: { metadata, blocks, access, possession: ctx.possession }, changes: { metadata, changeFeed, access }, longPolls, throttle },
      json,
    ),
  );
  // Before the content routes: .../content/{path}/sources would otherwise be read as a file's content.
  app.use(presenceRoutes(routeHooks, { metadata, presence, grants: ctx.grants }, json));
  app.use(remoteRoutes(routeHooks, { metadata, access, grants: ctx.grants, relay: ctx.relay, logger }));
  app.use(contentRoutes(routeHooks, { blocks, metadata, logger, possession: ctx.possession, quotas: ctx.quotas }, json));
  // On the app, not in a Router: a waiting poll keeps its router chain alive, and each level costs memory per poll.
  app.get('/v1/notifications', notificationHandler(routeHooks, longPolls));

  // Built on the first request that matched no route, once every route is in place.
  let routes: AllowedRoute[] | undefined;
  app.use((req, res) => {
    routes ??= routeTable((app.router as unknown as { listRoutes(): RouteListing[] }).listRoutes());
    const allowed = allowedMethods(routes, req.path);
    if (allowed.length > 0) {
      throw new ApiError('method_not_allowed', `${req.path} takes ${allowed.join(', ')}, not ${req.method}`, {
        headers: { Allow: allowed.join(', ') },
      });
    }
    sendError(res, new ApiError('not_found', `no route for ${req.method} ${req.path}`));
  });

  app.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const failure = classifyFailure(err, maxJsonBytes);
    if (failure.kind === 'store') logger.error({ err, method: req.method, path: req.path }, 'Failed to reach a store');
    else if (failure.kind === 'internal')
      logger.error({ err, method: req.method, path: req.path }, 'Failed request with an unexpected error');
    sendError(res, failure.error);
    drainRefusedBody(req);
    if (failure.kind === 'ownership_lost') hooks.onOwnershipLost(err as OwnershipLostError);
  });

  return app;
}
