import type { IncomingMessage, ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.ts';
import { logOnlyTracing, traceIdOf } from './tracing.ts';

const traceId = '0af7651916cd43dd8448eb211c80319c';

function request(headers: Record<string, string>): IncomingMessage {
  return { headers } as unknown as IncomingMessage;
}

describe('traceIdOf', () => {
  it.each([
    [`00-${traceId}-b7ad6b7169203331-01`, traceId],
    [`00-${traceId}-b7ad6b7169203331-00`, traceId],
    // A later version may append fields.
    [`01-${traceId}-b7ad6b7169203331-01-extra`, traceId],
  ])('reads %s', (header, expected) => {
    expect(traceIdOf(header)).toBe(expected);
  });

  it.each([
    [undefined],
    [''],
    ['garbage'],
    [`00-${traceId.toUpperCase()}-b7ad6b7169203331-01`],
    [`ff-${traceId}-b7ad6b7169203331-01`],
    [`00-${'0'.repeat(32)}-b7ad6b7169203331-01`],
    [`00-${traceId}-${'0'.repeat(16)}-01`],
    [`00-${traceId}-b7ad6b7169203331-01-extra`],
    [[`00-${traceId}-b7ad6b7169203331-01`, `00-${traceId}-b7ad6b7169203331-01`]],
  ])('refuses %j', (header) => {
    expect(traceIdOf(header)).toBeUndefined();
  });
});

describe('logOnlyTracing', () => {
  it("puts the caller's trace id on the log lines of the request, and on no others", () => {
    let text = '';
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        text += chunk.toString('utf8');
        done();
      },
    });
    const tracing = logOnlyTracing();
    expect(tracing.enabled).toBe(false);
    const logger = createLogger({ level: 'info', base: {}, tracing, destination });
    const res = {} as ServerResponse;
    const span = tracing.serveRequest(request({ traceparent: `00-${traceId}-b7ad6b7169203331-01` }), res, () => {
      logger.info('inside');
    });
    expect(span).toBeUndefined();
    tracing.serveRequest(request({ traceparent: 'not a traceparent' }), res, () => logger.info('malformed'));
    tracing.serveRequest(request({}), res, () => logger.info('untraced'));
    logger.info('outside');
    const lines = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => [l.msg, l.trace_id])).toEqual([
      ['inside', traceId],
      ['malformed', undefined],
      ['untraced', undefined],
      ['outside', undefined],
    ]);
    expect(lines[0]).not.toHaveProperty('span_id');
  });

  it('keeps the trace id across awaits inside the request', async () => {
    const tracing = logOnlyTracing();
    const seen = await new Promise<unknown>((resolve) => {
      tracing.serveRequest(request({ traceparent: `00-${traceId}-b7ad6b7169203331-01` }), {} as ServerResponse, () => {
        void (async () => {
          await new Promise((r) => setTimeout(r, 1));
          resolve(tracing.activeIds());
        })();
      });
    });
    expect(seen).toEqual({ trace_id: traceId });
  });
});
