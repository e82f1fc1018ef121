// The sync service against a real etcd this file starts for itself (no HTTP): change sets
// from the change feed's fast path and from a scan, paging at one snapshot, 410 for a cursor
// outside the retained history, and conditional writes (create, replace, the blind write's
// retry over a tombstone, a lost race, a moved object record) on the real transactions.
import { ApiError } from '@meshwork/contract';
import { Etcd3 } from 'etcd3';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type EtcdServer } from '../../../../e2e/harness/etcd.ts';
import { freePorts } from '../../../../e2e/harness/ports.ts';
import { waitFor } from '../../../../e2e/harness/wait.ts';
import { parsePageToken } from '../../cursor.ts';
import type { WritePrecondition } from '../../http/preconditions.ts';
import { MetadataStore, type EntryRecord, type ObjectRecord, type Versioned } from '../../stores/metadata-store.ts';
import { ChangeFeed } from '../change-feed.ts';
import { classifyFailure } from '../errors.ts';
import { ObjectAccess } from './access.ts';
import { runChanges, type ChangesDeps, type ChangesQuery } from './changes.ts';
import { conditionalWrite, type ConditionalWrite, type EntryWriteDeps } from './conditional-write.ts';
import { newObjectRecord } from './objects.ts';

const everySlot = [{ first: 0, last: 4095 }];
const logger = pino({ level: 'silent' });

let server: EtcdServer;
let etcd: Etcd3;
let metadata: MetadataStore;
let feed: ChangeFeed;

beforeAll(async () => {
  server = await startEtcd({ name: 'etcd-sync-service' });
  etcd = new Etcd3({ hosts: server.endpoint });
  metadata = new MetadataStore(etcd);
  feed = new ChangeFeed(etcd, everySlot, logger);
  await feed.start();
});

afterAll(async () => {
  await feed?.stop();
  etcd?.close();
  await server?.stop();
});

/** The metadata store with a record of which of its reads a change set made. */
function recordingReads(): { store: ChangesDeps['metadata']; calls: string[] } {
  const calls: string[] = [];
  const store: ChangesDeps['metadata'] = {
    readForChanges: (...args) => (calls.push('readForChanges'), metadata.readForChanges(...args)),
    objectHead: (...args) => (calls.push('objectHead'), metadata.objectHead(...args)),
    getEntries: (...args) => (calls.push('getEntries'), metadata.getEntries(...args)),
    changedEntries: (...args) => (calls.push('changedEntries'), metadata.changedEntries(...args)),
  };
  return { store, calls };
}

function directory(path: string, modifiedBy = 'd1'): EntryRecord {
  return { path, kind: 'directory', size: 0, blocks: [], contentHash: null, modifiedBy, mtime: new Date().toISOString(), deleted: false };
}

async function newObject(owner = 'u1'): Promise<Versioned<ObjectRecord>> {
  const record = newObjectRecord(owner, 'Synced', true, new Date());
  expect(await metadata.createObject(record)).toBe(true);
  return (await metadata.getObject(record.id))!;
}

function writeDeps(access = new ObjectAccess(metadata)): EntryWriteDeps {
  return { metadata, access };
}

async function write(
  objectId: string,
  path: string,
  precondition: WritePrecondition,
  deps = writeDeps(),
  blind = true,
  userId = 'u1',
): Promise<Versioned<EntryRecord>> {
  return (await conditionalWrite(deps, { objectId, userId, path, precondition, build: () => directory(path), blind })).entry;
}

/** A blind create of a directory, as a commit with If-None-Match: * is. */
function create(objectId: string, path: string, userId = 'u1'): ConditionalWrite {
  return { objectId, userId, path, precondition: { kind: 'create' }, build: () => directory(path), blind: true };
}

async function failure(promise: Promise<unknown>): Promise<ApiError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error('the call succeeded');
}

function changesQuery(deps: ChangesDeps, id: string, since: number, limit = 1000): ChangesQuery {
  return { deps, userId: 'u1', id, since, page: undefined, limit };
}

describe('changes', () => {
  it('answers from the change feed with one read once the feed has seen the change', async () => {
    const object = await newObject();
    const since = await metadata.currentRevision();
    await write(object.value.id, 'b', { kind: 'create' });
    const last = await write(object.value.id, 'a', { kind: 'create' });
    await waitFor(() => feed.seen >= last.version, { description: 'the change feed to see the writes', timeoutMs: 10_000, intervalMs: 10 });
    const { store, calls } = recordingReads();
    const result = await runChanges(
      changesQuery({ metadata: store, changeFeed: feed, access: new ObjectAccess(metadata) }, object.value.id, since),
    );
    expect(calls).toEqual(['readForChanges']);
    expect(result.body.changes.map((c) => c.path)).toEqual(['a', 'b']);
    expect(result.changed).toBe(true);
    expect(result.body.next).toBeNull();
    expect(Number(result.body.cursor)).toBeGreaterThanOrEqual(last.version);
  });

  it('scans with a minimum mod revision when the feed does not reach back to the cursor, with the same answer', async () => {
    const object = await newObject();
    const since = await metadata.currentRevision();
    await write(object.value.id, 'x', { kind: 'create' });
    await write(object.value.id, 'y', { kind: 'create' });
    // A feed started now (as after a restart) knows nothing older than its start.
    const late = new ChangeFeed(etcd, everySlot, logger);
    await late.start();
    try {
      const { store, calls } = recordingReads();
      const result = await runChanges(
        changesQuery({ metadata: store, changeFeed: late, access: new ObjectAccess(metadata) }, object.value.id, since),
      );
      expect(calls).toContain('changedEntries');
      expect(calls).not.toContain('readForChanges');
      expect(result.body.changes.map((c) => c.path)).toEqual(['x', 'y']);
    } finally {
      await late.stop();
    }
  });

  it('pages through a change set at the snapshot of its first page, whatever changes meanwhile', async () => {
    const object = await newObject();
    const id = object.value.id;
    const since = await metadata.currentRevision();
    for (const path of ['p1', 'p2', 'p3', 'p4', 'p5']) await write(id, path, { kind: 'create' });
    const deps: ChangesDeps = { metadata, changeFeed: feed, access: new ObjectAccess(metadata) };
    const first = await runChanges(changesQuery(deps, id, since, 2));
    const seen = first.body.changes.map((c) => c.path);
    const cursors = [first.body.cursor];
    // Written after the first page: a later change set's news, not this one's.
    await write(id, 'p0', { kind: 'create' });
    let next = first.body.next;
    while (next !== null) {
      const page = await runChanges({ ...changesQuery(deps, id, since, 2), page: parsePageToken(next) });
      seen.push(...page.body.changes.map((c) => c.path));
      cursors.push(page.body.cursor);
      next = page.body.next;
    }
    expect(seen).toEqual(['p1', 'p2', 'p3', 'p4', 'p5']);
    expect(cursors.length).toBe(3);
    expect(new Set(cursors).size).toBe(1);
    const after = await runChanges(changesQuery(deps, id, Number(cursors[0])));
    expect(after.body.changes.map((c) => c.path)).toEqual(['p0']);
  });

  it('answers 410 for a cursor older than the history floor and for one past the snapshot', async () => {
    const object = await newObject();
    const id = object.value.id;
    const since = await metadata.currentRevision();
    const created = await write(id, 'gone', { kind: 'create' });
    const deps = writeDeps();
    await conditionalWrite(deps, {
      objectId: id,
      userId: 'u1',
      path: 'gone',
      precondition: { kind: 'match', versions: [String(created.version)] },
      build: (current) => ({ ...current!.value, deleted: true }),
      blind: false,
    });
    await metadata.purgeTombstone(id, 'gone');
    const changes: ChangesDeps = { metadata, changeFeed: feed, access: new ObjectAccess(metadata) };
    expect(await failure(runChanges(changesQuery(changes, id, since)))).toMatchObject({
      status: 410,
      code: 'cursor_expired',
      details: { relist: true },
    });
    const future = (await metadata.currentRevision()) + 1000;
    expect(await failure(runChanges(changesQuery(changes, id, future)))).toMatchObject({ status: 410, code: 'cursor_expired' });
  });

  it('answers 404 to a caller who is not a member, from the feed and from a scan', async () => {
    const object = await newObject('u2');
    const since = await metadata.currentRevision();
    const last = await write(object.value.id, 'private', { kind: 'create' }, writeDeps(), true, 'u2');
    await waitFor(() => feed.seen >= last.version, { description: 'the change feed to see the write', timeoutMs: 10_000, intervalMs: 10 });
    for (const cursor of [since, 0]) {
      const { store, calls } = recordingReads();
      const query = changesQuery({ metadata: store, changeFeed: feed, access: new ObjectAccess(metadata) }, object.value.id, cursor);
      expect(await failure(runChanges(query))).toMatchObject({ status: 404, code: 'not_found' });
      // The feed reaches back to `since` but not to 0 (before it started).
      expect(calls.includes('readForChanges')).toBe(cursor === since);
    }
  });
});

describe('conditional writes', () => {
  it('creates, refuses a second create with 412 and what is there, and replaces the version held', async () => {
    const { value } = await newObject();
    const created = await conditionalWrite(writeDeps(), create(value.id, 'f'));
    expect(created.created).toBe(true);
    const again = await failure(write(value.id, 'f', { kind: 'create' }));
    expect(again).toMatchObject({
      status: 412,
      details: { currentVersion: String(created.entry.version) },
      headers: { ETag: `"${created.entry.version}"` },
    });
    const replaced = await conditionalWrite(writeDeps(), {
      objectId: value.id,
      userId: 'u1',
      path: 'f',
      precondition: { kind: 'match', versions: [String(created.entry.version)] },
      build: () => directory('f', 'd2'),
      blind: true,
    });
    expect(replaced.created).toBe(false);
    expect(replaced.entry.version).toBeGreaterThan(created.entry.version);
    expect((await metadata.getEntry(value.id, 'f'))?.value.modifiedBy).toBe('d2');
  });

  it('lets exactly one of two writes with the same If-Match win; the other gets 412 with the winner', async () => {
    const { value } = await newObject();
    const base = await write(value.id, 'race', { kind: 'create' });
    const precondition: WritePrecondition = { kind: 'match', versions: [String(base.version)] };
    const results = await Promise.allSettled([write(value.id, 'race', precondition), write(value.id, 'race', precondition)]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    const winner = (won[0] as PromiseFulfilledResult<Versioned<EntryRecord>>).value;
    expect((lost[0] as PromiseRejectedResult).reason).toMatchObject({ status: 412, details: { currentVersion: String(winner.version) } });
  });

  it('creates over a tombstone: the blind guess misses, the write reads the entry and succeeds', async () => {
    const { value } = await newObject();
    const first = await write(value.id, 't', { kind: 'create' });
    const tombstone = await conditionalWrite(writeDeps(), {
      objectId: value.id,
      userId: 'u1',
      path: 't',
      precondition: { kind: 'match', versions: [String(first.version)] },
      build: (current) => ({ ...current!.value, deleted: true }),
      blind: false,
    });
    const recreated = await conditionalWrite(writeDeps(), create(value.id, 't'));
    expect(recreated.created).toBe(true);
    expect(recreated.entry.version).toBeGreaterThan(tombstone.entry.version);
    expect((await metadata.getEntry(value.id, 't'))?.value.deleted).toBe(false);
  });

  it('retries with a fresh object record when the cached one moved (a rename), and refuses once access is gone', async () => {
    const object = await newObject();
    const id = object.value.id;
    const access = new ObjectAccess(metadata);
    const deps = writeDeps(access);
    await metadata.updateObject(object, { ...object.value, members: { ...object.value.members, u3: 'writer' } });
    const cached = await access.loadForWrite('u1', id, 'writer');
    expect(await metadata.updateObject(cached, { ...cached.value, name: 'Renamed' })).toBe(true);
    await write(id, 'after-rename', { kind: 'create' }, deps);
    expect((await access.loadForWrite('u1', id, 'writer')).value.name).toBe('Renamed');

    // u3 is cached as a writer; removing it moves the record, so its next write fails the compare and reads afresh.
    await access.loadForWrite('u3', id, 'writer');
    const current = (await metadata.getObject(id))!;
    const members = { ...current.value.members };
    delete members.u3;
    expect(await metadata.updateObject(current, { ...current.value, members })).toBe(true);
    const refused = await failure(conditionalWrite(deps, create(id, 'late', 'u3')));
    expect(refused).toMatchObject({ status: 404 });
    expect(await metadata.getEntry(id, 'late')).toBeUndefined();
  });
});

describe('an etcd that does not answer', () => {
  it('fails a change set with an error the app answers as 503 store_unavailable', async () => {
    const [port] = await freePorts(1);
    const unreachable = new Etcd3({ hosts: `http://127.0.0.1:${port}`, dialTimeout: 1000 });
    try {
      const store = new MetadataStore(unreachable);
      const query = changesQuery({ metadata: store, changeFeed: feed, access: new ObjectAccess(store) }, 'o-missing', 0);
      let caught: unknown;
      await runChanges(query).catch((err: unknown) => (caught = err));
      expect(caught).toBeDefined();
      const failure = classifyFailure(caught, 1);
      expect(failure.kind).toBe('store');
      expect(failure.error).toMatchObject({ status: 503, code: 'store_unavailable', headers: { 'Retry-After': '1' } });
    } finally {
      unreachable.close();
    }
  });
});
