// The authorization matrix: every route of docs/api.md, asked by every kind of caller, about an
// object or device that exists and about one that does not, against a real partition with its
// own etcd and MinIO (so it may use the whole slot space). The expected statuses are a table
// here, and docs/api.md's "Authorization" section must print the same table (checked below).
// Zero leaks: for a caller who may not see an object or device, the answer about one that
// exists must equal, byte for byte apart from the id, the answer about one that does not.
// Block routes follow possession: a block is there, readable and committable only for a caller
// who uploaded it or reads an entry naming it; for anyone else it is exactly an absent block.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshworkClient, type RawResponse } from '@meshwork/client';
import { startEtcd, type EtcdServer } from '../../../e2e/harness/etcd.ts';
import { startMinio, type MinioServer } from '../../../e2e/harness/minio.ts';
import { startPartition, unthrottledEnv, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';
import { mintIdInSlot, slotOf } from '../slots.ts';

/** The callers, in the order of the table's columns. */
const callers = [
  'owner',
  'owner account',
  'writer',
  'reader',
  'non-member',
  "other user's device",
  'revoked device',
  'administrator',
  'no token',
  'malformed token',
] as const;
type Caller = (typeof callers)[number];

/** Callers who may not see the fixture's object or the owner's devices: their answers must not tell it exists. */
const strangers: readonly Caller[] = ['non-member', "other user's device"];

/** What a request is about: the fixture's object (or device), or an id of the same kind and slot that names nothing. */
type Target = 'existing' | 'missing';

/** The ids a request may name. */
interface World {
  objectId: string;
  /** The version of the fixture's file `doc.txt`, also a valid changes cursor. */
  version: string;
  /** A device of the owner other than the callers, for `DELETE /v1/devices/{id}`. */
  spareDeviceId: string;
  /** The sha256 of the one block of `doc.txt`. */
  blockSha: string;
  /** The owner's user id, for the administrator's quota route. */
  ownerUserId: string;
}

interface Request {
  method: string;
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
}

interface RouteCase {
  /** The route as docs/api.md names it. */
  route: string;
  /** Statuses per caller, in the order of `callers`, about the existing object or device. */
  existing: string;
  /** The same about one that does not exist; absent for routes that name no object or device. */
  missing?: string;
  /** The request builds its own world (it deletes or changes what other cells use). */
  fresh?: boolean;
  request(world: World, target: Target): Request;
}

const path = 'doc.txt';
/** The owner's password, set before the matrix runs (and set again, unchanged, by its own row). */
const ownerPassword = 'the owner password';
/** A block nobody uploaded: what every block route answers about "none such". */
const absentBlock = new TextEncoder().encode('a block that no caller ever uploaded');
const sha256Of = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
const absentSha = sha256Of(absentBlock);

/** A POST that creates something named. */
const createNamed = (route: string): Request => ({ method: 'POST', path: route, body: { name: 'new' } });

/** Every route of docs/api.md; the statuses are in the order of `callers`. */
const routes: RouteCase[] = [
  // Accounts
  { route: 'POST /v1/users', existing: '403 403 403 403 403 403 401 201 401 401', request: () => createNamed('/v1/users') },
  { route: 'POST /v1/devices', existing: '403 201 403 403 201 403 401 403 401 401', request: () => createNamed('/v1/devices') },
  {
    route: 'GET /v1/devices',
    existing: '200 200 200 200 200 200 401 403 401 401',
    request: () => ({ method: 'GET', path: '/v1/devices' }),
  },
  {
    route: 'DELETE /v1/devices/{id}',
    existing: '403 204 404 404 404 404 401 403 401 401',
    missing: '404 404 404 404 404 404 401 403 401 401',
    fresh: true,
    request: (w, t) => ({
      method: 'DELETE',
      path: `/v1/devices/${t === 'existing' ? w.spareDeviceId : missingLike(w.spareDeviceId, 'd')}`,
    }),
  },
  {
    route: 'POST /v1/me/token',
    existing: '403 200 403 403 200 403 401 403 401 401',
    request: () => ({ method: 'POST', path: '/v1/me/token' }),
  },
  { route: 'GET /v1/me', existing: '200 200 200 200 200 200 401 403 401 401', request: () => ({ method: 'GET', path: '/v1/me' }) },
  // Sign-in (ADR 42): the matrix's callers hold tokens, not sessions; sign-in takes none and ignores them.
  {
    route: 'PUT /v1/users/{id}/password',
    existing: '403 204 403 403 403 403 401 204 401 401',
    missing: '403 403 403 403 403 403 401 404 401 401',
    request: (w, t) => ({
      method: 'PUT',
      path: `/v1/users/${t === 'existing' ? w.ownerUserId : missingLike(w.ownerUserId, 'u')}/password`,
      body: { password: ownerPassword },
    }),
  },
  {
    route: 'POST /v1/users/{id}/sessions',
    existing: '201 201 201 201 201 201 201 201 201 201',
    request: (w) => ({ method: 'POST', path: `/v1/users/${w.ownerUserId}/sessions`, body: { password: ownerPassword } }),
  },
  {
    route: 'GET /v1/me/session',
    existing: '403 403 403 403 403 403 401 403 401 401',
    request: () => ({ method: 'GET', path: '/v1/me/session' }),
  },
  {
    route: 'DELETE /v1/me/session',
    existing: '403 403 403 403 403 403 401 403 401 401',
    request: () => ({ method: 'DELETE', path: '/v1/me/session' }),
  },
  {
    route: 'DELETE /v1/me/sessions',
    existing: '403 200 403 403 200 403 401 403 401 401',
    request: () => ({ method: 'DELETE', path: '/v1/me/sessions' }),
  },
  // Objects
  { route: 'POST /v1/objects', existing: '201 201 201 201 201 201 401 403 401 401', request: () => createNamed('/v1/objects') },
  {
    route: 'GET /v1/objects',
    existing: '200 200 200 200 200 200 401 403 401 401',
    request: () => ({ method: 'GET', path: '/v1/objects' }),
  },
  objectRoute('GET /v1/objects/{id}', '200 200 200 200 404 404 401 403 401 401', false, (id) => ({
    method: 'GET',
    path: `/v1/objects/${id}`,
  })),
  objectRoute('PATCH /v1/objects/{id}', '200 200 200 403 404 404 401 403 401 401', true, (id) => ({
    method: 'PATCH',
    path: `/v1/objects/${id}`,
    body: { name: 'renamed' },
  })),
  objectRoute('DELETE /v1/objects/{id}', '204 204 403 403 404 404 401 403 401 401', true, (id) => ({
    method: 'DELETE',
    path: `/v1/objects/${id}`,
  })),
  objectRoute('PUT /v1/objects/{id}/members/{userId}', '200 200 403 403 404 404 401 403 401 401', true, (id) => ({
    method: 'PUT',
    path: `/v1/objects/${id}/members/${users.stranger}`,
    body: { role: 'reader' },
  })),
  objectRoute('DELETE /v1/objects/{id}/members/{userId}', '204 204 403 403 404 404 401 403 401 401', true, (id) => ({
    method: 'DELETE',
    path: `/v1/objects/${id}/members/${users.reader}`,
  })),
  // Entries and delta sync
  objectRoute('PUT /v1/objects/{id}/entries/{path}', '201 201 201 403 404 404 401 403 401 401', true, (id) => ({
    method: 'PUT',
    path: `/v1/objects/${id}/entries/new-dir`,
    body: { kind: 'directory' },
    headers: { 'if-none-match': '*' },
  })),
  objectRoute('DELETE /v1/objects/{id}/entries/{path}', '200 200 200 403 404 404 401 403 401 401', true, (id, w) => ({
    method: 'DELETE',
    path: `/v1/objects/${id}/entries/${path}`,
    headers: { 'if-match': `"${w.version}"` },
  })),
  objectRoute('GET /v1/objects/{id}/entries/{path}', '200 200 200 200 404 404 401 403 401 401', false, (id) => ({
    method: 'GET',
    path: `/v1/objects/${id}/entries/${path}`,
  })),
  objectRoute('GET /v1/objects/{id}/entries', '200 200 200 200 404 404 401 403 401 401', false, (id) => ({
    method: 'GET',
    path: `/v1/objects/${id}/entries`,
  })),
  objectRoute('GET /v1/objects/{id}/changes', '200 200 200 200 404 404 401 403 401 401', false, (id, w) => ({
    method: 'GET',
    path: `/v1/objects/${id}/changes?cursor=${w.version}`,
  })),
  // Content
  objectRoute('GET /v1/objects/{id}/content/{path}', '200 200 200 200 404 404 401 403 401 401', false, (id) => ({
    method: 'GET',
    path: `/v1/objects/${id}/content/${path}`,
  })),
  // Change notification
  {
    route: 'GET /v1/notifications',
    existing: '200 200 200 200 200 200 401 403 401 401',
    request: () => ({ method: 'GET', path: '/v1/notifications' }),
  },
  // Presence and sources: only the device itself, whether or not a device of that id exists.
  {
    route: 'PUT /v1/devices/{id}/presence',
    existing: '200 403 403 403 403 403 401 403 401 401',
    missing: '403 403 403 403 403 403 401 403 401 401',
    request: (_w, t) => ({
      method: 'PUT',
      path: `/v1/devices/${t === 'existing' ? ownerDeviceId : missingLike(ownerDeviceId, 'd')}/presence`,
      body: { endpoints: ['https://198.51.100.9:7443'], holds: [] },
    }),
  },
  {
    route: 'DELETE /v1/devices/{id}/presence',
    existing: '204 403 403 403 403 403 401 403 401 401',
    missing: '403 403 403 403 403 403 401 403 401 401',
    request: (_w, t) => ({
      method: 'DELETE',
      path: `/v1/devices/${t === 'existing' ? ownerDeviceId : missingLike(ownerDeviceId, 'd')}/presence`,
    }),
  },
  objectRoute('GET /v1/objects/{id}/content/{path}/sources', '200 200 200 200 404 404 401 403 401 401', false, (id) => ({
    method: 'GET',
    path: `/v1/objects/${id}/content/${path}/sources`,
  })),
  // The relay and remote access (ADR 52). A plain GET of the relay is 400 for the device itself
  // (it must be a WebSocket upgrade); remote routes reach the device's peer API, and the device
  // has no relay here: a caller who may reach it gets 503 device_offline.
  {
    route: 'GET /v1/devices/{id}/relay',
    existing: '400 403 403 403 403 403 401 403 401 401',
    missing: '403 403 403 403 403 403 401 403 401 401',
    request: (_w, t) => ({
      method: 'GET',
      path: `/v1/devices/${t === 'existing' ? ownerDeviceId : missingLike(ownerDeviceId, 'd')}/relay`,
    }),
  },
  {
    route: 'GET /v1/devices/{id}/remote/files/{objectId}/{path}',
    existing: '503 503 503 503 404 404 401 403 401 401',
    missing: '404 404 404 404 404 404 401 403 401 401',
    request: (w, t) => ({
      method: 'GET',
      path: `/v1/devices/${t === 'existing' ? ownerDeviceId : missingLike(ownerDeviceId, 'd')}/remote/files/${w.objectId}/${path}`,
    }),
  },
  {
    route: 'GET /v1/devices/{id}/remote/blocks/{sha256}',
    existing: '403 403 403 403 403 403 401 403 401 401',
    missing: '403 403 403 403 403 403 401 403 401 401',
    request: (w, t) => ({
      method: 'GET',
      path: `/v1/devices/${t === 'existing' ? ownerDeviceId : missingLike(ownerDeviceId, 'd')}/remote/blocks/${w.blockSha}`,
      headers: { 'meshwork-grant': 'not-a-grant' },
    }),
  },
  // Grant keys (ADR 51): any principal, the administrator too.
  {
    route: 'GET /v1/grants/keys',
    existing: '200 200 200 200 200 200 401 200 401 401',
    request: () => ({ method: 'GET', path: '/v1/grants/keys' }),
  },
  // Operations: no token needed, and a token of any kind is not looked at.
  ...['/v1/slots', '/livez', '/readyz', '/healthz/deep', '/metrics'].map((route): RouteCase => ({
    route: `GET ${route}`,
    existing: '200 200 200 200 200 200 200 200 200 200',
    request: () => ({ method: 'GET', path: route }),
  })),
  // Blocks: "existing" is the block of doc.txt, "none such" a block nobody uploaded. A stranger's
  // `missing` lists the block as missing, exactly as an absent one (compared byte for byte).
  {
    route: 'POST /v1/blocks/missing',
    existing: '200 200 200 200 200 200 401 403 401 401',
    missing: '200 200 200 200 200 200 401 403 401 401',
    request: (w, t) => ({ method: 'POST', path: '/v1/blocks/missing', body: { blocks: [t === 'existing' ? w.blockSha : absentSha] } }),
  },
  // A stranger's `locations` names the block unreadable, exactly as an absent one.
  {
    route: 'POST /v1/blocks/locations',
    existing: '200 200 200 200 200 200 401 403 401 401',
    missing: '200 200 200 200 200 200 401 403 401 401',
    request: (w, t) => ({ method: 'POST', path: '/v1/blocks/locations', body: { blocks: [t === 'existing' ? w.blockSha : absentSha] } }),
  },
  // A stranger's `uploads` lists the block as one to upload, and its `uploaded` confirms nothing,
  // exactly as for an absent one (whether anyone stored a block is not the caller's to learn).
  ...(['uploads', 'uploaded'] as const).map((name): RouteCase => ({
    route: `POST /v1/blocks/${name}`,
    existing: '200 200 200 200 200 200 401 403 401 401',
    missing: '200 200 200 200 200 200 401 403 401 401',
    request: (w, t) => ({
      method: 'POST',
      path: `/v1/blocks/${name}`,
      body: { blocks: [{ sha256: t === 'existing' ? w.blockSha : absentSha, size: 100 }] },
    }),
  })),
  {
    route: 'GET /v1/blocks/{sha256}',
    existing: '200 200 200 200 404 404 401 403 401 401',
    missing: '404 404 404 404 404 404 401 403 401 401',
    request: (w, t) => ({ method: 'GET', path: `/v1/blocks/${t === 'existing' ? w.blockSha : absentSha}` }),
  },
  // Uploading is how a caller proves possession: any user may upload a block whose bytes it has.
  // Each cell uploads bytes of its own, so that no caller comes to hold the fixture's block.
  {
    route: 'PUT /v1/blocks/{sha256}',
    existing: '201 201 201 201 201 201 401 403 401 401',
    request: () => {
      const bytes = new Uint8Array(randomBytes(64));
      return { method: 'PUT', path: `/v1/blocks/${sha256Of(bytes)}`, body: bytes, headers: { 'content-type': 'application/octet-stream' } };
    },
  },
  {
    route: 'PUT /v1/users/{id}/quota',
    existing: '403 403 403 403 403 403 401 200 401 401',
    missing: '403 403 403 403 403 403 401 404 401 401',
    request: (w, t) => ({
      method: 'PUT',
      path: `/v1/users/${t === 'existing' ? w.ownerUserId : missingLike(w.ownerUserId, 'u')}/quota`,
      body: { quotaBytes: null },
    }),
  },
];

/** A route about the fixture's object, or about a missing object of the same slot. */
function objectRoute(route: string, existing: string, fresh: boolean, build: (objectId: string, world: World) => Request): RouteCase {
  // About an object that does not exist, every caller with a user's token is answered 404; the others as before.
  const missing = existing
    .split(' ')
    .map((status, i) => (i < callers.indexOf('revoked device') ? '404' : status))
    .join(' ');
  return { route, existing, missing, fresh, request: (w, t) => build(t === 'existing' ? w.objectId : missingLike(w.objectId, 'o'), w) };
}

/** An id of the same kind and slot as `id` that names nothing (the same partition answers, and would answer 404). */
function missingLike(id: string, prefix: string): string {
  const cached = missingIds.get(id);
  if (cached !== undefined) return cached;
  const other = mintIdInSlot(prefix, slotOf(id));
  missingIds.set(id, other);
  return other;
}
const missingIds = new Map<string, string>();

let etcd: EtcdServer;
let minio: MinioServer;
let partition: RunningPartition;
let admin: MeshworkClient;
let ownerDevice: MeshworkClient;
let ownerDeviceId: string;
const users = { owner: '', writer: '', reader: '', stranger: '' };
const tokens = new Map<Caller, string | null>();
let shared: World;

beforeAll(async () => {
  [etcd, minio] = await Promise.all([startEtcd({ name: 'etcd-authorization' }), startMinio({ bucket: 'authorization' })]);
  partition = await startPartition({ etcdEndpoint: etcd.endpoint, minio }, { partition: 'authorization', env: unthrottledEnv });
  admin = new MeshworkClient({ baseUrl: partition.url, token: partition.adminToken, retry: { maxAttempts: 1 } });
  const account = async (name: string): Promise<{ id: string; client: MeshworkClient }> => {
    const user = await admin.createUser(name);
    return { id: user.id, client: admin.as(user.token) };
  };
  const [owner, writer, reader, stranger] = await Promise.all([
    account('owner'),
    account('writer'),
    account('reader'),
    account('stranger'),
  ]);
  users.owner = owner.id;
  const set = await admin.raw('PUT', `/v1/users/${owner.id}/password`, { body: { password: ownerPassword } });
  if (set.status !== 204) throw new Error(`setting the owner's password answered ${set.status}`);
  users.writer = writer.id;
  users.reader = reader.id;
  users.stranger = stranger.id;
  const device = await owner.client.registerDeviceClient('owner-laptop');
  ownerDevice = device;
  ownerDeviceId = device.deviceId;
  const revoked = await owner.client.registerDeviceClient('lost-phone');
  await owner.client.deleteDevice(revoked.deviceId);
  tokens.set('owner', device.token ?? null);
  tokens.set('owner account', owner.client.token ?? null);
  tokens.set('writer', (await writer.client.registerDevice('writer-laptop')).token);
  tokens.set('reader', (await reader.client.registerDevice('reader-laptop')).token);
  tokens.set('non-member', stranger.client.token ?? null);
  tokens.set("other user's device", (await stranger.client.registerDevice('stranger-laptop')).token);
  tokens.set('revoked device', revoked.token ?? null);
  tokens.set('administrator', partition.adminToken);
  tokens.set('no token', null);
  tokens.set('malformed token', 'mwd.not-a-token');
  shared = await buildWorld();
}, 120_000);

afterAll(async () => {
  await partition?.stop();
  await Promise.all([etcd?.stop(), minio?.stop()]);
});

/** A fresh object of the owner shared with the writer and the reader, holding `doc.txt`, and a spare device of the owner. */
async function buildWorld(): Promise<World> {
  const objectId = (await ownerDevice.createObject({ name: 'Matrix' })).id;
  await ownerDevice.setMember(objectId, users.writer, 'writer');
  await ownerDevice.setMember(objectId, users.reader, 'reader');
  // Bytes of its own per world: a caller made a member of a fresh world's object must not come to
  // possess the block of the shared world's file.
  const contentBytes = new Uint8Array(randomBytes(48));
  const { entry } = await ownerDevice.upload(objectId, path, contentBytes, { ifNoneMatch: '*' });
  const blockSha = entry.blocks[0]?.sha256;
  if (blockSha !== sha256Of(contentBytes)) throw new Error(`doc.txt should be one block, ${sha256Of(contentBytes)}`);
  // The owner's account token as it is now: the rotation route replaces it.
  const spare = await admin.as(tokens.get('owner account') ?? '').registerDevice('spare');
  return { objectId, version: entry.version, spareDeviceId: spare.id, blockSha, ownerUserId: users.owner };
}

async function ask(caller: Caller, request: Request): Promise<RawResponse> {
  const token = tokens.get(caller);
  if (token === undefined) throw new Error(`no token for ${caller}`);
  const answer = await admin.raw(request.method, request.path, { body: request.body, headers: request.headers, token });
  // A rotated account token replaces the caller's: the old one no longer works.
  if (request.path === '/v1/me/token' && answer.status === 200) tokens.set(caller, (answer.body as { token: string }).token);
  return answer;
}

function statusesOf(row: string): Record<Caller, number> {
  const statuses = row.split(' ').map(Number);
  if (statuses.length !== callers.length) throw new Error(`a row needs ${callers.length} statuses: ${row}`);
  return Object.fromEntries(callers.map((c, i) => [c, statuses[i]!])) as Record<Caller, number>;
}

/** The answer with the ids of the request's target written as placeholders, for comparing existing with missing. */
function withoutIds(answer: RawResponse, world: World): string {
  let text = answer.text;
  for (const id of [world.objectId, world.spareDeviceId, ownerDeviceId]) {
    text = text.replaceAll(id, '{id}').replaceAll(missingLike(id, id[0]!), '{id}');
  }
  text = text.replaceAll(world.blockSha, '{sha256}').replaceAll(absentSha, '{sha256}');
  return `${answer.status} ${text}`;
}

const cells = routes.flatMap((r) =>
  callers.flatMap((caller) =>
    (r.missing === undefined ? (['existing'] as const) : (['existing', 'missing'] as const)).map((target) => ({
      route: r,
      caller,
      target,
      status: statusesOf(target === 'existing' ? r.existing : r.missing!)[caller],
    })),
  ),
);

describe('the authorization matrix', () => {
  it.each(cells.map((c) => [c.route.route, c.caller, c.target, c.status, c] as const))(
    '%s by %s (%s) → %i',
    async (_route, caller, target, status, cell) => {
      const world = cell.route.fresh ? await buildWorld() : shared;
      const answer = await ask(caller, cell.route.request(world, target));
      expect({ status: answer.status, code: (answer.body as { error?: { code: string } } | undefined)?.error?.code }).toMatchObject({
        status,
      });
      if (status === 401) expect(answer.headers['www-authenticate']).toMatch(/^Bearer/);
    },
  );

  it.each(routes.filter((r) => r.missing !== undefined).flatMap((r) => strangers.map((caller) => [r.route, caller, r] as const)))(
    '%s by %s answers exactly as about nothing',
    async (_route, caller, r) => {
      const world = r.fresh ? await buildWorld() : shared;
      const existing = await ask(caller, r.request(world, 'existing'));
      const missing = await ask(caller, r.request(world, 'missing'));
      expect(withoutIds(existing, world)).toBe(withoutIds(missing, world));
    },
  );

  it("is the table printed in docs/api.md's Authorization section", () => {
    const docs = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '../../../docs/api.md'), 'utf8');
    const section = /\n## Authorization\n([\s\S]*?)(?=\n## )/.exec(docs)?.[1] ?? '';
    const printed = section
      .split('\n')
      .filter((line) => /^\| `[A-Z]+ /.test(line))
      .map((line) => line.replace(/\s+/g, ' ').trim());
    const expected = routes.flatMap((r) => [
      `| \`${r.route}\` | ${r.existing.split(' ').join(' | ')} |`,
      ...(r.missing === undefined ? [] : [`| \`${r.route}\` (none such) | ${r.missing.split(' ').join(' | ')} |`]),
    ]);
    expect(printed).toEqual(expected);
  });
});
