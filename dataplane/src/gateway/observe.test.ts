// observeRequest: the one `Served request` line and the RED metrics of a gateway request, for
// /v1 and /dav alike, with labels a client cannot multiply.
import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { DataplaneMetrics } from '../telemetry/metrics.ts';
import { noTracing } from '../telemetry/tracing.ts';
import { methodLabel, observeRequest, type GatewayResponse } from './gateway.ts';

/** A response as far as observeRequest reads it: its status, whether it finished, its 'close'. */
class FakeResponse extends EventEmitter {
  statusCode = 200;
  writableFinished = false;
  finish(status: number): void {
    this.statusCode = status;
    this.writableFinished = true;
    this.emit('close');
  }
}

function setUp(): {
  metrics: DataplaneMetrics;
  lines: Record<string, unknown>[];
  observe: (method: string | undefined, route: string) => FakeResponse;
} {
  const metrics = new DataplaneMetrics('gateway');
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const tracing = { ...noTracing, activeIds: () => ({ trace_id: '0af7651916cd43dd8448eb211c80319c' }) };
  return {
    metrics,
    lines,
    observe: (method, route) => {
      const res = new FakeResponse();
      observeRequest({ metrics: { http: metrics }, logger, tracing }, method, route, res as unknown as GatewayResponse);
      return res;
    },
  };
}

async function count(metrics: DataplaneMetrics, labels: Record<string, string>): Promise<number> {
  const { values } = await metrics.httpRequestDuration.get();
  const match = values.find(
    (v) =>
      v.metricName === 'meshwork_http_request_duration_seconds_count' &&
      Object.entries(labels).every(([k, x]) => (v.labels as Record<string, unknown>)[k] === x),
  );
  return match?.value ?? 0;
}

async function inFlight(metrics: DataplaneMetrics): Promise<number> {
  return (await metrics.httpRequestsInFlight.get()).values[0]?.value ?? 0;
}

describe('observeRequest', () => {
  it('counts a request in flight until its answer closes, then times it and logs one line', async () => {
    const { metrics, lines, observe } = setUp();
    const res = observe('PROPFIND', '/dav');
    expect(await inFlight(metrics)).toBe(1);
    expect(lines).toEqual([]);
    res.finish(207);
    expect(await inFlight(metrics)).toBe(0);
    expect(await count(metrics, { method: 'PROPFIND', route: '/dav', status: '207' })).toBe(1);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      msg: 'Served request',
      method: 'PROPFIND',
      route: '/dav',
      status: 207,
      trace_id: '0af7651916cd43dd8448eb211c80319c',
    });
    expect(typeof lines[0]!.ms).toBe('number');
  });

  it('records 499 for an answer the client did not wait for', async () => {
    const { metrics, lines, observe } = setUp();
    const res = observe('PUT', '/v1/objects/:id/entries');
    res.statusCode = 201;
    res.emit('close');
    expect(await count(metrics, { method: 'PUT', route: '/v1/objects/:id/entries', status: '499' })).toBe(1);
    expect(lines[0]).toMatchObject({ status: 499 });
  });

  it('writes the line at debug when told (a call WebDAV makes in process), and still counts it', async () => {
    const { metrics, lines, observe } = setUp();
    const res = new FakeResponse();
    observeRequest(
      {
        metrics: { http: metrics },
        logger: pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) }),
        tracing: noTracing,
      },
      'PUT',
      '/v1/objects/:id/entries',
      res as unknown as GatewayResponse,
      'debug',
    );
    res.finish(201);
    observe('PUT', '/dav').finish(201);
    expect(lines.map((l) => l.route)).toEqual(['/dav']);
    expect(await count(metrics, { method: 'PUT', route: '/v1/objects/:id/entries', status: '201' })).toBe(1);
  });

  it('labels a method neither the API nor WebDAV has as other, so a client cannot add labels', async () => {
    const { metrics, lines, observe } = setUp();
    observe('FROBNICATE-1234', '/dav').finish(405);
    observe(undefined, '/v1/me').finish(200);
    expect(await count(metrics, { method: 'other', route: '/dav', status: '405' })).toBe(1);
    expect(await count(metrics, { method: 'other', route: '/v1/me', status: '200' })).toBe(1);
    expect(lines.map((l) => l.method)).toEqual(['other', 'other']);
  });
});

describe('methodLabel', () => {
  it("keeps the API's and WebDAV's methods as sent", () => {
    for (const method of 'GET HEAD POST PUT PATCH DELETE OPTIONS PROPFIND PROPPATCH MKCOL COPY MOVE LOCK UNLOCK'.split(' '))
      expect(methodLabel(method)).toBe(method);
  });

  it('names anything else other, lower case included', () => {
    for (const method of ['get', 'propfind', 'TRACE', 'CONNECT', '', 'X'.repeat(100), undefined]) expect(methodLabel(method)).toBe('other');
  });
});
