// The client's exchange without a network: an injected `fetch` answers from a script and an
// injected sleep records the waits, so the retry loop, its limits, what is never repeated and
// abort are checked exactly. The real server is exercised in client.int.test.ts.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ApiError } from '@meshwork/contract';
import { MeshworkClient, requestSpanName, wholeUnaskedBytes, type ClientOptions, type ClientTracing } from './client.ts';
import { NetworkError, RequestAbortedError, UnexpectedAnswerError } from './errors.ts';

type Scripted = Response | Error;

function scripted(answers: Scripted[], options: Partial<ClientOptions> = {}) {
  const requests: { url: string; method: string; headers: Record<string, string> }[] = [];
  const waits: number[] = [];
  const client = new MeshworkClient({
    baseUrl: 'http://api.test/',
    token: 'mwd.t',
    fetch: (input, init) => {
      const headers: Record<string, string> = { ...(init?.headers as Record<string, string>) };
      requests.push({ url: input as string, method: init?.method ?? 'GET', headers });
      const next = answers.shift();
      if (next === undefined) throw new Error('no scripted answer left');
      return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
    },
    sleep: (ms) => {
      waits.push(ms);
      return Promise.resolve();
    },
    random: () => 0,
    retry: { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 5000, jitter: 0.5 },
    ...options,
  });
  return { client, requests, waits };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}): Response =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
const limited = (seconds: string): Response =>
  json(429, { error: { code: 'rate_limited', message: 'slow down', reason: 'device_rate' } }, { 'retry-after': seconds });

describe('MeshworkClient exchange', () => {
  it('sends the bearer token and encodes each path segment', async () => {
    const { client, requests } = scripted([json(200, { path: 'a b/c?', version: '1' }, { etag: '"1"' })]);
    const answer = await client.getEntry('o/1', 'a b/c?');
    expect(answer.notModified).toBe(false);
    expect(requests[0]!.url).toBe('http://api.test/v1/objects/o%2F1/entries/a%20b/c%3F');
    expect(requests[0]!.headers.authorization).toBe('Bearer mwd.t');
  });

  it('repeats a GET after Retry-After and answers the success', async () => {
    const { client, requests, waits } = scripted([limited('2'), limited('1'), json(200, { objects: [] })]);
    expect(await client.listObjects()).toEqual([]);
    expect(requests).toHaveLength(3);
    expect(waits).toEqual([2000, 1000]);
  });

  it('raises the last answer once the attempts are spent', async () => {
    const { client, requests } = scripted([limited('1'), limited('1'), limited('1')]);
    const err = await client.me().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe('rate_limited');
    expect((err as ApiError).details.reason).toBe('device_rate');
    expect((err as ApiError).headers['retry-after']).toBe('1');
    expect(requests).toHaveLength(3);
  });

  it('never repeats an unconditional write', async () => {
    const { client, requests } = scripted([limited('1')]);
    await expect(client.createObject({ name: 'x' })).rejects.toBeInstanceOf(ApiError);
    expect(requests).toHaveLength(1);
  });

  it('repeats a conditional write and a block upload', async () => {
    const entry = { path: 'f', version: '9' };
    const { client, requests } = scripted([limited('0'), json(201, entry), limited('0'), json(201, { sha256: 'ab', size: 1 })]);
    const commit = await client.putEntry('o1', 'f', { kind: 'directory' }, { ifNoneMatch: '*' });
    expect(commit.created).toBe(true);
    expect(requests[1]!.headers['if-none-match']).toBe('*');
    await client.putBlock(new Uint8Array([1]), { sha256: 'ab' });
    expect(requests).toHaveLength(4);
  });

  it('does not repeat answers that are not retryable', async () => {
    const { client, requests } = scripted([json(421, { error: { code: 'misdirected', message: 'elsewhere', owner: null } })]);
    const err = await client.getObject('o1').catch((e: unknown) => e);
    expect((err as ApiError).code).toBe('misdirected');
    expect((err as ApiError).details.owner).toBeNull();
    expect(requests).toHaveLength(1);
  });

  it('raises a Retry-After longer than the policy accepts at once', async () => {
    const { client, requests } = scripted([limited('60')]);
    await expect(client.me()).rejects.toBeInstanceOf(ApiError);
    expect(requests).toHaveLength(1);
  });

  it('turns a transport failure into NetworkError, and repeats it when safe', async () => {
    const reset = new TypeError('fetch failed', { cause: new Error('ECONNRESET') });
    const { client, requests, waits } = scripted([reset, json(200, { id: 'u', name: 'n', createdAt: 'x', deviceId: null })]);
    expect((await client.me()).id).toBe('u');
    expect(requests).toHaveLength(2);
    expect(waits).toEqual([50]);
    const once = scripted([reset]);
    const err = await once.client.createUser('n').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetworkError);
    expect((err as NetworkError).cause).toBe(reset);
  });

  it('raises UnexpectedAnswerError for a non-JSON error answer', async () => {
    const { client } = scripted([new Response('Bad Gateway', { status: 502 })]);
    const err = await client.me().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnexpectedAnswerError);
    expect((err as UnexpectedAnswerError).status).toBe(502);
  });

  it('stops waiting to retry when aborted', async () => {
    const controller = new AbortController();
    const { client } = scripted([limited('1')], {
      sleep: () => {
        controller.abort(new Error('user left'));
        return Promise.reject(new Error('sleep aborted'));
      },
    });
    await expect(client.me({ signal: controller.signal })).rejects.toBeInstanceOf(RequestAbortedError);
  });

  it('raises RequestAbortedError for a signal already aborted, without sending', async () => {
    const { client, requests } = scripted([]);
    await expect(client.me({ signal: AbortSignal.abort() })).rejects.toBeInstanceOf(RequestAbortedError);
    expect(requests).toHaveLength(0);
  });

  it('answers 304 as notModified and health 503 as an unhealthy report', async () => {
    const { client } = scripted([
      new Response(null, { status: 304, headers: { etag: '"7"' } }),
      json(503, { status: 'not_ready', checks: [{ name: 'etcd', ok: false }], error: { code: 'not_ready', message: 'etcd' } }),
    ]);
    expect(await client.getEntry('o', 'p', { ifNoneMatch: '7' })).toEqual({ notModified: true, etag: '"7"' });
    const ready = await client.readyz();
    expect(ready.healthy).toBe(false);
    expect(ready.body.checks?.[0]?.ok).toBe(false);
  });

  it('follows next pages and answers the final cursor', async () => {
    const { client, requests } = scripted([
      json(200, { entries: [{ path: 'a' }], cursor: '5', next: 'p2' }),
      json(200, { entries: [{ path: 'b' }], cursor: '5', next: null }),
    ]);
    const all = await client.listAllEntries('o', { limit: 1 });
    expect(all.entries.map((e) => e.path)).toEqual(['a', 'b']);
    expect(all.cursor).toBe('5');
    expect(requests.map((r) => r.url)).toEqual([
      'http://api.test/v1/objects/o/entries?limit=1',
      'http://api.test/v1/objects/o/entries?limit=1&page=p2',
    ]);
  });

  it('as(token) keeps the transport and changes the identity', async () => {
    const { client, requests } = scripted([json(200, { objects: [] })]);
    await client.as('mwu.other').listObjects();
    expect(requests[0]!.headers.authorization).toBe('Bearer mwu.other');
  });
});

describe('device and token routes', () => {
  const unavailable = (): Response => json(503, { error: { code: 'store_unavailable', message: 'etcd is away' } }, { 'retry-after': '1' });

  it('lists devices, deletes one by its encoded id, and answers a rotated token', async () => {
    const device = { id: 'dA', name: 'laptop', createdAt: '2026-01-01T00:00:00.000Z', online: false, current: true };
    const rotated = { id: 'uA', token: 'mwu.uA.new' };
    const { client, requests } = scripted([json(200, { devices: [device] }), new Response(null, { status: 204 }), json(200, rotated)]);
    expect(await client.listDevices()).toEqual([device]);
    await client.deleteDevice('d/1');
    expect(await client.rotateAccountToken()).toEqual(rotated);
    expect(requests.map((r) => `${r.method} ${r.url}`)).toEqual([
      'GET http://api.test/v1/devices',
      'DELETE http://api.test/v1/devices/d%2F1',
      'POST http://api.test/v1/me/token',
    ]);
  });

  it.each<[string, (client: MeshworkClient) => Promise<unknown>]>([
    ['a rotation (a repeat would revoke the token it answered)', (client) => client.rotateAccountToken()],
    ['a device delete (a repeat would answer 404)', (client) => client.deleteDevice('dA')],
  ])('never repeats %s', async (_what, call) => {
    const { client, requests } = scripted([unavailable(), json(200, {})]);
    const err = await call(client).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe('store_unavailable');
    expect(requests).toHaveLength(1);
  });
});

describe('MeshworkClient upload pipeline', () => {
  // A service that answers every block missing and holds each block PUT until the test lets it go.
  function slowService(failPut?: number) {
    let puts = 0;
    let running = 0;
    let maxRunning = 0;
    let done = 0;
    const releases: (() => void)[] = [];
    const log: string[] = [];
    const client = new MeshworkClient({
      baseUrl: 'http://api.test/',
      token: 'mwd.t',
      fetch: async (input, init) => {
        const url = input as string;
        const method = init?.method ?? 'GET';
        if (url.endsWith('/v1/blocks/missing')) {
          const { blocks } = JSON.parse(init?.body as string) as { blocks: string[] };
          log.push(`missing ${blocks.length} while ${running} PUTs run`);
          return json(200, { missing: blocks });
        }
        if (method === 'PUT' && url.includes('/v1/blocks/')) {
          const n = ++puts;
          running++;
          maxRunning = Math.max(maxRunning, running);
          await new Promise<void>((resolve) => releases.push(resolve));
          running--;
          done++;
          if (n === failPut) return json(503, { error: { code: 'store_unavailable', message: 'S3 is down' } });
          return json(201, { sha256: url.slice(-64), size: 1 });
        }
        log.push(`${method} entry`);
        return json(201, { path: 'f', version: '9', kind: 'file' }, { etag: '"9"' });
      },
      retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1, jitter: 0 },
    });
    // Lets a PUT go only while `full` PUTs run (or the source is read to its end): a client that
    // waits for a whole batch before reading on stalls here, until a bounded number of idle turns.
    const pump = async (stop: () => boolean, full: number, sourceDone: () => boolean): Promise<void> => {
      let idle = 0;
      while (!stop()) {
        if (releases.length > 0 && (running >= full || sourceDone() || idle > 20_000)) {
          releases.shift()!();
          idle = 0;
        } else idle++;
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    return { client, log, pump, stats: () => ({ puts, maxRunning, done }) };
  }

  it('keeps `parallelism` PUTs running, asks about the next batch meanwhile, and holds at most 2 × parallelism blocks', async () => {
    const service = slowService();
    let read = 0;
    let maxAhead = 0;
    function* source(): Generator<Uint8Array> {
      for (let i = 0; i < 20; i++) {
        read++;
        maxAhead = Math.max(maxAhead, read - service.stats().done);
        yield new Uint8Array([i]);
      }
    }
    let finished = false;
    const upload = client_upload(service.client, source()).finally(() => (finished = true));
    await service.pump(
      () => finished,
      3,
      () => read === 20,
    );
    const result = await upload;
    expect(result.uploadedBlocks).toBe(20);
    expect(service.stats().maxRunning).toBe(3);
    expect(maxAhead).toBeLessThanOrEqual(2 * 3);
    // Batches after the first are asked about while earlier blocks are still being PUT.
    expect(service.log.filter((l) => /^missing 3 while [1-9]/.test(l)).length).toBeGreaterThan(0);
    expect(service.log.at(-1)).toBe('PUT entry');
  });

  it('fails on a failed PUT without committing', async () => {
    const service = slowService(4);
    function* source(): Generator<Uint8Array> {
      for (let i = 0; i < 20; i++) yield new Uint8Array([i]);
    }
    let finished = false;
    const upload = client_upload(service.client, source()).finally(() => (finished = true));
    const pumping = service.pump(
      () => finished,
      1,
      () => true,
    );
    const err = await upload.catch((e: unknown) => e);
    await pumping;
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe('store_unavailable');
    expect(service.log).not.toContain('PUT entry');
  });
});

describe('MeshworkClient upload releases', () => {
  it('releases every block once, when its PUT is answered or the service has it already, never while a PUT still holds it', async () => {
    const present = new Set<string>();
    // The bytes each PUT in flight holds: a repeated block's other copy is not held by its PUT.
    const inFlight = new Set<unknown>();
    const released: number[] = [];
    const client = new MeshworkClient({
      baseUrl: 'http://api.test/',
      token: 'mwd.t',
      fetch: async (input, init) => {
        const url = input as string;
        if (url.endsWith('/v1/blocks/missing')) {
          const { blocks } = JSON.parse(init?.body as string) as { blocks: string[] };
          return json(200, { missing: blocks.filter((b) => !present.has(b)) });
        }
        if (init?.method === 'PUT' && url.includes('/v1/blocks/')) {
          const sha = url.slice(-64);
          inFlight.add(init.body);
          await new Promise((resolve) => setImmediate(resolve));
          inFlight.delete(init.body);
          return json(201, { sha256: sha, size: 1 });
        }
        return json(201, { path: 'f', version: '9', kind: 'file' }, { etag: '"9"' });
      },
    });
    // Blocks 0..9, block 3 twice, and blocks 5 and 6 known to the service already.
    const values = [0, 1, 2, 3, 3, 4, 5, 6, 7, 8, 9];
    for (const v of [5, 6])
      present.add(
        createHash('sha256')
          .update(new Uint8Array([v]))
          .digest('hex'),
      );
    const blocks = values.map((v) => new Uint8Array([v]));
    await client.upload(
      'o',
      'f',
      blocks,
      { ifNoneMatch: '*' },
      {
        blockSize: 1,
        parallelism: 2,
        onBlockReleased: (data) => {
          // The client swallows a listener's throw: record the breach instead.
          released.push(inFlight.has(data) ? -1 : blocks.findIndex((b) => b.buffer === data.buffer));
        },
      },
    );
    expect(released.sort((a, b) => a - b)).toEqual(values.map((_, i) => i));
  });
});

describe('MeshworkClient upload with known answers', () => {
  const sha = (v: number): string =>
    createHash('sha256')
      .update(new Uint8Array([v]))
      .digest('hex');

  it('asks missing only about blocks it has no answer for, and puts the ones known missing', async () => {
    const asked: string[][] = [];
    const put: string[] = [];
    const client = new MeshworkClient({
      baseUrl: 'http://api.test/',
      token: 'mwd.t',
      fetch: (input, init) => {
        const url = input as string;
        if (url.endsWith('/v1/blocks/missing')) {
          const { blocks } = JSON.parse(init?.body as string) as { blocks: string[] };
          asked.push(blocks);
          return Promise.resolve(json(200, { missing: blocks }));
        }
        if (init?.method === 'PUT' && url.includes('/v1/blocks/')) {
          put.push(url.slice(-64));
          return Promise.resolve(json(201, { sha256: url.slice(-64), size: 1 }));
        }
        return Promise.resolve(json(201, { path: 'f', version: '9', kind: 'file' }, { etag: '"9"' }));
      },
    });
    // Block 0 known present, block 1 known missing, block 2 not known.
    const known = new Map([
      [sha(0), false],
      [sha(1), true],
    ]);
    const source = [0, 1, 2].map((v) => new Uint8Array([v]));
    const result = await client.upload('o', 'f', source, { ifNoneMatch: '*' }, { blockSize: 1, parallelism: 4, known });
    expect(asked).toEqual([[sha(2)]]);
    expect(put.sort()).toEqual([sha(1), sha(2)].sort());
    expect(result.uploadedBlocks).toBe(2);

    // Every block known: no missing request at all.
    asked.length = 0;
    put.length = 0;
    await client.upload('o', 'g', [new Uint8Array([0])], { ifNoneMatch: '*' }, { blockSize: 1, known });
    expect(asked).toEqual([]);
    expect(put).toEqual([]);
  });

  it('with toStore, asks uploads (known-missing blocks too), and asks missing instead where the partition lacks that route (405)', async () => {
    const log: string[] = [];
    let hasRoute = true;
    const client = new MeshworkClient({
      baseUrl: 'http://api.test/',
      token: 'mwd.t',
      fetch: (input, init) => {
        const url = input as string;
        if (url.endsWith('/v1/blocks/uploads')) {
          const { blocks } = JSON.parse(init?.body as string) as { blocks: { sha256: string; size: number }[] };
          log.push(`uploads ${blocks.length}`);
          if (!hasRoute)
            return Promise.resolve(json(405, { error: { code: 'method_not_allowed', message: 'no' } }, { allow: 'GET, HEAD, PUT' }));
          return Promise.resolve(json(200, { uploads: blocks }));
        }
        if (url.endsWith('/v1/blocks/missing')) {
          const { blocks } = JSON.parse(init?.body as string) as { blocks: string[] };
          log.push(`missing ${blocks.length}`);
          return Promise.resolve(json(200, { missing: blocks }));
        }
        if (init?.method === 'PUT' && url.includes('/v1/blocks/')) {
          log.push('put');
          return Promise.resolve(json(201, { sha256: url.slice(-64), size: 1 }));
        }
        return Promise.resolve(json(201, { path: 'f', version: '9', kind: 'file' }, { etag: '"9"' }));
      },
    });
    const known = new Map([
      [sha(0), false],
      [sha(1), true],
    ]);
    const source = (): Uint8Array[] => [0, 1, 2].map((v) => new Uint8Array([v]));
    const result = await client.upload('o', 'f', source(), { ifNoneMatch: '*' }, { blockSize: 1, parallelism: 4, known, toStore: true });
    expect(result.uploadedBlocks).toBe(2);
    expect(log).toEqual(['uploads 2', 'put', 'put']);
    log.length = 0;
    hasRoute = false;
    const older = await client.upload('o', 'g', source(), { ifNoneMatch: '*' }, { blockSize: 1, parallelism: 4, toStore: true });
    expect(older.uploadedBlocks).toBe(3);
    expect(log).toEqual(['uploads 3', 'missing 3', 'put', 'put', 'put']);
  });
});

describe('MeshworkClient file written whole (ADR 86)', () => {
  // A service that logs each request and answers it; `whole` says whether it takes a file written whole.
  function service(whole: boolean) {
    const log: string[] = [];
    const client = new MeshworkClient({
      baseUrl: 'http://api.test/',
      token: 'mwd.t',
      fetch: (input, init) => {
        const url = new URL(input);
        const headers = init?.headers as Record<string, string>;
        const type = headers['content-type'];
        if (url.pathname.endsWith('/v1/blocks/missing')) {
          const { blocks } = JSON.parse(init?.body as string) as { blocks: string[] };
          log.push('missing');
          return Promise.resolve(json(200, { missing: blocks }));
        }
        if (init?.method === 'PUT' && url.pathname.startsWith('/v1/blocks/')) {
          log.push('put block');
          return Promise.resolve(json(201, { sha256: url.pathname.slice(-64), size: 1 }));
        }
        if (type === 'application/octet-stream') {
          log.push(`put whole ${(init?.body as Uint8Array).length}${url.search}`);
          if (!whole) return Promise.resolve(json(415, { error: { code: 'unsupported_media_type', message: 'JSON only' } }));
        } else log.push('put entry');
        return Promise.resolve(json(201, { path: 'f', version: '9', kind: 'file' }, { etag: '"9"' }));
      },
    });
    return { client, log };
  }

  it('sends a small file of one block with its commit, in one request', async () => {
    const { client, log } = service(true);
    const released: Uint8Array[] = [];
    const result = await client.upload(
      'o',
      'f',
      [new Uint8Array(4096)],
      { ifNoneMatch: '*' },
      {
        mtime: '2026-01-02T03:04:05.000Z',
        onBlockReleased: (data) => released.push(data),
      },
    );
    expect(log).toEqual(['put whole 4096?mtime=2026-01-02T03%3A04%3A05.000Z']);
    expect(result).toMatchObject({ created: true, uploadedBlocks: 1, uploadedBytes: 4096 });
    expect(released).toHaveLength(1);
  });

  it('asks first about a larger block it knows nothing of, and sends whole one it knows the service lacks', async () => {
    const { client, log } = service(true);
    const big = new Uint8Array(wholeUnaskedBytes + 1);
    await client.upload('o', 'f', [big], { ifNoneMatch: '*' });
    expect(log).toEqual(['missing', 'put block', 'put entry']);
    log.length = 0;
    const sha = createHash('sha256').update(big).digest('hex');
    await client.upload('o', 'f', [big], { ifNoneMatch: '*' }, { known: new Map([[sha, true]]) });
    expect(log).toEqual([`put whole ${big.length}`]);
  });

  it('uploads the block and commits in two requests where the partition answers 415 (an older version)', async () => {
    const { client, log } = service(false);
    const result = await client.putFileContent('o', 'f', new Uint8Array([1, 2, 3]), { ifNoneMatch: '*' });
    expect(log).toEqual(['put whole 3', 'put block', 'put entry']);
    expect(result.created).toBe(true);
  });
});

function client_upload(client: MeshworkClient, source: Iterable<Uint8Array>) {
  return client.upload('o', 'f', source, { ifNoneMatch: '*' }, { blockSize: 1, parallelism: 3 });
}

describe('tracing', () => {
  it('sends each request in a client span of its own, with its traceparent', async () => {
    const spans: string[] = [];
    let n = 0;
    const tracing: ClientTracing = {
      async inSpan(name, attributes, fn) {
        spans.push(`${name} ${String(attributes['http.request.method'])}`);
        n++;
        return fn();
      },
      inject(headers) {
        headers.traceparent = `00-0af7651916cd43dd8448eb211c80319c-00000000000000${String(n).padStart(2, '0')}-01`;
      },
    };
    const { client, requests } = scripted([json(503, { error: { code: 'unavailable', message: 'later' } }), json(200, { id: 'u1' })], {
      tracing,
    });
    await client.raw('GET', '/v1/objects/o1/entries/secret%20name.txt?x=1');
    expect(spans).toEqual(['GET /v1/objects GET']);
    expect(requests[0]!.headers.traceparent).toBe('00-0af7651916cd43dd8448eb211c80319c-0000000000000001-01');
    await client.me();
    expect(spans.at(-1)).toBe('GET /v1/me GET');
    expect(requests.at(-1)!.headers.traceparent).toMatch(/-0000000000000002-01$/);
  });

  it('names spans without file names or ids past the collection', () => {
    expect(requestSpanName('PUT', '/v1/objects/abc/entries/private/file.txt')).toBe('PUT /v1/objects');
    expect(requestSpanName('PUT', '/v1/blocks/0123')).toBe('PUT /v1/blocks');
    expect(requestSpanName('GET', '/healthz?x=1')).toBe('GET /healthz');
  });

  it('sends no traceparent without tracing', async () => {
    const { client, requests } = scripted([json(200, { id: 'u1' })]);
    await client.me();
    expect(requests[0]!.headers).not.toHaveProperty('traceparent');
  });
});

describe('remote access', () => {
  it('lists a directory on a device, and a file by its size and ETag from one byte of it', async () => {
    const entries = [{ name: 'a b', kind: 'dir', size: 0, mtime: '2026-01-01T00:00:00.000Z' }];
    const { client, requests } = scripted([
      json(200, { entries }),
      new Response('x', { status: 206, headers: { 'content-range': 'bytes 0-0/1234', etag: '"e1"' } }),
      json(416, { error: { code: 'range_not_satisfiable', message: 'the file is 0 bytes' } }, { 'content-range': 'bytes */0' }),
    ]);
    expect(await client.remoteList('d1', 'o1', '')).toEqual({ kind: 'dir', entries });
    expect(requests[0]!.url).toBe('http://api.test/v1/devices/d1/remote/files/o1/');
    expect(requests[0]!.headers.range).toBe('bytes=0-0');
    expect(await client.remoteList('d1', 'o1', 'a b/c.bin')).toEqual({ kind: 'file', size: 1234, etag: '"e1"', lastModified: undefined });
    expect(requests[1]!.url).toBe('http://api.test/v1/devices/d1/remote/files/o1/a%20b/c.bin');
    expect(await client.remoteList('d1', 'o1', 'empty')).toMatchObject({ kind: 'file', size: 0 });
  });

  it('reads a file from a device with Range, and calls a directory not a file', async () => {
    const { client, requests } = scripted([
      new Response('cd', { status: 206, headers: { 'content-range': 'bytes 2-3/4', 'content-length': '2', etag: '"e1"' } }),
      json(200, { entries: [] }),
    ]);
    const answer = await client.remoteContent('d1', 'o1', 'f', { range: { start: 2 } });
    expect(answer).toMatchObject({ status: 206, contentLength: 2, etag: '"e1"' });
    expect(await new Response(answer.body).text()).toBe('cd');
    expect(requests[0]!.headers.range).toBe('bytes=2-');
    const err = await client.remoteContent('d1', 'o1', 'dir').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'not_a_file' });
  });

  it('says an offline device at once when its Retry-After is longer than the client waits', async () => {
    const { client, requests } = scripted(
      [json(503, { error: { code: 'device_offline', message: 'device d1 is not connected' } }, { 'retry-after': '5' })],
      { retry: { maxDelayMs: 2000 } },
    );
    expect(await client.remoteObjects('d1').catch((e: unknown) => e)).toMatchObject({ code: 'device_offline' });
    expect(requests).toHaveLength(1);
  });
});
