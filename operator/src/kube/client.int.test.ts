// The client's delete, merge patch and paged lists against a real API server, and its handling
// of throttling (429, 503 with Retry-After) and of an expired list snapshot against a small
// local HTTP server, since the real one cannot be made to answer those on demand.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { V1ConfigMap } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { KubeApiError, KubeClient } from './client.ts';
import { loadKubeconfigFile } from './credentials.ts';

const stack = inject('stack');
const namespace = `client-${randomBytes(3).toString('hex')}`;
const client = new KubeClient(loadKubeconfigFile(stack.controlPlane.adminKubeconfig));
const configMaps = { apiVersion: 'v1', resource: 'configmaps', namespace };

describe('KubeClient delete and mergePatch', () => {
  beforeAll(async () => {
    await client.create(
      { apiVersion: 'v1', resource: 'namespaces' },
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } },
    );
  });

  afterAll(async () => {
    await client.delete({ apiVersion: 'v1', resource: 'namespaces', name: namespace });
    client.close();
  });

  it('deletes only the object with the given uid, and says when it was already gone', async () => {
    const made = await client.create<V1ConfigMap>(configMaps, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'a' },
      data: { k: 'v' },
    });
    expect(await client.delete({ ...configMaps, name: 'a' }, { uid: '00000000-0000-4000-8000-000000000000' })).toBe(false);
    expect(await client.get({ ...configMaps, name: 'a' })).toBeDefined();
    expect(await client.delete({ ...configMaps, name: 'a' }, { uid: made.metadata!.uid!, gracePeriodSeconds: 0 })).toBe(true);
    expect(await client.get({ ...configMaps, name: 'a' })).toBeUndefined();
    expect(await client.delete({ ...configMaps, name: 'a' })).toBe(false);
  });

  it('keeps its pooled connection usable after a delete with options (the body is sent with its length)', async () => {
    for (let i = 0; i < 5; i++) {
      await client.create(configMaps, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `b-${i}` } });
      expect(await client.delete({ ...configMaps, name: `b-${i}` }, { gracePeriodSeconds: 0 })).toBe(true);
      // Without a Content-Length the server ignored the delete's body and read it as the next request: 400.
      await client.create(configMaps, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `c-${i}` } });
    }
  });

  it('merges labels in and takes them out with null', async () => {
    await client.create(configMaps, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'd', labels: { keep: 'yes' } } });
    await client.mergePatch({ ...configMaps, name: 'd' }, { metadata: { labels: { 'unsuitable.meshwork.io/x.p0': '123' } } });
    expect((await client.get<V1ConfigMap>({ ...configMaps, name: 'd' }))!.metadata!.labels).toEqual({
      keep: 'yes',
      'unsuitable.meshwork.io/x.p0': '123',
    });
    await client.mergePatch({ ...configMaps, name: 'd' }, { metadata: { labels: { 'unsuitable.meshwork.io/x.p0': null } } });
    expect((await client.get<V1ConfigMap>({ ...configMaps, name: 'd' }))!.metadata!.labels).toEqual({ keep: 'yes' });
  });
});

describe('KubeClient paged lists on the real API server', () => {
  const pagedNamespace = `paged-${randomBytes(3).toString('hex')}`;
  const calls: string[] = [];
  const paged = new KubeClient(loadKubeconfigFile(stack.controlPlane.adminKubeconfig), {
    listPageSize: 10,
    observe: (verb, resource, code) => calls.push(`${verb} ${resource} ${code}`),
  });
  const ref = { apiVersion: 'v1', resource: 'configmaps', namespace: pagedNamespace };

  beforeAll(async () => {
    await client.create(
      { apiVersion: 'v1', resource: 'namespaces' },
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: pagedNamespace } },
    );
    for (let i = 0; i < 25; i++) {
      await client.create(ref, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: `cm-${String(i).padStart(2, '0')}`, labels: { odd: String(i % 2 === 1) } },
      });
    }
  });

  afterAll(async () => {
    await client.delete({ apiVersion: 'v1', resource: 'namespaces', name: pagedNamespace });
    paged.close();
  });

  it('reads every object of a collection larger than a page, in pages, from one snapshot', async () => {
    calls.length = 0;
    // The namespace also holds the kube-root-ca.crt ConfigMap that the controller manager adds.
    const list = await paged.list<V1ConfigMap>(ref);
    const names = list.items.map((c) => c.metadata!.name!).filter((n) => n.startsWith('cm-'));
    expect(names).toEqual(Array.from({ length: 25 }, (_, i) => `cm-${String(i).padStart(2, '0')}`));
    expect(new Set(list.items.map((c) => c.metadata!.name)).size).toBe(list.items.length);
    expect(calls.length).toBe(Math.ceil(list.items.length / 10));
    expect(calls.every((c) => c === 'list configmaps 200')).toBe(true);
    expect(Number(list.metadata.resourceVersion)).toBeGreaterThanOrEqual(
      Math.max(...list.items.map((c) => Number(c.metadata!.resourceVersion))),
    );
  });

  it('keeps the label selector on every page', async () => {
    const list = await paged.list<V1ConfigMap>(ref, { labelSelector: 'odd=true' });
    expect(list.items.map((c) => c.metadata!.name)).toEqual(
      Array.from({ length: 12 }, (_, i) => `cm-${String(2 * i + 1).padStart(2, '0')}`),
    );
  });
});

/** A local API server stand-in: each request is answered by `answer`, and recorded. */
class FakeApiServer {
  readonly seen: { method: string; url: string }[] = [];
  answer: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => json(res, 200, {});
  readonly #server: Server = createServer((req, res) => {
    this.seen.push({ method: req.method ?? '', url: req.url ?? '' });
    req.resume();
    req.once('end', () => this.answer(req, res));
  });

  async start(): Promise<URL> {
    this.#server.listen(0, '127.0.0.1');
    await once(this.#server, 'listening');
    return new URL(`http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`);
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    this.#server.close();
    await once(this.#server, 'close');
  }
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers }).end(text);
}

const tooMany = (res: ServerResponse, retryAfter?: string): void =>
  json(
    res,
    429,
    { kind: 'Status', status: 'Failure', reason: 'TooManyRequests', message: 'too many requests', code: 429 },
    retryAfter ? { 'retry-after': retryAfter } : {},
  );
const unavailable = (res: ServerResponse): void =>
  json(
    res,
    503,
    { kind: 'Status', status: 'Failure', reason: 'ServiceUnavailable', message: 'try later', code: 503 },
    { 'retry-after': '0' },
  );

describe('KubeClient against a throttling API server', () => {
  const fake = new FakeApiServer();
  let fakeClient: KubeClient;
  const configMap = { apiVersion: 'v1', resource: 'configmaps', namespace: 'x', name: 'a' };

  beforeAll(async () => {
    fakeClient = new KubeClient({ server: await fake.start() }, { retry: { baseDelayMs: 5 }, listPageSize: 2 });
  });
  afterEach(() => {
    fake.seen.length = 0;
  });
  afterAll(async () => {
    fakeClient.close();
    await fake.stop();
  });

  it('waits for Retry-After after a 429 and then succeeds', async () => {
    const answers = [(res: ServerResponse) => tooMany(res, '1'), (res: ServerResponse) => json(res, 200, { metadata: { name: 'a' } })];
    fake.answer = (_req, res) => answers.shift()!(res);
    const started = performance.now();
    expect(await fakeClient.get(configMap)).toEqual({ metadata: { name: 'a' } });
    expect(performance.now() - started).toBeGreaterThanOrEqual(1000);
    expect(fake.seen).toHaveLength(2);
  });

  it('retries a 429 even for a create (the server did not process it)', async () => {
    const answers = [(res: ServerResponse) => tooMany(res, '0'), (res: ServerResponse) => json(res, 201, { metadata: { name: 'a' } })];
    fake.answer = (_req, res) => answers.shift()!(res);
    await fakeClient.create(configMap, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a' } });
    expect(fake.seen.map((s) => s.method)).toEqual(['POST', 'POST']);
  });

  it('retries a 503 for an idempotent request but not for a create', async () => {
    const answers = [unavailable, (res: ServerResponse) => json(res, 200, { metadata: { name: 'a' } })];
    fake.answer = (_req, res) => answers.shift()!(res);
    await fakeClient.apply(configMap, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a' } }, 'test');
    expect(fake.seen.map((s) => s.method)).toEqual(['PATCH', 'PATCH']);

    fake.seen.length = 0;
    fake.answer = (_req, res) => unavailable(res);
    await expect(fakeClient.create(configMap, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a' } })).rejects.toMatchObject({
      status: 503,
      reason: 'ServiceUnavailable',
    });
    expect(fake.seen).toHaveLength(1);
  });

  it('gives up after its attempts with the 429 and the server’s Retry-After, its waits capped', async () => {
    const capped = new KubeClient({ server: fakeClient.credentials.server }, { retry: { attempts: 3, maxDelayMs: 50 } });
    fake.answer = (_req, res) => tooMany(res, '3600');
    const started = performance.now();
    const failure = await capped.get(configMap).catch((err: unknown) => err);
    capped.close();
    expect(failure).toBeInstanceOf(KubeApiError);
    expect(failure).toMatchObject({ status: 429, reason: 'TooManyRequests', retryAfterSeconds: 3600 });
    expect(fake.seen).toHaveLength(3);
    // Two waits of at most 50 ms each, not an hour.
    expect(performance.now() - started).toBeLessThan(30_000);
  });

  it('lists in pages and starts over when the snapshot expires between pages', async () => {
    let expireOnce = true;
    fake.answer = (req, res) => {
      const query = new URL(req.url!, 'http://x').searchParams;
      expect(query.get('limit')).toBe('2');
      const token = query.get('continue');
      if (token === null)
        return json(res, 200, { metadata: { resourceVersion: expireOnce ? '10' : '20', continue: 'p2' }, items: [{ n: 1 }, { n: 2 }] });
      if (token === 'p2' && expireOnce) {
        expireOnce = false;
        return json(res, 410, { kind: 'Status', reason: 'Expired', message: 'The provided continue parameter is too old', code: 410 });
      }
      if (token === 'p2') return json(res, 200, { metadata: { resourceVersion: '20', continue: 'p3' }, items: [{ n: 3 }, { n: 4 }] });
      return json(res, 200, { metadata: { resourceVersion: '20' }, items: [{ n: 5 }] });
    };
    const list = await fakeClient.list<{ n: number }>({ apiVersion: 'v1', resource: 'configmaps' });
    expect(list).toEqual({ metadata: { resourceVersion: '20' }, items: [{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }, { n: 5 }] });
    expect(fake.seen.map((s) => new URL(s.url, 'http://x').searchParams.get('continue'))).toEqual([null, 'p2', null, 'p2', 'p3']);
  });

  it('fails with the 410 of a list whose snapshot keeps expiring, after a bounded number of restarts', async () => {
    fake.answer = (req, res) => {
      if (new URL(req.url!, 'http://x').searchParams.get('continue') === null)
        return json(res, 200, { metadata: { resourceVersion: '1', continue: 'p2' }, items: [{}] });
      return json(res, 410, { kind: 'Status', reason: 'Expired', message: 'too old', code: 410 });
    };
    await expect(fakeClient.list({ apiVersion: 'v1', resource: 'configmaps' })).rejects.toMatchObject({ status: 410, reason: 'Expired' });
    expect(fake.seen).toHaveLength(8);
  });

  it('does not restart a list on a 410 of its first page (a bad resourceVersion is the caller’s to handle)', async () => {
    fake.answer = (_req, res) => json(res, 410, { kind: 'Status', reason: 'Expired', message: 'too old', code: 410 });
    await expect(
      fakeClient.list({ apiVersion: 'v1', resource: 'configmaps' }, { resourceVersion: '1', resourceVersionMatch: 'Exact' }),
    ).rejects.toMatchObject({ status: 410 });
    expect(fake.seen).toHaveLength(1);
  });
});
