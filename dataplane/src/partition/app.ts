// The partition's HTTP application: routes, JSON bodies only where a route wants one, request
// logs, and one error handler that answers every failure as {"error":{"code","message"}}.
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import { InvalidCursorError } from '../cursor.ts';
import { InvalidPathError } from '../paths.ts';
import { BlockStoreError } from '../stores/block-store.ts';
import { HistoryCompactedError, OwnershipLostError } from '../stores/metadata-store.ts';
import { ApiError } from './api-error.ts';
import type { PartitionContext } from './context.ts';
import { accountRoutes } from './routes/accounts.ts';
import { contentRoutes } from './routes/content.ts';
import { entryRoutes } from './routes/entries.ts';
import { objectRoutes } from './routes/objects.ts';
import { ValidationError } from './schemas.ts';

/** The largest JSON body accepted (an entry of 10,000 blocks fits). */
export const maxJsonBytes = 2 * 1024 * 1024;

/** What the app reports to its host process. */
export interface AppHooks {
  /** Called when a write found the fence moved; the process must stop serving. */
  onOwnershipLost(err: OwnershipLostError): void;
  /** Whether the process is ready to serve (stores reachable, slots registered). */
  ready(): boolean;
}

function sendError(res: Response, status: number, code: string, message: string, details: Record<string, unknown> = {}): void {
  res.status(status).json({ error: { code, message, ...details } });
}

/** Builds the express app of the partition role. */
export function createPartitionApp(ctx: PartitionContext, hooks: AppHooks): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', 'simple');
  const json = express.json({ limit: maxJsonBytes, type: () => true });

  app.use((req, res, next) => {
    const started = performance.now();
    res.on('finish', () => {
      const ms = Math.round((performance.now() - started) * 10) / 10;
      ctx.logger.info({ method: req.method, path: req.route ? `${req.baseUrl}${(req.route as { path: string }).path}` : req.path, status: res.statusCode, ms }, 'Served request');
    });
    next();
  });

  app.get('/livez', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', (_req, res) => {
    if (hooks.ready()) res.json({ status: 'ready' });
    else sendError(res, 503, 'not_ready', 'the partition is not ready');
  });
  app.get('/v1/slots', async (_req, res) => {
    res.json({ partitions: await ctx.slotMap.list() });
  });

  app.use(accountRoutes(ctx, json));
  app.use(objectRoutes(ctx, json));
  app.use(entryRoutes(ctx, json));
  app.use(contentRoutes(ctx, json));

  app.use((req, res) => {
    sendError(res, 404, 'not_found', `no route for ${req.method} ${req.path}`);
  });

  app.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    if (err instanceof ApiError) {
      for (const [name, value] of Object.entries(err.headers)) res.setHeader(name, value);
      sendError(res, err.status, err.code, err.message, err.details);
    } else if (err instanceof ValidationError) {
      sendError(res, 400, 'invalid_request', err.message, { field: err.field });
    } else if (err instanceof InvalidPathError) {
      sendError(res, 400, 'invalid_path', err.message, { field: 'path' });
    } else if (err instanceof InvalidCursorError) {
      sendError(res, 400, 'invalid_cursor', err.message, { field: 'cursor' });
    } else if (err instanceof HistoryCompactedError) {
      sendError(res, 410, 'cursor_expired', 'the cursor is older than the retained history; list the entries again', { relist: true });
    } else if (err instanceof OwnershipLostError) {
      res.setHeader('Retry-After', '1');
      sendError(res, 503, 'ownership_lost', 'this process no longer owns these slots; retry');
      hooks.onOwnershipLost(err);
    } else if (isBodyParserError(err)) {
      if (err.type === 'entity.too.large') sendError(res, 413, 'too_large', `the body is larger than ${maxJsonBytes} bytes`);
      else if (err.type === 'entity.parse.failed') sendError(res, 400, 'invalid_json', 'body: is not valid JSON', { field: 'body' });
      else sendError(res, err.status, 'invalid_request', `body: ${err.message}`, { field: 'body' });
    } else if (err instanceof BlockStoreError || isEtcdError(err)) {
      ctx.logger.error({ err, method: req.method, path: req.path }, 'Failed to reach a store');
      res.setHeader('Retry-After', '1');
      sendError(res, 503, 'store_unavailable', 'a backing store is unavailable; retry');
    } else {
      ctx.logger.error({ err, method: req.method, path: req.path }, 'Failed request with an unexpected error');
      sendError(res, 500, 'internal', 'internal error');
    }
  });

  return app;
}

function isBodyParserError(err: unknown): err is { type: string; status: number; message: string } {
  return typeof err === 'object' && err !== null && typeof (err as { type?: unknown }).type === 'string' && typeof (err as { status?: unknown }).status === 'number';
}

/** The etcd client's errors are named GRPC...Error or Etcd...Error. */
function isEtcdError(err: unknown): boolean {
  return err instanceof Error && /^(GRPC|Etcd)/.test(err.name);
}
