// WebDAV on the gateway (ADR 37, ADR 46): the one thing the gateway's dispatch calls for `/dav`
// paths. WebDAV speaks to the partitions through the gateway's own router, called in process
// by a `fetch` (in-process.ts) with @meshwork/client as the caller.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Agent } from 'node:http';
import type { Etcd3 } from 'etcd3';
import { nodeHttpFetch } from '@meshwork/client/node';
import type { Logger } from 'pino';
import type { GatewayRequest, GatewayResponse } from '../gateway.ts';
import { DavHandler } from './handler.ts';
import { inProcessFetch, type ServeApi } from './in-process.ts';
import { DavState } from './state.ts';

export { isDavPath } from './paths.ts';

/** WebDAV, mounted: `serve` answers a `/dav` request, `close` lets go of its connections to the store. */
export interface MountedDav {
  serve(req: GatewayRequest, res: GatewayResponse): Promise<void>;
  close(): Promise<void>;
}

/** The origin the API client's calls name; never resolved, only their path and query are served. */
const internalBase = 'http://gateway.internal';

/** Builds the WebDAV handler over the gateway's router. */
export function mountDav(deps: { serveApi: ServeApi; etcd: Etcd3; logger: Logger }): MountedDav {
  const logger = deps.logger.child({ component: 'webdav' });
  const storeAgent = new Agent({ keepAlive: true, maxSockets: 64 });
  const handler = new DavHandler({
    apiBase: internalBase,
    // Presigned URLs at the store (ADR 80) are reached over the network, on connections kept alive.
    fetch: inProcessFetch(deps.serveApi, logger, { origin: internalBase, fetch: nodeHttpFetch(storeAgent) }),
    state: new DavState(deps.etcd),
    logger,
  });
  return {
    serve: (req, res) => handler.serve(req as IncomingMessage, res as ServerResponse),
    close: () => {
      storeAgent.destroy();
      return Promise.resolve();
    },
  };
}
