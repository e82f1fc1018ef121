// The partition's HTTP application. Its layers (docs/architecture.md): routes declare their
// hooks (hooks.ts: authentication, slot ownership, object access) and call the sync services
// (sync/), which use the stores; this file assembles them from the process's parts, adds JSON
// bodies only where a route wants one and request logs, and answers every failure with the
// error catalogue of @meshwork/contract as {"error":{"code","message",...}}: a path that does not
// percent-decode is 400 before routing, a known path under another method is 405 with Allow,
// and what a client still sends of a refused body is drained, bounded, before the connection
// is closed (RFC 9112 §9.6), so that the client reads the answer instead of a reset.
// `GET /v1/notifications` is answered before express's router, through the same middleware,
// hooks and error answers: a waiting poll then keeps no router state (ADR 60).
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
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
import { uploadTagKey } from './sync/blocks.ts';
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

// `GET /v1/notifications` as express's router matches it: any case, one optional trailing slash.
const notificationsPath = /^\/v1\/notifications\/?$/i;
// The route the request telemetry labels it with, as the router would have set it.
const notificationsRoute = Object.freeze({ path: '/v1/notifications' });

/** The path of a request target, as express reads it: before any query or fragment. */
function pathOf(url: string): string {
  const end = url.search(/[?#]/);
  return end === -1 ? url : url.slice(0, end);
}

/** Whether a request goes to the notification long poll's own dispatch rather than the router. */
export function isNotificationPoll(method: string | undefined, url: string): boolean {
  return method === 'GET' && notificationsPath.test(pathOf(url));
}

function sendError(res: Response, error: CatalogueError): void {
  for (const [name, value] of Object.entries(error.headers)) res.setHeader(name, value);
  res.status(error.status).json(error.toJSON());
}

/** Builds the request listener of the partition role: its express app, and the long poll's dispatch in front of it. */
export function createPartitionApp(ctx: PartitionContext, hooks: AppHooks): RequestListener {
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

  const telemetry = requestTelemetry(ctx);
  const drain = drainGate(ctx.health);
  app.use(telemetry);
  app.use(drain);
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
      {
        entries: { metadata, blocks, access, possession: ctx.possession },
        uploads: { blocks, metadata, possession: ctx.possession, quotas: ctx.quotas },
        changes: { metadata, changeFeed, access },
        longPolls,
        throttle,
      },
      json,
    ),
  );
  // Before the content routes: .../content/{path}/sources would otherwise be read as a file's content.
  app.use(presenceRoutes(routeHooks, { metadata, presence, grants: ctx.grants }, json));
  app.use(remoteRoutes(routeHooks, { metadata, access, grants: ctx.grants, relay: ctx.relay, logger }));
  // Upload URLs point at the store where download redirects do, and hold as long (ADR 80).
  const downloadRedirect = ctx.config.s3.downloadRedirect;
  const tagKey = uploadTagKey(ctx.config.adminToken);
  app.use(
    contentRoutes(
      routeHooks,
      {
        blocks,
        metadata,
        logger,
        possession: ctx.possession,
        quotas: ctx.quotas,
        downloadRedirect,
        uploadTagKey: tagKey,
        uploadRedirect: ctx.config.s3.uploadRedirect && downloadRedirect !== undefined ? { ...downloadRedirect, tagKey } : undefined,
      },
      json,
    ),
  );
  // GET is answered before the router (below); the route stays for HEAD and the 405's list of methods.
  const notifications = notificationHandler(routeHooks, longPolls);
  app.get('/v1/notifications', notifications);

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

  const answerFailure = (err: unknown, req: Request, res: Response): void => {
    const failure = classifyFailure(err, maxJsonBytes);
    if (failure.kind === 'store') logger.error({ err, method: req.method, path: req.path }, 'Failed to reach a store');
    else if (failure.kind === 'internal')
      logger.error({ err, method: req.method, path: req.path }, 'Failed request with an unexpected error');
    sendError(res, failure.error);
    drainRefusedBody(req);
    if (failure.kind === 'ownership_lost') hooks.onOwnershipLost(err as OwnershipLostError);
  };
  app.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    answerFailure(err, req, res);
  });

  // A waiting poll keeps what its request holds. Through the router that is the router's
  // next() closures, req.params, req.next and the parsed URL (about 1 KB a poll); here it is
  // the request and response express would have set up, and one small closure.
  const serveNotifications = (incoming: IncomingMessage, outgoing: ServerResponse): void => {
    const req = incoming as Request;
    const res = outgoing as Response;
    // What express's app.handle does before routing (express/lib/application.js) ...
    req.res = res;
    res.req = req;
    Object.setPrototypeOf(req, app.request);
    Object.setPrototypeOf(res, app.response);
    res.locals ??= Object.create(null) as Response['locals'];
    // ... and what routing would have set: the route the telemetry labels the request with.
    req.route = notificationsRoute;
    req.baseUrl = '';
    // Express's next() for the last handler of the last route: an error is answered as the
    // error handler above answers it (after the headers went out, the connection is cut, as
    // express's final handler does); without one, the request matched nothing after all.
    const next = (err?: unknown): void => {
      if (res.headersSent) {
        if (err !== undefined) req.socket.destroy();
        return;
      }
      answerFailure(err ?? new ApiError('not_found', `no route for ${req.method} ${req.path}`), req, res);
    };
    try {
      telemetry(req, res, () => {
        drain(req, res, () => {
          try {
            checkPercentEncoding(pathOf(req.url));
            void Promise.resolve(notifications(req, res, next)).catch(next);
          } catch (err) {
            next(err);
          }
        });
      });
    } catch (err) {
      next(err);
    }
  };

  return (req, res) => {
    if (isNotificationPoll(req.method, req.url ?? '/')) serveNotifications(req, res);
    else app(req, res);
  };
}
