// WebDAV on the gateway (ADR 37): the one thing the gateway's dispatch calls for `/dav` paths.
// WebDAV speaks to the partitions through the gateway's own router, reached over an internal
// HTTP listener on a random loopback port, with @meshwork/client as the caller.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Etcd3 } from 'etcd3';
import type { Logger } from 'pino';
import { ApiError } from '@meshwork/contract';
import { sendError, type GatewayRequest, type GatewayResponse } from '../gateway.ts';
import { DavHandler } from './handler.ts';
import { DavState } from './state.ts';

export { isDavPath } from './paths.ts';

/** The router's serving of `/v1` requests, as the gateway's dispatch calls it. */
type ServeApi = (req: GatewayRequest, res: GatewayResponse, pathname: string, search: string) => Promise<void>;

/** WebDAV, mounted: `serve` answers a `/dav` request, `close` stops the internal listener. */
export interface MountedDav {
  serve(req: GatewayRequest, res: GatewayResponse): Promise<void>;
  close(): Promise<void>;
}

/** Starts the internal API listener on loopback and the WebDAV handler over it. */
export async function mountDav(deps: { serveApi: ServeApi; etcd: Etcd3; logger: Logger }): Promise<MountedDav> {
  const internal = createServer({ keepAliveTimeout: 65_000 }, (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const pathname = q === -1 ? url : url.slice(0, q);
    if (!pathname.startsWith('/v1/')) {
      sendError(res, new ApiError('not_found', `no route for ${req.method ?? 'GET'} ${pathname}`), true);
      return;
    }
    deps.serveApi(req, res, pathname, q === -1 ? '' : url.slice(q + 1)).catch((err: unknown) => {
      deps.logger.error({ err }, 'Failed an internal API request');
      sendError(res, new ApiError('internal', 'the gateway failed to serve the request'), true);
    });
  });
  await new Promise<void>((resolve, reject) => {
    internal.once('error', reject);
    internal.listen(0, '127.0.0.1', resolve);
  });
  const { port } = internal.address() as { port: number };
  const handler = new DavHandler({
    apiBase: `http://127.0.0.1:${port}`,
    state: new DavState(deps.etcd),
    logger: deps.logger.child({ component: 'webdav' }),
  });
  return {
    serve: (req, res) => handler.serve(req as IncomingMessage, res as ServerResponse),
    close: () =>
      new Promise<void>((resolve) => {
        internal.close(() => resolve());
        internal.closeAllConnections();
      }),
  };
}
