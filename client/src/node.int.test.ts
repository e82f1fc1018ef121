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
