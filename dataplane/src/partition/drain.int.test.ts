// SIGTERM drain of a real partition process: new connections are refused, a request arriving
// on a kept-alive socket gets 503 + Retry-After + Connection: close, a slow upload in flight
// completes, the slot lease is released, and the process exits 0 within the grace period; and
// clients hammering kept-alive connections through the drain see no reset, only answers.
// Slots 4048-4063 belong to this file.
import { createHash, randomBytes } from 'node:crypto';
import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { Etcd3 } from 'etcd3';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { waitFor } from '../../../e2e/harness/wait.ts';
import { BlockStore } from '../stores/block-store.ts';
import { slotMapPrefix } from '../stores/keys.ts';
import { ConnectionTracker, drainServer } from './drain.ts';
import { MeshworkClient, NetworkError } from '@meshwork/client';
import { startPartition, unthrottledEnv, type PartitionStores } from '../../../e2e/dataplane/partition-process.ts';

const stack = inject('stack');
const stores: PartitionStores = { etcdEndpoint: stack.etcd.endpoint, minio: stack.minio };
const etcd = new Etcd3({ hosts: stack.etcd.endpoint });
const MiB = 1024 * 1024;

afterAll(() => etcd.close());

async function requestsInFlight(url: string): Promise<number> {
  const text = await new MeshworkClient({ baseUrl: url }).metrics();
  return Number(/^meshwork_http_requests_in_flight (\d+)/m.exec(text)?.[1] ?? 0);
}

/** Everything a raw socket receives until the peer closes it. */
function readUntilClosed(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    socket.once('close', () => resolve(text));
    socket.once('error', reject);
  });
}

describe('SIGTERM drain', () => {
  it('refuses new connections, turns away requests on kept-alive sockets, and lets a slow upload finish', async () => {
    const partition = await startPartition(stores, {
      partition: 'drain',
      slots: '4048-4063',
      env: { MESHWORK_SHUTDOWN_GRACE_SECONDS: '15' },
    });
    try {
      const admin = new MeshworkClient({ baseUrl: partition.url, token: partition.adminToken });
      const device = await admin.as((await admin.createUser('drain')).token).registerDeviceClient('laptop');
      const target = new URL(partition.url);

      // A 4 MiB block upload, sent slowly: the first MiB now, the rest during the drain. Raw
      // node:http, as is the socket below: the test holds a request half sent, which no client call does.
      const block = randomBytes(4 * MiB);
      const sha = createHash('sha256').update(block).digest('hex');
      const upload = request({
        host: target.hostname,
        port: target.port,
        method: 'PUT',
        path: `/v1/blocks/${sha}`,
        agent: false,
        headers: {
          authorization: `Bearer ${device.token}`,
          'content-length': String(block.length),
          'content-type': 'application/octet-stream',
        },
      });
      const uploaded = new Promise<IncomingMessage>((resolve, reject) => {
        upload.once('response', resolve);
        upload.once('error', reject);
      });
      upload.write(block.subarray(0, MiB));
      // This scrape and the upload.
      await waitFor(async () => (await requestsInFlight(partition.url)) >= 2, {
        description: 'the upload to be in flight',
        timeoutMs: 10_000,
      });

      // A kept-alive socket whose next request is half sent when SIGTERM comes.
      const socket = connect(Number(target.port), target.hostname);
      await new Promise<void>((resolve) => socket.once('connect', resolve));
      const answer = readUntilClosed(socket);
      socket.write(`GET /v1/me HTTP/1.1\r\nHost: ${target.host}\r\nAuthorization: Bearer ${device.token}\r\n`);

      const signalled = Date.now();
      partition.process.signal('SIGTERM');
      await waitFor(
        async () => {
          try {
            await new MeshworkClient({ baseUrl: partition.url, timeoutMs: 1000, retry: { maxAttempts: 1 } }).livez();
            return false;
          } catch (err) {
            // NetworkError → fetch's TypeError → the socket's error.
            return err instanceof NetworkError && (err.cause as { cause?: { code?: string } }).cause?.code === 'ECONNREFUSED';
          }
        },
        { description: 'new connections to be refused', timeoutMs: 5000, intervalMs: 50 },
      );

      socket.write('\r\n');
      const raw = await answer;
      const [head, body] = raw.split('\r\n\r\n') as [string, string];
      expect(head).toMatch(/^HTTP\/1\.1 503 /);
      expect(head).toMatch(/^retry-after: 1$/im);
      expect(head).toMatch(/^connection: close$/im);
      expect(JSON.parse(body)).toMatchObject({ error: { code: 'draining' } });

      upload.end(block.subarray(MiB));
      const response = await uploaded;
      response.resume();
      expect(response.statusCode).toBe(201);

      const exit = await partition.process.exited;
      expect(exit.code).toBe(0);
      expect(Date.now() - signalled).toBeLessThan(15_000);
      const log = partition.process.logTail(50);
      expect(log).toContain('Started draining');
      expect(log).toMatch(/"drained":true,"msg":"Stopped partition"/);
      // The block is stored, and the slots are free at once rather than when the lease lapses.
      const blocks = new BlockStore({
        endpoint: new URL(stack.minio.endpoint),
        bucket: stack.minio.bucket,
        region: 'us-east-1',
        accessKey: stack.minio.accessKey,
        secretKey: stack.minio.secretKey,
      });
      expect(await blocks.sizeOf(sha)).toBe(4 * MiB);
      expect(await etcd.getAll().prefix(`${slotMapPrefix}drain/`).keys()).toEqual([]);
    } finally {
      await partition.stop();
    }
  });
});

/** What one request of a kept-alive client came to. */
type Outcome = 'ok' | 'draining' | 'refused' | `failed: ${string}`;

/** One GET on `agent` (one kept-alive socket), classified; `draining` also checks the documented headers. */
function getOnce(agent: Agent, url: URL, token: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = request(
      { host: url.hostname, port: url.port, path: '/v1/me', agent, headers: { authorization: `Bearer ${token}` } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err: NodeJS.ErrnoException) => resolve(`failed: response ${err.code ?? err.message}`));
        res.on('end', () => {
          if (res.statusCode === 200) {
            resolve('ok');
            return;
          }
          const text = Buffer.concat(chunks).toString('utf8');
          const proper =
            res.statusCode === 503 &&
            res.headers['retry-after'] === '1' &&
            res.headers.connection === 'close' &&
            text.includes('"draining"');
          resolve(proper ? 'draining' : `failed: ${res.statusCode} ${JSON.stringify(res.headers)} ${text}`);
        });
      },
    );
    // A refused connection is what the drain promises for new connections: safe to retry elsewhere.
    req.on('error', (err: NodeJS.ErrnoException) =>
      resolve(err.code === 'ECONNREFUSED' ? 'refused' : `failed: ${err.code ?? err.message}`),
    );
    req.end();
  });
}

describe('SIGTERM drain under kept-alive load', () => {
  it('answers every request on kept-alive sockets (200 or 503 draining) and resets none, drain after drain', async () => {
    const drains = 5;
    const clients = 16;
    const counts: Record<string, number> = {};
    const failures: string[] = [];
    let adminToken: string | undefined;
    for (let round = 0; round < drains; round++) {
      const partition = await startPartition(stores, {
        partition: 'drain',
        slots: '4048-4063',
        adminToken,
        env: { ...unthrottledEnv, MESHWORK_SHUTDOWN_GRACE_SECONDS: '15' },
      });
      try {
        adminToken = partition.adminToken;
        const admin = new MeshworkClient({ baseUrl: partition.url, token: partition.adminToken });
        const { token } = await admin.createUser(`keepalive-${round}`);
        const url = new URL(partition.url);
        let signalled = false;
        const sent = Array.from({ length: clients }, () => 0);
        // Each client is one kept-alive socket sending its next request as soon as the last is answered.
        const loops = sent.map(async (_, i) => {
          const agent = new Agent({ keepAlive: true, maxSockets: 1 });
          try {
            for (;;) {
              const outcome = await getOnce(agent, url, token);
              sent[i]!++;
              counts[outcome] = (counts[outcome] ?? 0) + 1;
              if (outcome.startsWith('failed') || (outcome === 'refused' && !signalled))
                failures.push(`drain ${round}, client ${i}, after SIGTERM: ${signalled}: ${outcome}`);
              if (outcome !== 'ok' && outcome !== 'draining') return;
            }
          } finally {
            agent.destroy();
          }
        });
        await waitFor(() => sent.every((n) => n >= 5), {
          description: 'every client to be in its loop',
          timeoutMs: 20_000,
          intervalMs: 20,
        });
        signalled = true;
        partition.process.signal('SIGTERM');
        await Promise.all(loops);
        const exit = await partition.process.exited;
        expect(exit.code).toBe(0);
      } finally {
        await partition.stop();
      }
    }
    expect(failures).toEqual([]);
    // The load reached the drain: requests were turned away on open sockets, not only refused.
    expect(counts.draining ?? 0).toBeGreaterThan(0);
    expect(counts.refused).toBe(drains * clients);
  });
});

describe('drainServer', () => {
  async function serve(
    handler: (req: IncomingMessage, res: ServerResponse) => void,
  ): Promise<{ connections: ConnectionTracker; url: string }> {
    const server = createServer(handler);
    const connections = new ConnectionTracker(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { connections, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  }

  it('releases long polls with Retry-After and resolves once every connection closed', async () => {
    const polls = new Set<ServerResponse>();
    const { connections, url } = await serve((_req, res) => void polls.add(res));
    const longPolls = {
      get open() {
        return polls.size;
      },
      drain(retryAfterSeconds: number) {
        for (const res of polls) res.writeHead(503, { 'retry-after': String(retryAfterSeconds) }).end();
        polls.clear();
      },
    };
    const poll = fetch(`${url}/v1/notifications?wait=60`);
    await waitFor(() => longPolls.open === 1, { description: 'the long poll to arrive', timeoutMs: 5000, intervalMs: 20 });
    expect(await drainServer(connections, longPolls, 5000)).toBe(true);
    const res = await poll;
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
  });

  it('gives up at the deadline and closes the connections still open', async () => {
    let arrived = false;
    const { connections, url } = await serve(() => {
      arrived = true;
    });
    const hanging = fetch(`${url}/never-answered`).then(
      () => 'answered',
      () => 'cut',
    );
    await waitFor(() => arrived, { description: 'the request to arrive', timeoutMs: 5000, intervalMs: 20 });
    expect(await drainServer(connections, undefined, 200)).toBe(false);
    expect(await hanging).toBe('cut');
  });
});
