// Property-based fuzzing of every route of a real partition process: random methods, paths
// built from the route table with random segments (undecodable percent-encoding, dot segments,
// very long names), random headers (Content-Type, Content-Encoding, If-Match, Range, tokens
// valid, invalid and of another user) and random bodies (JSON of the wrong shape, binary, empty,
// compressed, over the JSON limit). No answer may be a 5xx other than a documented 503, every
// error answer carries the JSON envelope, the log names no unexpected error, and the process is
// live and ready afterwards.
// Bounded: at most `maxRequests` requests or `timeLimitMs`, whichever comes first, one at a
// time. This file starts its own etcd and MinIO, so it may use the whole slot space.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type EtcdServer } from '../../../e2e/harness/etcd.ts';
import { startMinio, type MinioServer } from '../../../e2e/harness/minio.ts';
import { startPartition, unthrottledEnv, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';
import { apiErrorCatalogue } from '@meshwork/contract';
import { MeshworkClient, RequestAbortedError, type DeviceClient } from '@meshwork/client';
import { rawHttp } from '@meshwork/client/node';

const maxRequests = 8000;
const timeLimitMs = 45_000;
/** A request that gets no answer in this time is a long poll waiting (its default wait is 30 s), not a failure. */
const answerTimeoutMs = 3000;
const MiB = 1024 * 1024;

/** The 503 codes docs/api.md names; any other 5xx is a bug. */
const documented503 = new Set(Object.entries(apiErrorCatalogue).flatMap(([code, entry]) => (entry.status === 503 ? [code] : [])));

let etcd: EtcdServer;
let minio: MinioServer;
let partition: RunningPartition;
let admin: MeshworkClient;
let alice: DeviceClient;
let aliceAccountToken: string;
let bob: DeviceClient;
let bobId: string;
let objectId: string;
let version: string;
let sha: string;
const agent = new Agent({ keepAlive: true, maxSockets: 4 });

beforeAll(async () => {
  [etcd, minio] = await Promise.all([startEtcd({ name: 'etcd-http-fuzz' }), startMinio({ bucket: 'http-fuzz' })]);
  partition = await startPartition({ etcdEndpoint: etcd.endpoint, minio }, { partition: 'http-fuzz', env: unthrottledEnv });
  admin = new MeshworkClient({ baseUrl: partition.url, token: partition.adminToken });
  const aliceUser = await admin.createUser('alice');
  aliceAccountToken = aliceUser.token;
  alice = await admin.as(aliceUser.token).registerDeviceClient('alice-laptop');
  const bobUser = await admin.as(partition.adminToken).createUser('bob');
  bobId = bobUser.id;
  bob = await admin.as(bobUser.token).registerDeviceClient('bob-laptop');
  objectId = (await alice.createObject({ name: 'fuzzed' })).id;
  const data = randomBytes(40_000);
  sha = createHash('sha256').update(data.subarray(0, 32_768)).digest('hex');
  const up = await alice.upload(objectId, 'dir/file.bin', data, { ifNoneMatch: '*' }, { blockSize: 32_768 });
  version = up.entry.version;
});

afterAll(async () => {
  agent.destroy();
  await partition?.stop();
  await Promise.allSettled([etcd?.stop(), minio?.stop()]);
});

// --- the request generator

const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/);
const junk = fc.string({ unit: 'binary', maxLength: 40 }).map((s) => encodeURIComponent(s));

/** A path segment: a real id or name, or something a client should not send. */
const segment = (real: () => string): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.constant(null).map(real) },
    { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{1,70}$/) },
    { weight: 2, arbitrary: fc.constantFrom('%ff', '%zz', '%C0%AF', '%E0%A4%A', '%', '%00', '%2e%2e', '.', '..', '', '%2F') },
    { weight: 1, arbitrary: fc.integer({ min: 256, max: 3000 }).map((n) => 'x'.repeat(n)) },
    { weight: 1, arbitrary: junk },
  );

/** An entry path of one or more segments. */
const entryPath = fc
  .array(
    segment(() => 'dir'),
    { minLength: 0, maxLength: 4 },
  )
  .chain((dirs) => segment(() => 'file.bin').map((last) => [...dirs, last].join('/')));

const routes: fc.Arbitrary<string>[] = [
  fc.constantFrom(
    '/v1/users',
    '/v1/devices',
    '/v1/me',
    '/v1/objects',
    '/v1/slots',
    '/v1/notifications',
    '/v1/blocks/missing',
    '/v1/blocks/locations',
    '/v1/blocks/uploads',
    '/v1/blocks/uploaded',
    '/v1/grants/keys',
  ),
  fc.constantFrom('/livez', '/readyz', '/metrics', '/healthz/deep', '/v1/nowhere', '/', '/v1'),
  segment(() => objectId).map((id) => `/v1/objects/${id}`),
  fc
    .tuple(
      segment(() => objectId),
      segment(() => bobId),
    )
    .map(([id, user]) => `/v1/objects/${id}/members/${user}`),
  segment(() => objectId).map((id) => `/v1/objects/${id}/entries`),
  segment(() => objectId).map((id) => `/v1/objects/${id}/changes`),
  fc
    .tuple(
      segment(() => objectId),
      entryPath,
    )
    .map(([id, path]) => `/v1/objects/${id}/entries/${path}`),
  fc
    .tuple(
      segment(() => objectId),
      entryPath,
    )
    .map(([id, path]) => `/v1/objects/${id}/content/${path}`),
  fc
    .tuple(
      segment(() => objectId),
      entryPath,
    )
    .map(([id, path]) => `/v1/objects/${id}/content/${path}/sources`),
  fc
    .oneof(
      segment(() => sha),
      hex64,
    )
    .map((s) => `/v1/blocks/${s}`),
  segment(() => alice.deviceId).map((id) => `/v1/devices/${id}/presence`),
  // The relay and remote access (ADR 52).
  segment(() => alice.deviceId).map((id) => `/v1/devices/${id}/relay`),
  fc
    .tuple(
      segment(() => alice.deviceId),
      segment(() => objectId),
      entryPath,
    )
    .map(([device, id, path]) => `/v1/devices/${device}/remote/files/${id}/${path}`),
  fc
    .tuple(
      segment(() => alice.deviceId),
      fc.oneof(
        segment(() => sha),
        hex64,
      ),
    )
    .map(([device, s]) => `/v1/devices/${device}/remote/blocks/${s}`),
  // Sign-in (ADR 42).
  fc.constantFrom('/v1/me/session', '/v1/me/sessions'),
  segment(() => bobId).map((id) => `/v1/users/${id}/sessions`),
  segment(() => bobId).map((id) => `/v1/users/${id}/password`),
];

const queryValue = fc.oneof(fc.constantFrom('0', '1', '-1', '61', 'abc', '1.5', '99999999999999999', '%ff', ''), junk);
const query = fc
  .array(fc.tuple(fc.constantFrom('cursor', 'limit', 'page', 'wait', 'version', 'x'), queryValue), { maxLength: 4 })
  .map((pairs) => (pairs.length === 0 ? '' : `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`));

const headers = fc.record(
  {
    authorization: fc.oneof(
      fc.constant(null).map(() => `Bearer ${alice.token!}`),
      fc.constant(null).map(() => `Bearer ${aliceAccountToken}`),
      fc.constant(null).map(() => `Bearer ${bob.token!}`),
      fc.constant(null).map(() => `Bearer ${partition.adminToken}`),
      fc.constantFrom('Bearer mwd.dXYZ.nope', 'Bearer ', 'Basic YTpi', 'Bearer mwu..', 'bearer'),
    ),
    'content-type': fc.constantFrom(
      'application/json',
      'application/json; charset=utf-8',
      'application/json; charset=latin1',
      'text/plain',
      'application/octet-stream',
      'x',
    ),
    'content-encoding': fc.constantFrom('gzip', 'deflate', 'br', 'compress', 'identity', 'zz'),
    'if-match': fc.oneof(
      fc.constantFrom('*', '"1"', 'W/"1"', 'nope', '""'),
      fc.constant(null).map(() => `"${version}"`),
    ),
    'if-none-match': fc.constantFrom('*', '"1"', 'nope'),
    range: fc.constantFrom('bytes=0-10', 'bytes=-5', 'bytes=99999999-', 'bytes=5-1', 'bytes=0-1,3-4', 'lines=1-2', 'bytes='),
    'if-range': fc.constantFrom('"x"', 'Wed, 21 Oct 2015 07:28:00 GMT'),
    cookie: fc.constantFrom(`mw_session=mws.s1.${'a'.repeat(43)}`, 'mw_session=garbage', 'mw_session=', 'a=b; mw_session'),
    'x-csrf-token': fc.constantFrom('x', ''),
    'sec-fetch-site': fc.constantFrom('cross-site', 'same-origin', 'none', 'weird'),
    origin: fc.constantFrom('null', 'http://evil.example', 'not a url'),
  },
  { requiredKeys: [] },
);

const jsonValue = fc.json({ maxDepth: 3 });
const body = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  { weight: 3, arbitrary: jsonValue.map((text) => Buffer.from(text)) },
  {
    weight: 3,
    arbitrary: fc
      .constantFrom(
        { kind: 'directory' },
        { kind: 'file', blocks: [] },
        { kind: 'file', blocks: [{ sha256: 'a'.repeat(64), size: 1 }] },
        { name: 'x' },
        { role: 'reader' },
        { blocks: ['b'.repeat(64)] },
        { endpoints: ['https://x:1'], holds: [] },
        { password: 'a password long enough' },
      )
      .map((value) => Buffer.from(JSON.stringify(value))),
  },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 4096 }).map((bytes) => Buffer.from(bytes)) },
  { weight: 1, arbitrary: fc.constant(Buffer.alloc(0)) },
  { weight: 1, arbitrary: jsonValue.map((text) => gzipSync(Buffer.from(text))) },
  { weight: 1, arbitrary: fc.constant(null).map(() => Buffer.alloc(2 * MiB + 1, 0x20)) },
);

/** One generated request. */
interface FuzzRequest {
  method: string;
  path: string;
  query: string;
  headers: Record<string, string>;
  body: Buffer | undefined;
}

const request: fc.Arbitrary<FuzzRequest> = fc.record({
  // The methods routes take most, so that most requests get past routing; the others still come.
  method: fc.oneof(
    { weight: 5, arbitrary: fc.constant('GET') },
    { weight: 3, arbitrary: fc.constantFrom('PUT', 'POST') },
    { weight: 2, arbitrary: fc.constant('DELETE') },
    { weight: 1, arbitrary: fc.constantFrom('HEAD', 'PATCH', 'OPTIONS', 'PROPFIND') },
  ),
  path: fc.oneof(...routes),
  query,
  headers,
  body,
});

// --- the property

interface Observed {
  status: number;
  code: string | undefined;
}

const statuses = new Map<number, number>();
let sent = 0;
let waiting = 0;

async function exchange(r: FuzzRequest): Promise<Observed | undefined> {
  sent++;
  const signal = AbortSignal.timeout(answerTimeoutMs);
  try {
    const res = await rawHttp(partition.url, r.method, `${r.path}${r.query}`, { headers: r.headers, body: r.body, agent, signal });
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    const envelope = res.body as { error?: { code?: unknown; message?: unknown } } | undefined;
    if (res.status >= 400 && r.method !== 'HEAD') {
      expect(res.headers['content-type'], `${r.method} ${r.path}: ${res.status} without JSON`).toMatch(/^application\/json/);
      expect(typeof envelope?.error?.code, `${r.method} ${r.path}: ${res.text.slice(0, 200)}`).toBe('string');
      expect(typeof envelope?.error?.message).toBe('string');
      expect(res.text).not.toMatch(/\n\s+at |\.ts:\d+/);
    }
    if (r.method === 'HEAD' && res.status >= 500) {
      // A HEAD answer has no body to carry the code. HEAD answers as GET would (RFC 9110 §9.3.2), so the same
      // request as a GET names it, and must fail the same way.
      const asGet = await exchange({ ...r, method: 'GET', body: undefined });
      // A GET still waiting as a long poll when the client gave up names nothing.
      if (asGet !== undefined) expect(asGet.status, `GET for HEAD ${r.path}`).toBe(res.status);
      return asGet;
    }
    return { status: res.status, code: typeof envelope?.error?.code === 'string' ? envelope.error.code : undefined };
  } catch (err) {
    // A long poll still waiting when the client gave up is a well-behaved server.
    if (err instanceof RequestAbortedError) {
      waiting++;
      return undefined;
    }
    throw err;
  }
}

describe('fuzzing every route', () => {
  it('never answers a 5xx other than a documented 503, always with the JSON envelope, and stays healthy', async () => {
    const started = Date.now();
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const observed = await exchange(r);
        if (observed === undefined || observed.status < 500) return;
        if (observed.status !== 503 || observed.code === undefined || !documented503.has(observed.code)) {
          throw new Error(`${r.method} ${r.path}${r.query} answered ${observed.status} ${observed.code ?? 'without a code'}`);
        }
      }),
      { numRuns: maxRequests, interruptAfterTimeLimit: timeLimitMs, markInterruptAsFailure: false, endOnFailure: true },
    );
    const seconds = (Date.now() - started) / 1000;
    const counts = JSON.stringify(Object.fromEntries(statuses));
    console.log(`Fuzzed ${sent} requests in ${seconds.toFixed(1)} s (${waiting} long polls left waiting); statuses ${counts}`);
    expect(sent).toBeGreaterThan(200);
    const client = new MeshworkClient({ baseUrl: partition.url });
    expect((await client.livez()).healthy).toBe(true);
    expect((await client.readyz()).healthy).toBe(true);
    expect(partition.process.exitStatus).toBeUndefined();
    // Not even a request whose answer nobody read (a long poll given up on) met an unexpected error.
    const unexpected = readFileSync(join(partition.dir, 'partition.log'), 'utf8')
      .split('\n')
      .filter((line) => line.includes('"msg":"Failed request with an unexpected error"'));
    expect(unexpected).toEqual([]);
  }, 120_000);
});
