// The Node entry's transport against a plain node:http server that misbehaves on purpose: a
// body cut short, a slow body, a body read both ways. (The real partition is exercised in
// client.int.test.ts.)
import { createServer, Agent, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshworkClient, NetworkError, RequestAbortedError } from './index.ts';
import { downloadToStream, nodeHttpFetch } from './node.ts';

const body = Buffer.alloc(3 * 1024 * 1024 + 17, 0x5a);
let server: Server;
let agent: Agent;
let client: MeshworkClient;

/** The Range and If-Range headers of every request, by path. */
const seen: { path: string; range: string | undefined; ifRange: string | undefined }[] = [];

/** Serves at most `cap` bytes of what was asked (honouring Range while If-Range matches `etag`), then drops the connection. */
function serveFlaky(req: IncomingMessage, res: ServerResponse, etag: string, cap: number): void {
  res.setHeader('content-type', 'application/octet-stream');
  res.setHeader('etag', etag);
  const match = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const honoured = match !== null && req.headers['if-range'] === etag;
  const start = honoured ? Number(match[1]) : 0;
  const part = body.subarray(start);
  if (honoured) {
    res.statusCode = 206;
    res.setHeader('content-range', `bytes ${start}-${body.length - 1}/${body.length}`);
  }
  res.setHeader('content-length', String(part.length));
  if (part.length <= cap) {
    res.end(part);
    return;
  }
  res.write(part.subarray(0, cap), () => res.destroy());
}

function serve(req: IncomingMessage, res: ServerResponse, path: string): void {
  seen.push({ path, range: req.headers.range, ifRange: req.headers['if-range'] as string | undefined });
  if (path.endsWith('/flaky')) return serveFlaky(req, res, '"c"', 1024 * 1024);
  // Cut short once; then the file has changed (another ETag), so If-Range gets the whole file.
  if (path.endsWith('/changed')) return serveFlaky(req, res, seen.filter((s) => s.path === path).length > 1 ? '"d"' : '"c"', 1024 * 1024);
  res.setHeader('content-type', 'application/octet-stream');
  res.setHeader('etag', '"c"');
  res.setHeader('content-length', String(body.length));
  if (path.endsWith('/cut')) {
    // Half the promised bytes, then the connection goes.
    res.write(body.subarray(0, body.length / 2), () => res.destroy());
    return;
  }
  if (path.endsWith('/slow')) {
    res.write(body.subarray(0, 64 * 1024));
    return; // never ends: the caller aborts
  }
  res.end(body);
}

beforeAll(async () => {
  server = createServer((req, res) => serve(req, res, req.url ?? ''));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  agent = new Agent({ keepAlive: true });
  client = new MeshworkClient({
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    token: 'mwd.t',
    fetch: nodeHttpFetch(agent),
    retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1, jitter: 0 },
  });
});

afterAll(async () => {
  agent.destroy();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function collector(): { sink: Writable; bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk);
      done();
    },
  });
  return { sink, bytes: () => Buffer.concat(chunks) };
}

describe('downloads over nodeHttpFetch', () => {
  it('pipes a whole body into a Node stream and ends it', async () => {
    const { sink, bytes } = collector();
    const ended = new Promise((resolve) => sink.once('finish', resolve));
    const got = await downloadToStream(client, 'o', 'whole', sink);
    await ended;
    expect(got).toEqual({ bytes: body.length, etag: '"c"', status: 200 });
    expect(bytes().equals(body)).toBe(true);
  });

  it('reads the same body as a WHATWG stream', async () => {
    const chunks: Uint8Array[] = [];
    const got = await client.download('o', 'whole', new WritableStream({ write: (c) => void chunks.push(c) }));
    expect(got.bytes).toBe(body.length);
    expect(Buffer.concat(chunks).equals(body)).toBe(true);
  });

  it('raises NetworkError for a body cut short, both ways', async () => {
    await expect(downloadToStream(client, 'o', 'cut', new PassThrough().resume(), { resumes: 0 })).rejects.toBeInstanceOf(NetworkError);
    await expect(client.download('o', 'cut', new WritableStream())).rejects.toBeInstanceOf(NetworkError);
  });

  it('raises RequestAbortedError when aborted mid-body', async () => {
    const controller = new AbortController();
    const sink = new Writable({
      write(_chunk, _encoding, done) {
        controller.abort(new Error('enough'));
        done();
      },
    });
    await expect(downloadToStream(client, 'o', 'slow', sink, { signal: controller.signal })).rejects.toBeInstanceOf(RequestAbortedError);
  });

  it('takes a download cut short up again where it stopped, with Range and If-Range, until it is whole', async () => {
    const { sink, bytes } = collector();
    const got = await downloadToStream(client, 'o', 'flaky', sink);
    expect(got).toEqual({ bytes: body.length, etag: '"c"', status: 200 });
    expect(bytes().equals(body)).toBe(true);
    const asked = seen.filter((s) => s.path.endsWith('/flaky'));
    const MiB = 1024 * 1024;
    expect(asked.map((s) => s.range)).toEqual([undefined, `bytes=${MiB}-`, `bytes=${2 * MiB}-`, `bytes=${3 * MiB}-`]);
    expect(asked.slice(1).every((s) => s.ifRange === '"c"')).toBe(true);
  });

  it('gives up after `resumes` attempts, and never splices a file that changed meanwhile', async () => {
    await expect(downloadToStream(client, 'o', 'flaky', new PassThrough().resume(), { resumes: 2 })).rejects.toBeInstanceOf(NetworkError);
    const sink = new PassThrough().resume();
    const failed = downloadToStream(client, 'o', 'changed', sink);
    await expect(failed).rejects.toThrow(/the file changed before it could be taken up again/);
    expect(sink.destroyed).toBe(true);
  });
});

describe('redirects over nodeHttpFetch', () => {
  // Two origins (two ports): `from` redirects as its query says, `to` echoes what arrived.
  let from: Server;
  let to: Server;
  let fromUrl: string;
  let toUrl: string;
  const redirectAgent = new Agent({ keepAlive: true });
  const fetchNode = nodeHttpFetch(redirectAgent);

  beforeAll(async () => {
    to = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() }));
      });
    });
    from = createServer((req, res) => {
      req.resume();
      const url = new URL(req.url ?? '/', 'http://x');
      const status = Number(url.searchParams.get('status') ?? '307');
      const target = url.searchParams.get('to') ?? 'other';
      const location =
        target === 'self'
          ? '/echo'
          : target === 'loop'
            ? `/r?status=${status}&to=loop`
            : target === 'ftp'
              ? 'ftp://127.0.0.1/x'
              : `${toUrl}/echo`;
      if (url.pathname === '/echo') {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: '' }));
        return;
      }
      res.writeHead(status, { location }).end();
    });
    await Promise.all([new Promise<void>((r) => from.listen(0, '127.0.0.1', r)), new Promise<void>((r) => to.listen(0, '127.0.0.1', r))]);
    fromUrl = `http://127.0.0.1:${(from.address() as AddressInfo).port}`;
    toUrl = `http://127.0.0.1:${(to.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    redirectAgent.destroy();
    await Promise.all([new Promise((r) => from.close(r)), new Promise((r) => to.close(r))]);
  });

  interface Echo {
    method: string;
    url: string;
    headers: Record<string, string>;
    body: string;
  }

  it('follows a 307 to another origin without the credentials, keeping the method and other headers', async () => {
    const res = await fetchNode(`${fromUrl}/r?status=307`, {
      headers: { authorization: 'Bearer secret', cookie: 'session=1', 'x-keep': 'yes' },
    });
    expect(res.status).toBe(200);
    const echo = (await res.json()) as Echo;
    expect(echo.method).toBe('GET');
    expect(echo.headers.authorization).toBeUndefined();
    expect(echo.headers.cookie).toBeUndefined();
    expect(echo.headers['x-keep']).toBe('yes');
  });

  it('keeps the credentials on a redirect within the same origin', async () => {
    const echo = (await (
      await fetchNode(`${fromUrl}/r?status=302&to=self`, { headers: { authorization: 'Bearer secret' } })
    ).json()) as Echo;
    expect(echo.url).toBe('/echo');
    expect(echo.headers.authorization).toBe('Bearer secret');
  });

  it('turns a POST into a GET without body on 303, and repeats its bytes on 308', async () => {
    const after303 = (await (await fetchNode(`${fromUrl}/r?status=303`, { method: 'POST', body: 'payload' })).json()) as Echo;
    expect(after303.method).toBe('GET');
    expect(after303.body).toBe('');
    expect(after303.headers['content-length']).toBeUndefined();
    const after308 = (await (await fetchNode(`${fromUrl}/r?status=308`, { method: 'PUT', body: 'payload' })).json()) as Echo;
    expect(after308.method).toBe('PUT');
    expect(after308.body).toBe('payload');
  });

  it('answers the redirect itself when asked to, or when the body was a stream it cannot send again', async () => {
    const manual = await fetchNode(`${fromUrl}/r?status=307`, { redirect: 'manual' });
    expect(manual.status).toBe(307);
    expect(manual.headers.get('location')).toBe(`${toUrl}/echo`);
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode('streamed'));
        c.close();
      },
    });
    const streamed = await fetchNode(`${fromUrl}/r?status=307`, { method: 'PUT', body: stream, duplex: 'half' });
    expect(streamed.status).toBe(307);
    await expect(fetchNode(`${fromUrl}/r?status=307`, { redirect: 'error' })).rejects.toThrow(TypeError);
  });

  it('refuses a redirect loop and a redirect to a scheme other than http(s)', async () => {
    await expect(fetchNode(`${fromUrl}/r?status=302&to=loop`)).rejects.toThrow(/more than 20 redirects/);
    await expect(fetchNode(`${fromUrl}/r?status=302&to=ftp`)).rejects.toThrow(/ftp:/);
  });
});
