import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.ts';
import { noTracing, type Tracing } from './tracing.ts';

/** Collects the JSON lines a logger writes. */
function capture(): { stream: Writable; lines: () => Record<string, unknown>[]; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString('utf8');
      done();
    },
  });
  return {
    stream,
    text: () => text,
    lines: () =>
      text
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

const tracingWithSpan: Tracing = {
  ...noTracing,
  enabled: true,
  activeIds: () => ({ trace_id: '0af7651916cd43dd8448eb211c80319c', span_id: 'b7ad6b7169203331' }),
};

describe('createLogger', () => {
  it('adds the active trace and span ids to every line', () => {
    const out = capture();
    const logger = createLogger({ level: 'info', base: { role: 'partition' }, tracing: tracingWithSpan, destination: out.stream });
    logger.info({ route: '/v1/me' }, 'Served request');
    expect(out.lines()[0]).toMatchObject({
      role: 'partition',
      route: '/v1/me',
      trace_id: '0af7651916cd43dd8448eb211c80319c',
      span_id: 'b7ad6b7169203331',
      msg: 'Served request',
    });
  });

  it('adds no ids without tracing', () => {
    const out = capture();
    createLogger({ level: 'info', base: {}, tracing: noTracing, destination: out.stream }).info('Started partition');
    expect(out.lines()[0]).not.toHaveProperty('trace_id');
  });

  it.each([
    [{ authorization: 'Bearer mwd.secret-one' }],
    [{ req: { headers: { authorization: 'Bearer mwd.secret-one', cookie: 'session=secret-one' } } }],
    [{ headers: { authorization: 'Bearer mwd.secret-one' } }],
    [{ token: 'mwu.secret-one' }],
    [{ user: { id: 'u1', token: 'mwu.secret-one' } }],
    [{ config: { adminToken: 'secret-one', s3: { accessKey: 'secret-one', secretKey: 'secret-one' } } }],
  ])('redacts credentials in %j', (fields) => {
    const out = capture();
    createLogger({ level: 'info', base: {}, tracing: noTracing, destination: out.stream }).info(fields, 'Logged something');
    expect(out.text()).not.toContain('secret-one');
    expect(out.text()).toContain('[redacted]');
  });
});
