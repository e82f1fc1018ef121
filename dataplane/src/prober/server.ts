// The prober role (`node meshwork.ts prober`): every interval it runs a user's journey through
// the gateway as the probe account (journey.ts) and exports each step's success and latency on
// /metrics, beside /livez and /readyz. It imports no other role: it sees Meshwork from outside,
// through @meshwork/client, as a user does.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { pino } from 'pino';
import { MeshworkClient } from '@meshwork/client';
import { ApiError, ConfigError, ExitCode, healthPaths } from '@meshwork/contract';
import { terminate } from '../termination.ts';
import { parseProberConfig, type ProberConfig } from './config.ts';
import { removeLeftovers, runJourney } from './journey.ts';
import { ProberMetrics } from './metrics.ts';

function loadConfig(): ProberConfig {
  try {
    return parseProberConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) terminate(ExitCode.configInvalid, err.message);
    throw err;
  }
}

function answer(res: ServerResponse, status: number, body: unknown, contentType = 'application/json; charset=utf-8'): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' }).end(text);
}

/** Runs the prober until SIGTERM. */
export async function runProber(): Promise<void> {
  const config = loadConfig();
  const log = pino({ level: config.logLevel, base: { role: 'prober' } });
  const metrics = new ProberMetrics();
  // One attempt per call: a failure is what the prober reports, not something to hide by retrying.
  const client = new MeshworkClient({ baseUrl: config.target, token: config.accountToken, retry: { maxAttempts: 1 } });
  let lastLoopAt = Date.now();
  let stopping = false;

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const err = new ApiError('method_not_allowed', 'the prober answers GET only');
      res.setHeader('allow', 'GET, HEAD');
      return answer(res, err.status, err.toJSON());
    }
    if (path === healthPaths.metrics) {
      metrics.registry.metrics().then(
        (text) => answer(res, 200, text, metrics.registry.contentType),
        (err: unknown) => answer(res, 500, new ApiError('internal', `metrics failed: ${String(err)}`).toJSON()),
      );
      return;
    }
    if (path === healthPaths.live) {
      // Live while the loop keeps turning: a journey never takes more than its steps' timeouts.
      const stalled = Date.now() - lastLoopAt > config.intervalMs + 6 * config.stepTimeoutMs;
      return answer(res, stalled ? 503 : 200, { status: stalled ? 'stalled' : 'ok' });
    }
    if (path === healthPaths.ready) return answer(res, stopping ? 503 : 200, { status: stopping ? 'draining' : 'ok' });
    const err = new ApiError('not_found', `no such path: ${path}`);
    answer(res, err.status, err.toJSON());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(err));
    server.listen(config.listen.port, config.listen.host, () => resolve());
  }).catch((err: unknown) =>
    terminate(ExitCode.listenFailed, `cannot listen on ${config.listen.host}:${config.listen.port}: ${String(err)}`),
  );
  log.info({ listen: config.listen, target: config.target, intervalMs: config.intervalMs }, 'Started the prober');

  const shutdown = (): void => {
    if (stopping) return;
    stopping = true;
    log.info('Stopping the prober');
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 5000).unref();
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);

  try {
    const removed = await removeLeftovers(client, AbortSignal.timeout(config.stepTimeoutMs));
    if (removed > 0) log.info({ removed }, 'Removed objects an earlier journey left behind');
  } catch (err) {
    log.warn({ err: String(err) }, "Could not list the probe account's objects to remove leftovers");
  }

  while (!stopping) {
    const started = Date.now();
    lastLoopAt = started;
    const ok = await runJourney(client, {
      fileBytes: config.fileBytes,
      stepTimeoutMs: config.stepTimeoutMs,
      report: (result) => {
        metrics.step(result);
        if (!result.ok) log.warn({ step: result.step, seconds: result.seconds, error: result.error }, 'Failed a probe step');
      },
    });
    metrics.journey(ok, Date.now());
    log.debug({ ok, ms: Date.now() - started }, 'Ran a probe journey');
    lastLoopAt = Date.now();
    const wait = Math.max(0, config.intervalMs - (Date.now() - started));
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}
