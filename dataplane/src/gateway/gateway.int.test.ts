// The gateway against real partition processes, etcd and MinIO of its own: the whole API
// through one address with @meshwork/client (users, objects and devices on both partitions,
// uploads and downloads, long polls), and never a 421 for the client; a wrong slot map and
// partitions that answer garbage, hang or are down answered 502/503/504 in the error envelope;
// oversized headers and slowloris clients refused with 431/408; the gateway stays healthy.
import { createHash, randomBytes } from 'node:crypto';
import { createServer as createNetServer, connect, type Server as NetServer, type Socket } from 'node:net';
import { createServer as createHttpServer, get as httpGet, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshworkClient, type DeviceClient } from '@meshwork/client';
import { slotMapPrefix } from '@meshwork/contract';
import { startEtcd, type EtcdServer } from '../../../e2e/harness/etcd.ts';
import { startMinio, type MinioServer } from '../../../e2e/harness/minio.ts';
import { freePort } from '../../../e2e/harness/ports.ts';
import { waitFor } from '../../../e2e/harness/wait.ts';
import { startPartition, unthrottledEnv, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';
import { startGateway, type RunningGateway } from '../../../e2e/dataplane/gateway-process.ts';
import { mintIdInSlot, slotOf } from '../slots.ts';

let etcd: EtcdServer;
let minio: MinioServer;
let a: RunningPartition;
let b: RunningPartition;
let gateway: RunningGateway;
let kv: Etcd3;
const statuses: number[] = [];
const stubs: (NetServer | HttpServer)[] = [];

/** fetch that records every status the gateway answered. */
const recordingFetch: typeof fetch = async (input, init) => {
  const res = await fetch(input, init);
  statuses.push(res.status);
  return res;
};

function client(token?: string): MeshworkClient {
  return new MeshworkClient({ baseUrl: gateway.url, token, fetch: recordingFetch, retry: { maxAttempts: 1 } });
}

beforeAll(async () => {
  [etcd, minio] = await Promise.all([startEtcd({ name: 'gateway-etcd' }), startMinio({ bucket: 'gateway' })]);
  const stores = { etcdEndpoint: etcd.endpoint, minio };
  const adminToken = `admin-${randomBytes(16).toString('hex')}`;
  [a, b] = await Promise.all([
    startPartition(stores, { partition: 'gw-a', slots: '0-1023', adminToken, env: { ...unthrottledEnv } }),
    startPartition(stores, { partition: 'gw-b', slots: '1024-2047', adminToken, env: { ...unthrottledEnv } }),
  ]);
  gateway = await startGateway({
    etcdEndpoint: etcd.endpoint,
    env: {
      MESHWORK_GATEWAY_UPSTREAM_TIMEOUT_SECONDS: '2',
      MESHWORK_GATEWAY_HEADERS_TIMEOUT_SECONDS: '2',
      MESHWORK_GATEWAY_PROBE_INTERVAL_MS: '200',
    },
  });
  kv = new Etcd3({ hosts: etcd.endpoint });
});

afterAll(async () => {
  kv?.close();
  for (const s of stubs) s.close();
  await Promise.all([gateway?.stop(), a?.stop(), b?.stop()]);
  await Promise.all([etcd?.stop(), minio?.stop()]);
});

/** A user created through the gateway whose slot the named partition owns. */
async function userOn(partition: RunningPartition, name: string): Promise<{ id: string; token: string }> {
  const admin = client(a.adminToken);
  for (let i = 0; i < 40; i++) {
    const user = await admin.createUser(`${name}-${i}`);
    const slot = slotOf(user.id);
    if ((partition === a && slot <= 1023) || (partition === b && slot >= 1024 && slot <= 2047)) return user;
  }
  throw new Error(`no user landed on ${partition.url}`);
}

async function registerRecord(partition: string, slots: string, url: string): Promise<void> {
  const record = { partition, replica: `${partition}-0`, slots, url, instance: partition, registeredAt: new Date().toISOString() };
  await kv.put(`${slotMapPrefix}${partition}/${partition}-0`).value(JSON.stringify(record)).exec();
  await waitFor(async () => ((await (await fetch(`${gateway.url}/v1/slots`)).text()).includes(`"${partition}"`) ? true : undefined), {
    description: `the gateway to see ${partition}`,
    timeoutMs: 10_000,
  });
}

async function listen(server: NetServer | HttpServer): Promise<string> {
  stubs.push(server);
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return `http://127.0.0.1:${port}`;
}

async function expectHealthy(): Promise<void> {
  const live = await fetch(`${gateway.url}/livez`);
  expect(live.status).toBe(200);
  const ready = await fetch(`${gateway.url}/readyz`);
  expect(ready.status).toBe(200);
  expect(gateway.process.exitStatus).toBeUndefined();
}

let alice: DeviceClient;
let bob: DeviceClient;

describe('the API through the gateway', () => {
  it('creates users on both partitions and serves each from its own', async () => {
    const aliceUser = await userOn(a, 'alice');
    const bobUser = await userOn(b, 'bob');
    alice = await client(aliceUser.token).registerDeviceClient('laptop');
    bob = await client(bobUser.token).registerDeviceClient('laptop');
    expect((await alice.me()).id).toBe(aliceUser.id);
    expect((await bob.me()).id).toBe(bobUser.id);
    const map = await client().slots();
    expect(map.partitions.map((p) => p.partition).sort()).toEqual(['gw-a', 'gw-b']);
  });

  it('uploads and downloads a file of several blocks in an object of the other partition', async () => {
    const object = await bob.createObject({ name: 'shared' });
    expect(slotOf(object.id)).toBeGreaterThanOrEqual(1024);
    await bob.setMember(object.id, (await alice.me()).id, 'writer');
    const paced = async (): Promise<number> =>
      Number((await (await fetch(`${gateway.url}/metrics`)).text()).match(/^meshwork_gc_paced_collections_total (\d+)$/m)?.[1]);
    const pacedBefore = await paced();
    const data = randomBytes(9 * 1024 * 1024 + 123);
    const result = await alice.upload(object.id, 'big.bin', [data], { ifNoneMatch: '*' }, { parallelism: 2 });
    expect(result.created).toBe(true);
    const chunks: Uint8Array[] = [];
    const sink = new WritableStream<Uint8Array>({ write: (c) => void chunks.push(c) });
    expect((await bob.download(object.id, 'big.bin', sink)).status).toBe(200);
    const got = Buffer.concat(chunks);
    expect(createHash('sha256').update(got).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    // The gateway streamed more than 8 MiB down alone: it asked for a young-generation collection (ADR 75).
    expect(await paced()).toBeGreaterThan(pacedBefore);
    // A range, through the gateway.
    const part = await bob.raw('GET', `/v1/objects/${object.id}/content/big.bin`, { headers: { range: 'bytes=10-19' } });
    expect(part.status).toBe(206);
  });

  it('wakes a long poll through the gateway when another partition’s user commits', async () => {
    const object = await alice.createObject({ name: 'notes' });
    await alice.setMember(object.id, (await bob.me()).id, 'writer');
    const { cursor } = await bob.notifications({ wait: 0 });
    const poll = bob.notifications({ cursor, wait: 20 });
    // Commit only once the poll is waiting at the partition.
    await waitFor(
      async () =>
        (await (await fetch(`${gateway.url}/metrics`)).text()).match(/meshwork_http_requests_in_flight (\d+)/)?.[1] !== '0'
          ? true
          : undefined,
      {
        description: 'the poll to be in flight',
        timeoutMs: 5000,
      },
    );
    await alice.putEntry(object.id, 'a.txt', { kind: 'directory' }, { ifNoneMatch: '*' });
    const started = performance.now();
    const answer = await poll;
    expect(answer.objects.map((o) => o.id)).toContain(object.id);
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it('never answered 421', () => {
    expect(statuses.length).toBeGreaterThan(10);
    expect(statuses).not.toContain(421);
  });
});

describe('a replica that shuts down', () => {
  it('costs the clients nothing: its draining answers and refused connections go to the other replica', async () => {
    const stores = { etcdEndpoint: etcd.endpoint, minio };
    const second = await startPartition(stores, {
      partition: 'gw-b',
      slots: '1024-2047',
      adminToken: a.adminToken,
      env: { ...unthrottledEnv, MESHWORK_POD_NAME: 'gw-b-second' },
    });
    // The gateway knows the second replica and has found it ready.
    await waitFor(async () => ((await (await fetch(`${gateway.url}/v1/slots`)).text()).includes('gw-b-second') ? true : undefined), {
      description: 'the gateway to see the second replica',
      timeoutMs: 10_000,
    });
    const first = b;
    const failures: unknown[] = [];
    let served = 0;
    let stopped = false;
    const load = (async () => {
      while (!stopped) {
        try {
          await bob.me();
          served++;
        } catch (err) {
          failures.push(err);
        }
      }
    })();
    await waitFor(() => (served > 20 ? true : undefined), { description: 'load to flow', timeoutMs: 10_000 });
    await first.stop();
    const after = served;
    await waitFor(() => (served > after + 50 ? true : undefined), { description: 'load to go on', timeoutMs: 20_000 });
    stopped = true;
    await load;
    b = second;
    expect(failures.map((e) => `${(e as { code?: string }).code}: ${(e as Error).message}`)).toEqual([]);
    expect(statuses).not.toContain(421);
  });
});

describe('a wrong slot map and bad partitions', () => {
  it('answers 503 partition_unavailable, not 421, while the map names a partition that does not own the slot', async () => {
    // A record that claims part of b's slots at a's address: a answers 421 each time.
    await registerRecord('liar', '1500-1600', a.url);
    const id = mintIdInSlot('o', 1550);
    const res = await fetch(`${gateway.url}/v1/objects/${id}`, { headers: { authorization: `Bearer ${a.adminToken}` } });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('partition_unavailable');
    await kv.delete().key(`${slotMapPrefix}liar/liar-0`).exec();
    // Once the map is right again, b answers (403: the administrator acts for no user).
    await waitFor(
      async () =>
        (await fetch(`${gateway.url}/v1/objects/${id}`, { headers: { authorization: `Bearer ${a.adminToken}` } })).status === 403
          ? true
          : undefined,
      { description: 'b to answer', timeoutMs: 10_000 },
    );
  });

  it('answers 503 for a slot no partition owns', async () => {
    const res = await fetch(`${gateway.url}/v1/objects/${mintIdInSlot('o', 4000)}`);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('partition_unavailable');
  });

  it('answers 502 for a partition that answers garbage', async () => {
    const url = await listen(
      createNetServer((socket: Socket) => {
        socket.once('data', (chunk) => {
          if (chunk.toString().startsWith('GET /readyz')) socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
          else socket.end('THIS IS NOT HTTP\r\n\r\n');
        });
      }),
    );
    await registerRecord('garbage', '2100-2199', url);
    const res = await fetch(`${gateway.url}/v1/objects/${mintIdInSlot('o', 2150)}`);
    expect(res.status).toBe(502);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('bad_gateway');
    await expectHealthy();
  });

  it('answers 504 for a partition that hangs', async () => {
    const url = await listen(
      createHttpServer((req, res) => {
        if (req.url === '/readyz') res.end('{"status":"ready"}');
        // Anything else: never answered.
      }),
    );
    await registerRecord('hang', '2200-2299', url);
    const started = performance.now();
    const res = await fetch(`${gateway.url}/v1/objects/${mintIdInSlot('o', 2250)}`);
    expect(res.status).toBe(504);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('gateway_timeout');
    expect(performance.now() - started).toBeLessThan(10_000);
    await expectHealthy();
  });

  it('answers 503 for a partition that is down', async () => {
    await registerRecord('down', '2300-2399', `http://127.0.0.1:${await freePort()}`);
    const res = await fetch(`${gateway.url}/v1/objects/${mintIdInSlot('o', 2350)}`);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('partition_unavailable');
    await expectHealthy();
  });
});

describe('headers', () => {
  it('passes traceparent, sets X-Forwarded-* and strips hop-by-hop headers both ways', async () => {
    const url = await listen(
      createHttpServer((req, res) => {
        if (req.url === '/readyz') {
          res.end('{"status":"ready"}');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json', connection: 'x-hop', 'x-hop': '1', 'x-end': '2' });
        res.end(JSON.stringify(req.headers));
      }),
    );
    await registerRecord('echo', '2400-2499', url);
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    // node:http, not fetch: fetch never sends a Connection header.
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      httpGet(
        `${gateway.url}/v1/objects/${mintIdInSlot('o', 2450)}`,
        { headers: { traceparent, tracestate: 'a=b', connection: 'x-secret', 'x-secret': 'hop', 'x-forwarded-for': '203.0.113.7' } },
        resolve,
      ).on('error', reject);
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-end']).toBe('2');
    expect(res.headers['x-hop']).toBeUndefined();
    let text = '';
    for await (const chunk of res) text += String(chunk);
    const seen = JSON.parse(text) as Record<string, string>;
    expect(seen.traceparent).toBe(traceparent);
    expect(seen.tracestate).toBe('a=b');
    expect(seen['x-secret']).toBeUndefined();
    expect(seen['x-forwarded-for']).toBe('203.0.113.7, 127.0.0.1');
    expect(seen['x-forwarded-proto']).toBe('http');
    expect(seen['x-forwarded-host']).toBe(`127.0.0.1:${gateway.port}`);
  });
});

describe('bad clients', () => {
  function raw(request: string, options: { trickle?: boolean } = {}): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect(gateway.port, '127.0.0.1');
      let answer = '';
      socket.on('data', (d) => (answer += d.toString()));
      socket.on('end', () => resolve(answer));
      socket.on('close', () => resolve(answer));
      socket.on('error', reject);
      if (options.trickle) socket.write(request);
      else socket.end(request);
    });
  }

  it('answers 431 in the envelope to oversized headers', async () => {
    const answer = await raw(`GET /v1/me HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1.1 431 /);
    expect(answer).toContain('"code":"headers_too_large"');
    await expectHealthy();
  });

  it('answers 408 in the envelope to a client that sends its headers too slowly', async () => {
    const started = performance.now();
    // Headers that never end: the connection is answered and closed after the headers timeout (2 s).
    const answer = await raw('GET /v1/me HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n', { trickle: true });
    expect(answer).toMatch(/^HTTP\/1.1 408 /);
    expect(answer).toContain('"code":"request_timeout"');
    expect(performance.now() - started).toBeLessThan(15_000);
    await expectHealthy();
  });

  it('answers 400 in the envelope to a request that is not HTTP', async () => {
    const answer = await raw('HELLO\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1.1 400 /);
    expect(answer).toContain('"code":"invalid_request"');
  });

  it('answers 404 in the envelope outside /v1', async () => {
    const res = await fetch(`${gateway.url}/nothing-here`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('not_found');
  });
});

describe('a gateway that shuts down', () => {
  it('answers the long poll it holds, then exits 0', async () => {
    const second = await startGateway({ etcdEndpoint: etcd.endpoint });
    try {
      const device = new MeshworkClient({ baseUrl: second.url, token: bob.token, retry: { maxAttempts: 1 } });
      const { cursor } = await device.notifications({ wait: 0 });
      const poll = device.notifications({ cursor, wait: 3 });
      await waitFor(
        async () =>
          (await (await fetch(`${second.url}/metrics`)).text()).match(/meshwork_http_requests_in_flight (\d+)/)?.[1] !== '0'
            ? true
            : undefined,
        { description: 'the poll to be in flight', timeoutMs: 5000 },
      );
      second.process.signal('SIGTERM');
      // The poll runs out its wait and is answered (nothing changed: the same cursor).
      expect((await poll).cursor).toBe(cursor);
      expect((await second.process.exited).code).toBe(0);
    } finally {
      await second.stop();
    }
  });
});
