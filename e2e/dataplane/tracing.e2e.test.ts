// Traces across every tier, checked in a real Jaeger: the `meshwork` command uploads a file
// through the gateway with tracing on everywhere, and Jaeger's query API holds one trace with
// spans of the command, the gateway (its server span and the client span of its call to the
// partition), the partition, and the partition's etcd and S3 calls, each tier the child of the one before; a pass of the sync engine is a trace too. Then, with export off, a `traceparent` sent to the
// gateway still puts its trace id on the log lines of the gateway and of the partition.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshworkClient } from '@meshwork/client';
import { startEtcd, type EtcdServer } from '../harness/etcd.ts';
import { startJaeger, type JaegerServer, type JaegerSpan } from '../harness/jaeger.ts';
import { startMinio, type MinioServer } from '../harness/minio.ts';
import { waitFor } from '../harness/wait.ts';
import { startGateway, type RunningGateway } from './gateway-process.ts';
import { startPartition, type RunningPartition } from './partition-process.ts';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const program = join(repoRoot, 'client/src/cli/meshwork.ts');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let temp: string;
let etcd: EtcdServer;
let minio: MinioServer;
let jaeger: JaegerServer;
let partition: RunningPartition;
let gateway: RunningGateway;

/** Runs the `meshwork` command with tracing to Jaeger, as a device in `home`. */
function meshwork(home: string, args: string[]): Promise<Run> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [program, ...args], {
      cwd: home,
      env: {
        PATH: process.env.PATH,
        HOME: home,
        MESHWORK_CONFIG_DIR: join(home, 'config'),
        MESHWORK_STATE_DIR: join(home, 'state'),
        MESHWORK_PEER_LISTEN: '127.0.0.1:0',
        OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpEndpoint,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

function parsed<T>(run: Run): T {
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as T;
}

/** The JSON lines of a process's log file. */
function logLines(file: string): Record<string, unknown>[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

const tracingEnv = (): Record<string, string> => ({ OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpEndpoint, OTEL_BSP_SCHEDULE_DELAY: '100' });

beforeAll(async () => {
  temp = mkdtempSync(join(tmpdir(), 'meshwork-tracing-'));
  [etcd, minio, jaeger] = await Promise.all([startEtcd({ name: 'tracing-etcd' }), startMinio({ bucket: 'tracing' }), startJaeger()]);
  partition = await startPartition({ etcdEndpoint: etcd.endpoint, minio }, { partition: 'traced', slots: '0-4095', env: tracingEnv() });
  gateway = await startGateway({ etcdEndpoint: etcd.endpoint, env: tracingEnv() });
});

afterAll(async () => {
  await Promise.all([gateway?.stop(), partition?.stop()]);
  await Promise.all([etcd?.stop(), minio?.stop(), jaeger?.stop()]);
  if (temp) rmSync(temp, { recursive: true, force: true });
});

describe('one trace across the tiers', () => {
  it('holds the command, the gateway, the partition, and its etcd and S3 calls', async () => {
    const admin = new MeshworkClient({ baseUrl: gateway.url, token: partition.adminToken });
    const user = await admin.createUser('tracer');
    const home = join(temp, 'laptop');
    mkdirSync(home, { recursive: true });
    const tokenFile = join(temp, 'account.token');
    writeFileSync(tokenFile, `${user.token}\n`, { mode: 0o600 });
    parsed(await meshwork(home, ['login', '--server', gateway.url, '--name', 'laptop', '--token-file', tokenFile, '--json']));
    const object = parsed<{ id: string }>(await meshwork(home, ['objects', 'create', 'Traced', '--json']));
    const local = join(home, 'report.bin');
    writeFileSync(local, randomBytes(64 * 1024));
    parsed(await meshwork(home, ['put', local, `${object.id}:report.bin`, '--json']));

    // The command's root span is named after it; its trace id is read back from Jaeger.
    const spans = await waitFor(
      async () => {
        const res = await fetch(
          `${jaeger.queryUrl}/api/traces?service=meshwork-cli&operation=${encodeURIComponent('meshwork put')}&limit=5`,
        );
        const body = (await res.json()) as { data?: { traceID: string }[] | null };
        const traceId = body.data?.[0]?.traceID;
        if (traceId === undefined) return undefined;
        const all = await jaeger.trace(traceId);
        const has = (service: string, name: RegExp): boolean => all.some((s) => s.service === service && name.test(s.operationName));
        const complete =
          has('meshwork-cli', /^meshwork put$/) &&
          has('meshwork-cli', /^PUT \/v1\/objects$/) &&
          has('meshwork-gateway', /^PUT \/v1\/objects\/:id\/entries$/) &&
          has('meshwork-gateway', /^partition PUT \/v1\/objects\/:id\/entries$/) &&
          has('meshwork-partition', /^PUT \/v1\/objects\/:id\/entries/) &&
          // The holder's write and the commit's, at least.
          all.filter((s) => s.service === 'meshwork-partition' && s.operationName.startsWith('etcd ')).length >= 2 &&
          has('meshwork-partition', /^s3 PutObject$/);
        return complete ? all : undefined;
      },
      { description: 'Jaeger to hold the whole trace of `meshwork put`', timeoutMs: 30_000, intervalMs: 250 },
    );

    expect(new Set(spans.map((s) => s.traceId)).size).toBe(1);
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    /** The services from a span up to the root, nearest first. */
    const ancestry = (span: JaegerSpan): string[] => {
      const chain: string[] = [];
      for (let s: JaegerSpan | undefined = span; s !== undefined; s = byId.get(s.parentSpanId))
        chain.push(`${s.service} ${s.operationName}`);
      return chain;
    };
    const kind = (s: JaegerSpan | undefined): unknown => s?.tags['span.kind'];
    const roots = spans.filter((s) => s.parentSpanId === '');
    expect(roots.map((s) => `${s.service} ${s.operationName}`)).toEqual(['meshwork-cli meshwork put']);
    // Every span hangs off the root: no tier started a trace of its own.
    for (const span of spans) expect(ancestry(span).at(-1), ancestry(span).join(' <- ')).toBe('meshwork-cli meshwork put');

    const s3 = spans.find((s) => s.service === 'meshwork-partition' && s.operationName === 's3 PutObject')!;
    expect(ancestry(s3).map((a) => a.split(' ')[0])).toEqual([
      'meshwork-partition', // s3 PutObject
      'meshwork-partition', // PUT /v1/objects/:id/entries/*path: the file written whole (ADR 86)
      'meshwork-gateway', // partition PUT /v1/objects/:id/entries (client)
      'meshwork-gateway', // PUT /v1/objects/:id/entries (server)
      'meshwork-cli', // PUT /v1/objects
      'meshwork-cli', // meshwork put
    ]);
    // Every etcd call of the partition is a step of the request that made it, a sibling of the S3
    // call: the upload's holder too, written while S3 stores the bytes (from inside that call).
    const etcdCalls = spans.filter((s) => s.service === 'meshwork-partition' && s.operationName.startsWith('etcd '));
    for (const call of etcdCalls) expect(kind(byId.get(call.parentSpanId)), ancestry(call).join(' <- ')).toBe('server');
    const etcdCall = etcdCalls.find((s) => s.parentSpanId === s3.parentSpanId)!;
    expect(ancestry(etcdCall).map((a) => a.split(' ')[0])).toEqual([
      'meshwork-partition',
      'meshwork-partition',
      'meshwork-gateway',
      'meshwork-gateway',
      'meshwork-cli',
      'meshwork-cli',
    ]);
    // Each tier's call to the next is a client span, child of its own server span, and the next
    // tier's server span continues from it (the traceparent it sent): cli → gateway → partition.
    const forwarded = spans.find((s) => s.service === 'meshwork-gateway' && s.operationName === 'partition PUT /v1/objects/:id/entries')!;
    expect(kind(forwarded)).toBe('client');
    expect(forwarded.tags['meshwork.partition']).toBe('traced');
    expect(forwarded.tags['http.response.status_code']).toBe(201);
    const gatewayServer = byId.get(forwarded.parentSpanId);
    expect([gatewayServer?.service, gatewayServer?.operationName, kind(gatewayServer)]).toEqual([
      'meshwork-gateway',
      'PUT /v1/objects/:id/entries',
      'server',
    ]);
    const cliCall = byId.get(gatewayServer!.parentSpanId);
    expect([cliCall?.service, kind(cliCall)]).toEqual(['meshwork-cli', 'client']);
    const partitionServer = byId.get(s3.parentSpanId)!;
    expect([partitionServer.parentSpanId, kind(partitionServer)]).toEqual([forwarded.spanId, 'server']);
    // Raw paths (file names) are recorded nowhere.
    expect(JSON.stringify(spans)).not.toContain('report.bin');

    // The sync engine makes each pass a trace of its own: here, the download of that file.
    const synced = join(home, 'synced');
    const once = await meshwork(home, ['sync', synced, '--object', object.id, '--once', '--json']);
    expect(once.code, once.stderr).toBe(0);
    const pass = await waitFor(
      async () => {
        const res = await fetch(`${jaeger.queryUrl}/api/traces?service=meshwork-cli&operation=${encodeURIComponent('meshwork sync pass')}`);
        const traceId = ((await res.json()) as { data?: { traceID: string }[] | null }).data?.[0]?.traceID;
        const all = traceId === undefined ? [] : await jaeger.trace(traceId);
        const services = new Set(all.map((s) => s.service));
        return services.has('meshwork-gateway') && all.some((s) => s.service === 'meshwork-partition' && s.operationName.startsWith('s3 '))
          ? all
          : undefined;
      },
      { description: 'Jaeger to hold a trace of the sync pass', timeoutMs: 30_000, intervalMs: 250 },
    );
    expect(pass.filter((s) => s.parentSpanId === '').map((s) => s.operationName)).toEqual(['meshwork sync pass']);
  });
});

describe('trace ids in logs with export off', () => {
  let offEtcd: EtcdServer;
  let offMinio: MinioServer;
  let offPartition: RunningPartition;
  let offGateway: RunningGateway;

  beforeAll(async () => {
    [offEtcd, offMinio] = await Promise.all([startEtcd({ name: 'untraced-etcd' }), startMinio({ bucket: 'untraced' })]);
    offPartition = await startPartition({ etcdEndpoint: offEtcd.endpoint, minio: offMinio }, { partition: 'untraced', slots: '0-4095' });
    offGateway = await startGateway({ etcdEndpoint: offEtcd.endpoint });
  });

  afterAll(async () => {
    await Promise.all([offGateway?.stop(), offPartition?.stop()]);
    await Promise.all([offEtcd?.stop(), offMinio?.stop()]);
  });

  it("puts the caller's trace_id on the gateway's and the partition's lines of the request", async () => {
    const traceId = randomBytes(16).toString('hex');
    const admin = new MeshworkClient({ baseUrl: offGateway.url, token: offPartition.adminToken });
    const user = await admin.createUser('untraced');
    const res = await fetch(`${offGateway.url}/v1/me`, {
      headers: { authorization: `Bearer ${user.token}`, traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` },
    });
    expect(res.status).toBe(200);
    const served = (file: string): Record<string, unknown>[] =>
      logLines(file).filter((l) => l.msg === 'Served request' && l.trace_id === traceId);
    const partitionLog = join(offPartition.dir, 'partition.log');
    const [gatewayLine, partitionLine] = await waitFor(
      () => {
        const g = served(offGateway.logFile);
        const p = served(partitionLog);
        return g.length > 0 && p.length > 0 ? [g[0]!, p[0]!] : undefined;
      },
      { description: 'both processes to log the request', timeoutMs: 10_000 },
    );
    expect(gatewayLine).toMatchObject({ role: 'gateway', route: '/v1/me', status: 200 });
    expect(partitionLine).toMatchObject({ role: 'partition', route: '/v1/me', status: 200 });
    // No span is made with export off: the line joins the caller's trace, nothing more.
    expect(partitionLine).not.toHaveProperty('span_id');
    // A request without a traceparent logs no trace id.
    expect((await fetch(`${offGateway.url}/v1/me`, { headers: { authorization: `Bearer ${user.token}` } })).status).toBe(200);
    await waitFor(() => logLines(partitionLog).filter((l) => l.msg === 'Served request' && l.route === '/v1/me').length >= 2 || undefined, {
      description: 'the second request to be logged',
      timeoutMs: 10_000,
    });
    const lines = logLines(partitionLog).filter((l) => l.msg === 'Served request' && l.route === '/v1/me');
    expect(lines.at(-1)).not.toHaveProperty('trace_id');
  });
});
