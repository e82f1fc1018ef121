// The gateway role's process: parse configuration, serve HTTPS (HTTP/2 and HTTP/1.1 by ALPN,
// the certificate reloaded when its Secret changes) or plain HTTP/1.1, keep the slot map from
// an etcd watch, ask every member's /readyz, and route each /v1 request (gateway.ts). It holds
// no state that must survive it: a restarted gateway lists the slot map again.
import { Agent, createServer as createHttpServer, get as httpGet, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createSecureServer, type Http2SecureServer, type Http2ServerRequest, type Http2Session } from 'node:http2';
import type { Socket } from 'node:net';
import { hostname } from 'node:os';
import { Etcd3 } from 'etcd3';
import { Counter, Gauge } from 'prom-client';
import type { Logger } from 'pino';
import { ApiError, ConfigError, davRouteLabel, ExitCode, healthPaths, statusOf, type ApiErrorCode } from '@meshwork/contract';
import { EventLoopMonitor } from '../health/event-loop.ts';
import { ProcessHealth } from '../health/health.ts';
import { StoreReachability } from '../health/store-reachability.ts';
import { VolumeChecks } from '../health/volume-checks.ts';
import { createLogger } from '../telemetry/logger.ts';
import { DataplaneMetrics } from '../telemetry/metrics.ts';
import { startTracing } from '../telemetry/tracing.ts';
import { drainOnSignal, terminate } from '../termination.ts';
import { AdaptiveLimit } from './admission.ts';
import { isDavPath, mountDav } from './dav/index.ts';
import { parseGatewayConfig, type GatewayConfig } from './config.ts';
import {
  GatewayRouter,
  observeRequest,
  routeLabel,
  sendError,
  type GatewayMetrics,
  type GatewayRequest,
  type GatewayResponse,
} from './gateway.ts';
import { MemberStates, type ProbeResult } from './members.ts';
import { gatewayRelayUpgrade } from './relay-upgrade.ts';
import { answerOperations, answerSlots, isOperationsPath } from './operations.ts';
import { LoopLag } from './loop-lag.ts';
import { SlotWatch } from './slot-watch.ts';
import { defaultWebDir, isWebPath, WebAssets } from './web.ts';
import { readKeyPair, watchKeyPair, type KeyPair } from './tls.ts';

// Idle connections to partitions are closed after this long, well before the partition's own
// keep-alive timeout (65 s), so the gateway never reuses a socket the partition is closing.
const upstreamIdleMs = 30_000;
// Idle client connections are kept this long.
const keepAliveTimeoutMs = 65_000;
// Past this mean event-loop lag (ms) the gateway refuses new API requests itself.
const shedLagMs = 100;
// A member's /readyz gets at least this long to answer (and the probe interval if longer).
const probeTimeoutMs = 2000;
// etcd round trips for readiness, as the partition's.
const storeProbe = { intervalMs: 5000, timeoutMs: 2000, staleAfterMs: 15_000 };

function loadConfig(): GatewayConfig {
  try {
    return parseGatewayConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) terminate(ExitCode.configInvalid, err.message);
    throw err;
  }
}

function gatewayMetrics(http: DataplaneMetrics, limits: Map<string, AdaptiveLimit>): GatewayMetrics {
  const upstream = new Counter({
    name: 'meshwork_gateway_upstream_total',
    help: "Exchanges with partitions by partition and outcome (the answer's status class, or unreachable, timeout, broken, misdirected, draining).",
    labelNames: ['partition', 'outcome'] as const,
    registers: [http.registry],
  });
  const shed = new Counter({
    name: 'meshwork_gateway_shed_total',
    help: "Requests the gateway refused with 503 because the partition was at the gateway's concurrency limit.",
    labelNames: ['partition'] as const,
    registers: [http.registry],
    // Every partition the gateway has limited shows at zero before its first shed.
    collect() {
      for (const partition of limits.keys()) this.inc({ partition }, 0);
    },
  });
  const retried = new Counter({
    name: 'meshwork_gateway_retries_total',
    help: 'Requests the gateway sent again, by reason (misdirected, unreachable, draining, broken).',
    labelNames: ['reason'] as const,
    registers: [http.registry],
  });
  for (const reason of ['misdirected', 'unreachable', 'draining', 'broken']) retried.inc({ reason }, 0);
  new Gauge({
    name: 'meshwork_gateway_concurrency_limit',
    help: "The gateway's adaptive concurrency limit per partition.",
    labelNames: ['partition'] as const,
    registers: [http.registry],
    collect() {
      for (const [partition, limit] of limits) this.set({ partition }, limit.limit);
    },
  });
  return {
    http,
    upstream: (partition, outcome) => upstream.inc({ partition, outcome }),
    shed: (partition) => shed.inc({ partition }),
    retried: (reason) => retried.inc({ reason }),
  };
}

const reasons: Partial<Record<number, string>> = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' };

/** Answers a request Node's parser refused (headers too large or too slow, malformed) in the error envelope, then closes. */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  const message = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || message?.headersSent) {
    socket.destroy();
    return;
  }
  const [code, text]: [ApiErrorCode, string] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? ['headers_too_large', 'the request line and headers are larger than the gateway accepts']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? ['request_timeout', 'the request did not arrive in time']
        : ['invalid_request', 'the request is not valid HTTP/1.1'];
  const status = statusOf(code);
  const body = JSON.stringify(new ApiError(code, text).toJSON());
  socket.end(
    `HTTP/1.1 ${status} ${reasons[status] ?? 'Error'}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** Runs the gateway role until SIGTERM. */
export async function runGateway(): Promise<void> {
  const config = loadConfig();
  const warnings: { logger?: Logger } = {};
  const tracing = await startTracing({
    serviceName: 'meshwork-gateway',
    endpoint: config.otlpEndpoint,
    resource: { 'service.instance.id': process.env.MESHWORK_POD_NAME ?? hostname() },
    warn: (message) => warnings.logger?.warn({ otel: message }, 'Tracing reported a problem'),
  });
  const log = createLogger({ level: config.logLevel, base: { role: 'gateway' }, tracing });
  warnings.logger = log;
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'Crashed on an uncaught exception');
    terminate(ExitCode.unexpected, `uncaught exception: ${err.message}`);
  });

  let keyPair: KeyPair | undefined;
  if (config.tlsDir !== undefined) {
    try {
      keyPair = readKeyPair(config.tlsDir);
    } catch (err) {
      terminate(
        ExitCode.configInvalid,
        `invalid configuration: MESHWORK_GATEWAY_TLS_DIR: cannot load tls.crt and tls.key from ${config.tlsDir}: ${(err as Error).message}`,
      );
    }
  }

  // The web UI (web.ts); a gateway without a built UI serves the API alone.
  const webDir = config.webDir ?? defaultWebDir;
  const web = await WebAssets.load(webDir, keyPair !== undefined);
  log.info({ webDir, files: web?.size ?? 0 }, web === undefined ? 'Serving no web UI: none is built there' : 'Loaded the web UI');

  const etcd = new Etcd3({ hosts: config.etcdEndpoints });
  const members = new MemberStates();
  const slots = new SlotWatch(etcd, log, (table) => {
    members.retain(new Set([...table.partitions.values()].flatMap((p) => p.members.map((m) => m.url))));
  });
  const limits = new Map<string, AdaptiveLimit>();
  const limitOf = (partition: string): AdaptiveLimit => {
    let limit = limits.get(partition);
    if (limit === undefined) {
      limit = new AdaptiveLimit(config.concurrency);
      limits.set(partition, limit);
    }
    return limit;
  };
  const httpMetrics = new DataplaneMetrics('gateway');
  const metrics = gatewayMetrics(httpMetrics, limits);
  // Ordinary requests and long polls have pools of their own: waiting polls never hold the
  // sockets that reads and writes need, and polls are not limited to the ordinary pool's size.
  const agents = {
    regular: new Agent({
      keepAlive: true,
      maxSockets: config.upstreamSockets,
      maxFreeSockets: config.upstreamSockets,
      timeout: upstreamIdleMs,
    }),
    longPoll: new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY, maxFreeSockets: 1024, timeout: upstreamIdleMs }),
  };
  const probeAgent = new Agent({ keepAlive: true, maxSockets: 2, timeout: upstreamIdleMs });
  const loopLag = new LoopLag();
  loopLag.start();
  const router = new GatewayRouter({
    loopLagMs: () => loopLag.meanMs,
    slots,
    members,
    limitOf,
    agents,
    upstreamTimeoutMs: config.upstreamTimeoutMs,
    proto: keyPair === undefined ? 'http' : 'https',
    logger: log,
    metrics,
    tracing,
  });

  // WebDAV at /dav (ADR 37, ADR 46): its own folder, calling the router above in process.
  const dav = mountDav({ serveApi: (req, res, pathname, search) => router.serve(req, res, pathname, search), etcd, logger: log });

  const eventLoop = new EventLoopMonitor({ limitMs: config.livenessMaxEventLoopDelayMs });
  eventLoop.start();
  const stores = new StoreReachability(
    [{ name: 'etcd', roundTrip: async () => void (await etcd.get('/mw/gateway-probe').exec()) }],
    storeProbe,
  );
  stores.start();
  const health = new ProcessHealth({
    eventLoop,
    stores,
    volumes: new VolumeChecks([], { hangLimitMs: 30_000 }),
    roleReadiness: () => [{ name: 'slot_map', ...slots.status() }],
  });

  const handle = (req: GatewayRequest, res: GatewayResponse): void => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const pathname = q === -1 ? url : url.slice(0, q);
    const search = q === -1 ? '' : url.slice(q + 1);
    const method = req.method ?? 'GET';
    // While draining, HTTP/1.1 clients are told to reconnect (to another gateway) after this answer.
    if (health.draining && !('stream' in res && res.stream !== undefined)) (res as ServerResponse).shouldKeepAlive = false;
    const run = (): void => {
      let served: Promise<void>;
      if (isOperationsPath(pathname)) served = answerOperations({ health, metrics: httpMetrics }, method, pathname, res);
      else if (pathname === '/v1/slots') {
        answerSlots(res, method, router.slotsAnswer());
        return;
      } else if (pathname.startsWith('/v1/') && loopLag.meanMs > shedLagMs) {
        // Refused before any work: the gateway's own loop is the bottleneck.
        metrics.shed('gateway');
        sendError(
          res,
          new ApiError('overloaded', `the gateway's event loop runs ${Math.round(loopLag.meanMs)} ms late; retry`, {
            details: { reason: 'event_loop_lag', retryAfterSeconds: 1 },
            headers: { 'Retry-After': '1' },
          }),
          true,
        );
        return;
      } else if (pathname.startsWith('/v1/')) served = router.serve(req, res, pathname, search);
      else if (isDavPath(pathname)) {
        observeRequest({ metrics, logger: log, tracing }, method, davRouteLabel, res);
        served = dav.serve(req, res);
      } else if (web !== undefined && isWebPath(pathname)) {
        web.serve(method, pathname, res);
        return;
      } else {
        sendError(res, new ApiError('not_found', `no route for ${method} ${pathname}`), true);
        return;
      }
      served.catch((err: unknown) => {
        log.error({ err, method, path: pathname }, 'Failed request with an unexpected error');
        sendError(res, new ApiError('internal', 'the gateway failed to serve the request'), true);
      });
    };
    const span = tracing.serveRequest(req as IncomingMessage, res as ServerResponse, run);
    // Named like the metrics' route label: never a raw path (it may hold a file name).
    const spanRoute = (): string =>
      pathname.startsWith('/v1/')
        ? routeLabel(pathname)
        : isDavPath(pathname)
          ? davRouteLabel
          : isOperationsPath(pathname)
            ? pathname
            : 'unmatched';
    if (span) res.once('close', () => span.end(spanRoute(), res.statusCode));
  };

  let server: Server | Http2SecureServer;
  const sessions = new Set<Http2Session>();
  if (keyPair === undefined) {
    server = createHttpServer(
      {
        requestTimeout: config.requestTimeoutMs,
        headersTimeout: config.headersTimeoutMs,
        keepAliveTimeout: keepAliveTimeoutMs,
        maxHeaderSize: config.maxHeaderBytes,
        // Node checks the two timeouts above this often (30 s by default).
        connectionsCheckingInterval: 1000,
      },
      handle,
    );
  } else {
    const secure = createSecureServer(
      {
        ...keyPair,
        allowHTTP1: true,
        settings: { maxHeaderListSize: config.maxHeaderBytes },
        // The HTTP/1.1 side of the secure server takes the plain server's limits and timeouts.
        maxHeaderSize: config.maxHeaderBytes,
        requestTimeout: config.requestTimeoutMs,
        headersTimeout: config.headersTimeoutMs,
        keepAliveTimeout: keepAliveTimeoutMs,
        connectionsCheckingInterval: 1000,
      } as Parameters<typeof createSecureServer>[0],
      (req: Http2ServerRequest, res) => handle(req, res),
    );
    secure.on('session', (session: Http2Session) => {
      sessions.add(session);
      session.once('close', () => sessions.delete(session));
      // An HTTP/2 session idle (no frame either way) for the keep-alive timeout is closed.
      session.setTimeout(keepAliveTimeoutMs, () => session.close());
    });
    secure.on('sessionError', (err) => log.debug({ err }, 'An HTTP/2 session failed'));
    server = secure;
  }
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => answerClientError(err, socket));
  server.on(
    'upgrade',
    gatewayRelayUpgrade((pathname, authorization) => router.relayMember(pathname, authorization), log),
  );
  const stopTls =
    keyPair === undefined || config.tlsDir === undefined
      ? () => undefined
      : watchKeyPair(config.tlsDir, keyPair, (pair) => (server as Http2SecureServer).setSecureContext(pair), log);

  await new Promise<void>((resolve) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      terminate(ExitCode.listenFailed, `cannot listen on ${config.listen.host}:${config.listen.port}: ${err.code ?? err.message}`);
    });
    server.listen(config.listen.port, config.listen.host, resolve);
  });
  log.info({ listen: `${config.listen.host}:${config.listen.port}`, tls: keyPair !== undefined }, 'Listening; reading the slot map');
  await slots.start();

  // Each member's /readyz, every probe interval: a member that is up but not ready (its stores
  // unreachable, its slots being re-acquired, draining) gets no requests.
  const probing = new Set<string>();
  const probe = (): void => {
    for (const partition of slots.table.partitions.values()) {
      for (const member of partition.members) {
        if (probing.has(member.url)) continue;
        probing.add(member.url);
        void probeReady(member.url, probeAgent, Math.max(probeTimeoutMs, config.probeIntervalMs))
          .then((result) => members.probed(member.url, result))
          .finally(() => probing.delete(member.url));
      }
    }
  };
  probe();
  const probeTimer = setInterval(probe, config.probeIntervalMs);
  log.info({ partitions: slots.table.partitions.size, coveredSlots: slots.table.coveredSlots }, 'Started gateway');

  drainOnSignal({
    graceSeconds: config.shutdownGraceSeconds,
    log,
    startDraining: () => health.startDraining(),
    drain: async (signal) => {
      log.info({ signal }, 'Started draining');
      // No new connections; idle kept-alive ones close now, busy ones after their answer.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      if ('closeIdleConnections' in server) server.closeIdleConnections();
      for (const session of sessions) session.close();
      await closed;
      clearInterval(probeTimer);
      await dav.close();
      stopTls();
      stores.stop();
      await slots.stop();
      await tracing.shutdown(1000);
      eventLoop.stop();
      loopLag.stop();
      etcd.close();
      log.info('Stopped gateway');
      process.exit(ExitCode.ok);
    },
  });
}

/** What the member at `base` answers to /readyz within `timeoutMs`. */
function probeReady(base: string, agent: Agent, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const req = httpGet(new URL(healthPaths.ready, base), { agent, timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200 ? 'ready' : 'not_ready');
    });
    req.on('timeout', () => {
      resolve('no_answer');
      req.destroy();
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED' ? 'refused' : 'no_answer'));
  });
}
