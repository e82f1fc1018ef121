// Telemetry of a real partition process: one trace across two processes (a client process and
// the partition) received by an OTLP/HTTP endpoint in the test, with parent/child links down
// to the etcd and S3 calls; log lines carrying the trace ids and no credentials; and the
// Prometheus metrics. Slots 4064-4079 belong to this file.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { connect, createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ManagedProcess } from '../../../e2e/harness/process.ts';
import { waitFor } from '../../../e2e/harness/wait.ts';
import { MeshworkClient, type DeviceClient } from '@meshwork/client';
import { startPartition, type PartitionStores, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';

const stack = inject('stack');
const stores: PartitionStores = { etcdEndpoint: stack.etcd.endpoint, minio: stack.minio };
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const MiB = 1024 * 1024;

interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client. */
  kind: number;
}

interface OtlpAttribute {
  key: string;
  value: { stringValue?: string };
}

interface OtlpExport {
  resourceSpans?: {
    resource?: { attributes?: OtlpAttribute[] };
    scopeSpans?: { spans?: { traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number }[] }[];
  }[];
}

/** An OTLP/HTTP trace receiver (JSON encoding) that keeps every span it is sent. */
async function startOtlpReceiver(): Promise<{ url: string; spans: ReceivedSpan[]; contentTypes: Set<string>; server: Server }> {
  const spans: ReceivedSpan[] = [];
  const contentTypes = new Set<string>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      contentTypes.add(String(req.headers['content-type']));
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpExport;
      for (const rs of body.resourceSpans ?? []) {
        const service = rs.resource?.attributes?.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? [])
            spans.push({ service, traceId: s.traceId, spanId: s.spanId, parentSpanId: s.parentSpanId ?? '', name: s.name, kind: s.kind });
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, spans, contentTypes, server };
}

/**
 * A TCP relay in front of MinIO that notes the `traceparent` of every S3 request passing
 * through (bytes are forwarded untouched, so request signatures still hold).
 */
async function startS3Relay(target: string): Promise<{ endpoint: string; traceparents: string[]; close(): void }> {
  const upstream = new URL(target);
  const traceparents: string[] = [];
  const server = createTcpServer((client) => {
    const toMinio = connect(Number(upstream.port), upstream.hostname);
    client.on('data', (chunk: Buffer) => {
      for (const m of chunk.toString('latin1').matchAll(/^traceparent: *(\S+)\r$/gim)) traceparents.push(m[1]!);
      toMinio.write(chunk);
    });
    toMinio.pipe(client);
    client.on('close', () => toMinio.destroy());
    toMinio.on('close', () => client.destroy());
    client.on('error', () => toMinio.destroy());
    toMinio.on('error', () => client.destroy());
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return { endpoint: `http://127.0.0.1:${(server.address() as { port: number }).port}`, traceparents, close: () => server.close() };
}

/** Runs the traced client process against `partition` and returns what it printed. */
async function runTracedClient(partitionUrl: string, token: string, otlp: string): Promise<{ traceId: string; statuses: number[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'meshwork-traced-client-'));
  const proc = ManagedProcess.start({
    component: 'traced client',
    binary: process.execPath,
    args: [join(repoRoot, 'e2e/dataplane/traced-client.ts')],
    logFile: join(dir, 'out.log'),
    cwd: repoRoot,
    env: { PATH: process.env.PATH, OTEL_EXPORTER_OTLP_ENDPOINT: otlp, MESHWORK_URL: partitionUrl, MESHWORK_TOKEN: token },
  });
  const exit = await proc.exited;
  const output = readFileSync(join(dir, 'out.log'), 'utf8');
  if (exit.code !== 0) throw new Error(`the traced client exited with ${exit.code}: ${output}`);
  return JSON.parse(output.trim().split('\n').at(-1)!) as { traceId: string; statuses: number[] };
}

function logLines(partition: RunningPartition): Record<string, unknown>[] {
  return readFileSync(join(partition.dir, 'partition.log'), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
let relay: Awaited<ReturnType<typeof startS3Relay>>;
let partition: RunningPartition;
let admin: MeshworkClient;
let secrets: string[];
let device: DeviceClient;

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  relay = await startS3Relay(stack.minio.endpoint);
  partition = await startPartition(
    { ...stores, minio: { ...stack.minio, endpoint: relay.endpoint } },
    {
      partition: 'telemetry',
      slots: '4064-4079',
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '100', MESHWORK_LOG_LEVEL: 'trace' },
    },
  );
  admin = new MeshworkClient({ baseUrl: partition.url, token: partition.adminToken });
  const user = await admin.createUser('telemetry');
  device = await admin.as(user.token).registerDeviceClient('laptop');
  secrets = [partition.adminToken, user.token, device.token!];
});

afterAll(async () => {
  await partition.stop();
  receiver.server.close();
  relay.close();
});

describe('traces', () => {
  it('links a request through a client process and the partition into one trace, down to the etcd and S3 calls', async () => {
    const { traceId, statuses } = await runTracedClient(partition.url, device.token!, receiver.url);
    expect(statuses).toEqual([201, 201, 201, 200]);
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    const named = (service: string, name: string): ReceivedSpan | undefined =>
      receiver.spans.find((s) => s.traceId === traceId && s.service === service && s.name === name);
    const routes = [
      ['PUT /v1/blocks/:sha256', 's3 PutObject'],
      ['PUT /v1/objects/:id/entries/*path', 'etcd putEntry'],
      ['POST /v1/objects', 'etcd createObject'],
      ['POST /v1/blocks/missing', 'etcd readBlocks'],
    ] as const;
    await waitFor(() => named('meshwork-test-client', 'upload a file') && routes.every(([route]) => named('meshwork-partition', route)), {
      description: 'the spans of both processes to arrive',
      timeoutMs: 15_000,
    });
    expect([...receiver.contentTypes]).toEqual(['application/json']);
    const inTrace = receiver.spans.filter((s) => s.traceId === traceId);
    expect(new Set(inTrace.map((s) => s.service))).toEqual(new Set(['meshwork-test-client', 'meshwork-partition']));
    const byId = new Map(inTrace.map((s) => [s.spanId, s]));
    const parentOf = (span: ReceivedSpan | undefined): ReceivedSpan | undefined => (span ? byId.get(span.parentSpanId) : undefined);

    const root = named('meshwork-test-client', 'upload a file')!;
    expect(root.parentSpanId).toBe('');
    // client span → server span in the other process → store spans; the etcd writes run after
    // the JSON body parser, whose stream events must not lose the request's context.
    for (const [route, storeSpan] of routes) {
      const clientSpan = named('meshwork-test-client', route);
      const serverSpan = named('meshwork-partition', route);
      expect(clientSpan, route).toMatchObject({ kind: 3 });
      expect(parentOf(clientSpan)).toBe(root);
      expect(serverSpan, route).toMatchObject({ kind: 2 });
      expect(parentOf(serverSpan)).toBe(clientSpan);
      const store = inTrace.find((s) => s.name === storeSpan && parentOf(s) === serverSpan);
      expect(store, `${storeSpan} under ${route}`).toMatchObject({ kind: 3, service: 'meshwork-partition' });
    }

    // The S3 request itself carried the trace, with the S3 span as its parent.
    const putObject = inTrace.find((s) => s.name === 's3 PutObject')!;
    expect(relay.traceparents).toContain(`00-${traceId}-${putObject.spanId}-01`);

    // Log lines made while serving carry the ids of the request's server span.
    const lines = logLines(partition).filter((l) => l.trace_id === traceId);
    const created = lines.find((l) => l.msg === 'Created object');
    expect(created?.span_id).toBe(named('meshwork-partition', 'POST /v1/objects')!.spanId);
    const served = lines.find((l) => l.msg === 'Served request' && l.route === '/v1/blocks/:sha256');
    expect(served?.span_id).toBe(named('meshwork-partition', 'PUT /v1/blocks/:sha256')!.spanId);
  });

  it('starts no trace for background store calls', () => {
    const rootStoreSpans = receiver.spans.filter((s) => s.service === 'meshwork-partition' && s.parentSpanId === '' && s.kind === 3);
    expect(rootStoreSpans).toEqual([]);
  });
});

describe('logs', () => {
  it('write one line per request and never a credential', async () => {
    // raw: a request with a token that must not be logged, answered 401.
    expect((await admin.raw('GET', '/v1/me', { headers: { authorization: 'Bearer mwd.not-a-valid-token-but-secret' } })).status).toBe(401);
    expect((await device.me()).deviceId).toBe(device.deviceId);
    await waitFor(() => logLines(partition).some((l) => l.route === '/v1/me' && l.status === 200), {
      description: 'the request lines',
      timeoutMs: 5000,
    });
    const text = readFileSync(join(partition.dir, 'partition.log'), 'utf8');
    for (const secret of [...secrets, 'mwd.not-a-valid-token-but-secret', stack.minio.secretKey]) expect(text).not.toContain(secret);
    expect(text).not.toMatch(/authorization/i);
    const requestLines = logLines(partition).filter((l) => l.msg === 'Served request' && l.route === '/v1/me');
    expect(requestLines.map((l) => l.status)).toEqual([401, 200]);
    expect(requestLines[0]).toMatchObject({ level: 30, method: 'GET' });
  });
});

describe('metrics', () => {
  async function scrape(): Promise<string> {
    // raw: the content type is under test too.
    const res = await device.raw('GET', '/metrics', { token: null });
    expect(res.headers['content-type']).toContain('text/plain');
    return res.text;
  }

  function value(text: string, series: string): number {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
  }

  it('measures requests by route pattern, bytes streamed both ways, store calls and open long polls', async () => {
    const objectId = (await device.createObject({ name: 'Metrics' })).id;
    const data = randomBytes(2 * MiB);
    expect((await device.upload(objectId, 'big.bin', data, { ifNoneMatch: '*' }, { blockSize: MiB })).created).toBe(true);
    const download = await device.content(objectId, 'big.bin');
    expect(Buffer.from(await new Response(download.body).arrayBuffer()).equals(data)).toBe(true);
    expect((await device.raw('GET', '/no/such/route')).status).toBe(404);
    const text = await scrape();

    expect(
      value(text, 'meshwork_http_request_duration_seconds_count{method="PUT",route="/v1/blocks/:sha256",status="201"}'),
    ).toBeGreaterThanOrEqual(2);
    expect(value(text, 'meshwork_http_request_duration_seconds_count{method="GET",route="unmatched",status="404"}')).toBe(1);
    // Route patterns, never raw paths: no object id or block hash appears in a label.
    expect(text).not.toContain(objectId);
    expect(text).not.toMatch(/[0-9a-f]{64}/);
    expect(value(text, 'meshwork_http_request_bytes_total{route="/v1/blocks/:sha256"}')).toBeGreaterThanOrEqual(2 * MiB);
    expect(value(text, 'meshwork_http_response_bytes_total{route="/v1/objects/:id/content/*path"}')).toBeGreaterThanOrEqual(2 * MiB);
    expect(
      value(text, 'meshwork_store_operation_duration_seconds_count{store="s3",operation="PutObject",outcome="ok"}'),
    ).toBeGreaterThanOrEqual(2);
    expect(
      value(text, 'meshwork_store_operation_duration_seconds_count{store="s3",operation="GetObject",outcome="ok"}'),
    ).toBeGreaterThanOrEqual(2);
    expect(
      value(text, 'meshwork_store_operation_duration_seconds_count{store="etcd",operation="putEntry",outcome="ok"}'),
    ).toBeGreaterThanOrEqual(1);
    expect(value(text, 'meshwork_long_polls_open')).toBe(0);
    expect(value(text, 'meshwork_http_requests_in_flight')).toBe(1);
    expect(value(text, 'meshwork_partition_process_resident_memory_bytes')).toBeGreaterThan(10 * MiB);
    for (const name of text
      .split('\n')
      .filter((l) => l.startsWith('# TYPE '))
      .map((l) => l.split(' ')[2]!))
      expect(name).toMatch(/^meshwork_/);
  });

  it('asks for a young-generation collection after every 8 MiB of block bytes streamed', async () => {
    // The partition runs with the data plane's flags, --expose-gc among them (ADR 75).
    const before = value(await scrape(), 'meshwork_gc_paced_collections_total');
    expect(before).toBeGreaterThanOrEqual(0);
    const objectId = (await device.createObject({ name: 'Paced' })).id;
    const data = randomBytes(12 * MiB);
    expect((await device.upload(objectId, 'paced.bin', data, { ifNoneMatch: '*' })).created).toBe(true);
    const download = await device.content(objectId, 'paced.bin');
    expect(Buffer.from(await new Response(download.body).arrayBuffer()).equals(data)).toBe(true);
    // 12 MiB verified on the way in and 12 MiB on the way out, on top of less than 8 MiB left
    // over from earlier tests: three paces.
    expect(value(await scrape(), 'meshwork_gc_paced_collections_total') - before).toBe(3);
  });

  it('counts a download the client abandoned as 499', async () => {
    const objectId = (await device.createObject({ name: 'Abandoned' })).id;
    expect((await device.upload(objectId, 'large.bin', randomBytes(12 * MiB), { ifNoneMatch: '*' })).created).toBe(true);
    // Raw node:http: the test hangs up after the first bytes, at a moment it controls.
    const target = new URL(partition.url);
    await new Promise<void>((done) => {
      const req = request(
        {
          host: target.hostname,
          port: target.port,
          path: `/v1/objects/${objectId}/content/large.bin`,
          headers: { authorization: `Bearer ${device.token}` },
        },
        (res) => {
          // Read the first bytes only, then hang up while the server still has most of the file to send.
          res.once('data', () => {
            req.destroy();
            done();
          });
        },
      );
      req.end();
    });
    await waitFor(
      async () =>
        value(
          await scrape(),
          'meshwork_http_request_duration_seconds_count{method="GET",route="/v1/objects/:id/content/*path",status="499"}',
        ) === 1,
      {
        description: 'the abandoned download to be counted',
        timeoutMs: 10_000,
      },
    );
  });
});
