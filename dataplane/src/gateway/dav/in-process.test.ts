import type { IncomingMessage, ServerResponse } from 'node:http';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { isInProcessCall } from '../gateway.ts';
import { inProcessFetch, type ServeApi } from './in-process.ts';

const logger = pino({ level: 'silent' });

async function bodyOf(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

// A router stand-in that echoes what it was handed.
const echo: ServeApi = async (req, res, pathname, search) => {
  const body = await bodyOf(req as IncomingMessage);
  const answer = JSON.stringify({
    method: req.method,
    url: req.url,
    pathname,
    search,
    authorization: req.headers.authorization,
    length: req.headers['content-length'] ?? null,
    chunked: req.headers['transfer-encoding'] ?? null,
    body,
  });
  (res as ServerResponse).writeHead(201, { 'content-type': 'application/json', 'x-answer': ['a', 'b'] });
  res.end(answer);
};

describe('inProcessFetch', () => {
  it('marks what it hands the router as a call made in process, which a client request is not', async () => {
    let marked: boolean | undefined;
    const fetch = inProcessFetch((req, res) => {
      marked = isInProcessCall(req);
      res.end();
      return Promise.resolve();
    }, logger);
    await (await fetch('http://gateway.internal/v1/me')).arrayBuffer();
    expect(marked).toBe(true);
    expect(isInProcessCall({ method: 'GET', url: '/v1/me', headers: {}, socket: { remoteAddress: '127.0.0.1' } })).toBe(false);
  });

  it('hands method, path, query, headers and a byte body to the router and answers its head and body', async () => {
    const fetch = inProcessFetch(echo, logger);
    const res = await fetch('http://gateway.internal/v1/objects/o1/entries/a%20b?limit=5', {
      method: 'PUT',
      headers: { authorization: 'Bearer t' },
      body: new TextEncoder().encode('hello'),
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('x-answer')).toBe('a, b');
    expect(await res.json()).toEqual({
      method: 'PUT',
      url: '/v1/objects/o1/entries/a%20b?limit=5',
      pathname: '/v1/objects/o1/entries/a%20b',
      search: 'limit=5',
      authorization: 'Bearer t',
      length: '5',
      chunked: null,
      body: 'hello',
    });
  });

  it('streams a ReadableStream body', async () => {
    const fetch = inProcessFetch(echo, logger);
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('one '));
        controller.enqueue(new TextEncoder().encode('two'));
        controller.close();
      },
    });
    const res = await fetch('http://gateway.internal/v1/blocks/x', { method: 'PUT', body, duplex: 'half' });
    expect(await res.json()).toMatchObject({ body: 'one two', chunked: 'chunked', length: null });
  });

  it('answers 204 and HEAD without a body', async () => {
    const fetch = inProcessFetch((req, res) => {
      (res as ServerResponse).writeHead(req.method === 'HEAD' ? 200 : 204, { etag: '"1"' });
      res.end();
      return Promise.resolve();
    }, logger);
    const deleted = await fetch('http://gateway.internal/v1/x', { method: 'DELETE' });
    expect([deleted.status, deleted.body, deleted.headers.get('etag')]).toEqual([204, null, '"1"']);
    const head = await fetch('http://gateway.internal/v1/x', { method: 'HEAD' });
    expect([head.status, head.body]).toEqual([200, null]);
  });

  it('answers the catalogue 404 outside /v1/ and the internal error when the router throws', async () => {
    const fetch = inProcessFetch(() => Promise.reject(new Error('boom')), logger);
    const outside = await fetch('http://gateway.internal/dav/x');
    expect(outside.status).toBe(404);
    expect(await outside.json()).toMatchObject({ error: { code: 'not_found' } });
    const failed = await fetch('http://gateway.internal/v1/x');
    expect(failed.status).toBe(500);
    expect(await failed.json()).toMatchObject({ error: { code: 'internal' } });
  });

  it('rejects with the signal reason when aborted before the head, and tells the router the caller left', async () => {
    let closed = false;
    const fetch = inProcessFetch(async (_req, res) => {
      await new Promise<void>((resolve) => res.once('close', resolve));
      closed = true;
    }, logger);
    const controller = new AbortController();
    const pending = fetch('http://gateway.internal/v1/slow', { signal: controller.signal });
    const reason = new Error('gave up');
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    await expect.poll(() => closed).toBe(true);
  });

  it('closes the response when the request body fails, and rejects the call', async () => {
    let closed = false;
    const fetch = inProcessFetch(async (req, res) => {
      res.once('close', () => (closed = true));
      await bodyOf(req as IncomingMessage).catch(() => undefined);
    }, logger);
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.error(new Error('the upload broke off'));
      },
    });
    await expect(fetch('http://gateway.internal/v1/blocks/x', { method: 'PUT', body, duplex: 'half' })).rejects.toThrow();
    expect(closed).toBe(true);
  });

  it('holds back a long answer until it is read', async () => {
    const chunk = Buffer.alloc(64 * 1024, 1);
    let written = 0;
    let finished = false;
    const fetch = inProcessFetch(async (_req, gatewayRes) => {
      const res = gatewayRes as ServerResponse;
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      for (let i = 0; i < 64; i++) {
        written++;
        if (!res.write(chunk)) await new Promise((resolve) => res.once('drain', resolve));
      }
      res.end(() => (finished = true));
    }, logger);
    const res = await fetch('http://gateway.internal/v1/big');
    // Unread, the 4 MiB answer stops at about the 256 KiB the stream holds plus the writer's buffer.
    await expect.poll(() => written).toBeGreaterThan(2);
    expect(written).toBeLessThan(16);
    expect(finished).toBe(false);
    expect((await res.arrayBuffer()).byteLength).toBe(64 * chunk.length);
    await expect.poll(() => finished).toBe(true);
  });
});
