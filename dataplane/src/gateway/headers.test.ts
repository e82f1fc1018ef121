// What the gateway forwards of a request's and an answer's headers.
import { describe, expect, it } from 'vitest';
import { downstreamResponseHeaders, upstreamRequestHeaders } from './headers.ts';

describe('upstreamRequestHeaders', () => {
  it('keeps end-to-end headers and drops hop-by-hop ones, those named by Connection and pseudo-headers', () => {
    const out = upstreamRequestHeaders(
      {
        ':method': 'GET',
        ':authority': 'mesh.example',
        host: 'mesh.example',
        connection: 'keep-alive, X-Private',
        'x-private': '1',
        'keep-alive': 'timeout=5',
        te: 'trailers',
        'transfer-encoding': 'chunked',
        upgrade: 'h2c',
        'proxy-authorization': 'secret',
        authorization: 'Bearer t',
        traceparent: '00-aa-bb-01',
        'content-length': '5',
      },
      { address: '198.51.100.9', proto: 'https', host: 'mesh.example' },
    );
    expect(out).toEqual({
      authorization: 'Bearer t',
      traceparent: '00-aa-bb-01',
      'content-length': '5',
      'x-forwarded-for': '198.51.100.9',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'mesh.example',
    });
  });

  it.each([
    [undefined, '198.51.100.9', '198.51.100.9'],
    ['203.0.113.1', '198.51.100.9', '203.0.113.1, 198.51.100.9'],
    ['203.0.113.1', undefined, '203.0.113.1'],
  ])('appends the client to X-Forwarded-For %s', (prior, address, expected) => {
    const headers = prior === undefined ? {} : { 'x-forwarded-for': prior };
    expect(upstreamRequestHeaders(headers, { address, proto: 'http', host: undefined })['x-forwarded-for']).toBe(expected);
  });

  it("replaces a client's X-Forwarded-Proto and -Host with what the gateway saw", () => {
    const out = upstreamRequestHeaders(
      { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil' },
      { address: undefined, proto: 'http', host: 'h' },
    );
    expect(out['x-forwarded-proto']).toBe('http');
    expect(out['x-forwarded-host']).toBe('h');
  });
});

describe('downstreamResponseHeaders', () => {
  it('drops hop-by-hop headers of the answer', () => {
    expect(
      downstreamResponseHeaders({
        connection: 'close, x-hop',
        'x-hop': '1',
        'keep-alive': 'timeout=5',
        'transfer-encoding': 'chunked',
        etag: '"v1"',
        'retry-after': '1',
      }),
    ).toEqual({ etag: '"v1"', 'retry-after': '1' });
  });
});
