// Metadata in etcd: users, devices, mesh objects with their members, entries with tombstones.
// Every write is one transaction that also checks the fence (the revision of this partition's
// owner record), so a paused former owner cannot commit after another process took over. While
// the process re-acquires its slots (its lease lapsed), writes are refused before reaching etcd.
import { MeshworkError } from '@meshwork/contract';
import { CompareResult, CompareTarget, Range, type Etcd3, type ICompare, type IKeyValue, type IRequestOp } from 'etcd3';
import {
  blockHolderKey,
  blockHoldersPrefix,
  blockRefKey,
  blockRefsPrefix,
  blockStateKey,
  blocksPrefix,
  refEpochKey,
  slotSegment,
  usageKey,
  usagePrefix,
} from './keys.ts';
import { currentSlotFence, SlotMovedError, withoutSlotFence } from './slot-fence.ts';
import {
  credentialKey,
  passwordKey,
  signInFailuresKey,
  userSessionKey,
  userSessionsPrefix,
  deviceKey,
  entriesPrefix,
  entryKey,
  membershipKey,
  membershipPrefix,
  objectHeadKey,
  objectKey,
  presenceKey,
  tombstoneKey,
  userDeviceKey,
  userDevicesPrefix,
  userKey,
} from './keys.ts';

/** A block an entry names: its sha256 (hex) and its size in bytes. */
export interface BlockRef {
  sha256: string;
  size: number;
}

export type Role = 'owner' | 'writer' | 'reader';

export interface UserRecord {
  id: string;
  name: string;
  createdAt: string;
  /** Storage quota in bytes (ADR 24); absent or null: unlimited. */
  quotaBytes?: number | null;
}

export interface DeviceRecord {
  id: string;
  userId: string;
  name: string;
  createdAt: string;
}

/**
 * What a token must match, kept apart from the user's or device's record (keys.ts,
 * `credentialKey`) so that every process can watch credentials alone and drop a revoked one
 * from its cache at once.
 */
export interface CredentialRecord {
  kind: 'user' | 'device' | 'session';
  userId: string;
  /** sha256 of the token's secret part; the token itself is never stored. */
  tokenHash: string;
  /** A sign-in session's end (ISO 8601); its keys also go with their lease then. */
  expiresAt?: string;
}

/** A user's stored password: the scrypt hash in the form passwords.ts writes, and when it was set. */
export interface PasswordRecord {
  hash: string;
  setAt: string;
}

/** A user's failed sign-ins in a row (ADR 42): how many, since when, and until when sign-in is locked (epoch ms). */
export interface SignInFailures {
  failures: number;
  firstAt: number;
  lockedUntil: number;
}

/** A device as its user's listing shows it: the record, and whether it has presence now. */
export interface ListedDevice extends DeviceRecord {
  online: boolean;
}

export interface ObjectRecord {
  id: string;
  name: string;
  owner: string;
  members: Record<string, Role>;
  cloudStorage: boolean;
  createdAt: string;
  /** Cursors below this revision get 410: tombstones older than it were purged. */
  historyFloor: number;
}

export interface EntryRecord {
  path: string;
  kind: 'file' | 'directory';
  size: number;
  blocks: BlockRef[];
  /** sha256 over the ordered block hashes; the content's strong ETag. Null for directories. */
  contentHash: string | null;
  /** Device (or user, for an account token) that made this version. */
  modifiedBy: string;
  mtime: string;
  deleted: boolean;
}

/** A record with its version: the etcd revision of its last change. */
export interface Versioned<T> {
  value: T;
  version: number;
}

/** Raised when a write found the fence moved: another process owns these slots now. */
export class OwnershipLostError extends MeshworkError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ownership_lost', message, options);
  }
}

/**
 * A metadata operation etcd could not complete (a record that kept changing under it): a store
 * failure, answered like the etcd client's own errors (503, retry), not a bug. `cause` says why.
 */
export class EtcdCallError extends MeshworkError {
  constructor(operation: string, cause: unknown) {
    super('etcd_call_failed', `etcd ${operation} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** Raised when the requested revision was compacted away by etcd. */
export class HistoryCompactedError extends MeshworkError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('cursor_expired', message, options);
  }
}

/** Why a conditional entry write did not happen. */
export type EntryWriteResult =
  | { ok: true; version: number }
  /** The entry is no longer at the expected version; `current` is what is there now. */
  | { ok: false; reason: 'entry'; current: Versioned<EntryRecord> | undefined }
  /** The object changed (renamed, shared, deleted) meanwhile: re-check access and retry. */
  | { ok: false; reason: 'object' }
  /** The collector dropped a block reference of this entry meanwhile: write the references again and retry. */
  | { ok: false; reason: 'refs' }
  /** The collector marked these blocks since their possession was proved: they are missing now. */
  | { ok: false; reason: 'blocks'; marked: string[] };

/**
 * How an entry's block references are kept (ADR 24): `inline`, written by the entry's own
 * transaction (up to 100 distinct blocks); `written` before it, by addBlockRefs, with the
 * reference epoch read before those writes.
 */
export type EntryRefs = { kind: 'inline'; blocks: readonly BlockToReference[] } | { kind: 'written'; epoch: number };

/** The most distinct blocks whose references an entry's own transaction writes (etcd allows 128 operations). */
export const inlineRefLimit = 100;

/** A block's state record; its absence means live (ADR 24). */
export interface BlockState {
  state: 'deleting' | 'deleted';
  /** When the state was entered (ISO time). */
  since: string;
  /** While deleting: the users whose holder records the mark removed, whose usage keys go too. */
  holders?: string[];
}

/** Everything etcd records about one block, read at one revision. */
export interface BlockRecords {
  /** The revision the records were read at. */
  revision: number;
  state: Versioned<BlockState> | undefined;
  holders: { userId: string; createdAt: string; version: number }[];
  refs: { objectId: string; path: string; version: number }[];
}

/** A block a commit is about to reference, with the state revision its possession was checked at (0: no state record). */
export interface BlockToReference {
  sha256: string;
  stateVersion: number;
}

/** What recordHolder answers: written (at `version`, the holder record's revision), or not, with the block's state as it is now. */
export type HolderWriteResult = { ok: true; version: number } | { ok: false; state: Versioned<BlockState> | undefined };

interface HolderWrite {
  sha256: string;
  userId: string;
  stateVersion: number;
  createdAt: string;
  size: number;
  resolve: (result: HolderWriteResult) => void;
  reject: (err: unknown) => void;
}

interface Fence {
  key: string;
  revision: number;
}

/** etcd's default limit on the operations of one transaction (`--max-txn-ops`). */
const maxOpsPerTxn = 128;

function decode<T>(kv: IKeyValue): Versioned<T> {
  return { value: JSON.parse(kv.value.toString('utf8')) as T, version: Number(kv.mod_revision) };
}

function rangeEnd(prefix: string): string {
  return Range.prefix(prefix).end.toString('utf8');
}

function isCompacted(err: unknown): boolean {
  return err instanceof Error && /compacted/i.test(err.message);
}

/** The etcd-backed metadata store of one partition process. */
export class MetadataStore {
  readonly #etcd: Etcd3;
  #fence: Fence | undefined;
  // Set while ownership is being re-acquired: what a write raises meanwhile.
  #suspended: (() => Error) | undefined;
  readonly #holderWrites: HolderWrite[] = [];

  constructor(etcd: Etcd3) {
    this.#etcd = etcd;
  }

  /** Sets the owner record every later write is fenced on, and lifts a suspension. */
  setFence(key: string, revision: number): void {
    this.#fence = { key, revision };
    this.#suspended = undefined;
  }

  /** Refuses every write with `refusal()` until setFence moves the fence to a new owner record. */
  suspendWrites(refusal: () => Error): void {
    this.#suspended = refusal;
  }

  /** The current etcd revision; for snapshots and readiness. */
  async currentRevision(): Promise<number> {
    const res = await this.#etcd.get('/mw/revision-probe').exec();
    return Number(res.header.revision);
  }

  async getUser(id: string): Promise<UserRecord | undefined> {
    return (await this.#getVersioned<UserRecord>(userKey(id)))?.value;
  }

  async getDevice(id: string): Promise<Versioned<DeviceRecord> | undefined> {
    return this.#getVersioned<DeviceRecord>(deviceKey(id));
  }

  /** The credential of a user or device, with its version; undefined once revoked (or never issued). */
  async getCredential(id: string): Promise<Versioned<CredentialRecord> | undefined> {
    return this.#getVersioned<CredentialRecord>(credentialKey(id));
  }

  /** Creates a user and its account credential in one transaction; false if the id is taken. */
  async createUser(user: UserRecord & { tokenHash: string }): Promise<boolean> {
    const { tokenHash, ...record } = user;
    const credential: CredentialRecord = { kind: 'user', userId: user.id, tokenHash };
    const result = await this.#txn(
      [{ key: userKey(user.id), mod: 0 }],
      [
        this.#etcd.put(userKey(user.id)).value(JSON.stringify(record)),
        this.#etcd.put(credentialKey(user.id)).value(JSON.stringify(credential)),
      ],
    );
    return result.succeeded;
  }

  /** Creates a device, its credential and its entry in the user's device index in one transaction; false if the id is taken. */
  async createDevice(device: DeviceRecord & { tokenHash: string }): Promise<boolean> {
    const { tokenHash, ...record } = device;
    const credential: CredentialRecord = { kind: 'device', userId: device.userId, tokenHash };
    const result = await this.#txn(
      [{ key: deviceKey(device.id), mod: 0 }],
      [
        this.#etcd.put(deviceKey(device.id)).value(JSON.stringify(record)),
        this.#etcd.put(credentialKey(device.id)).value(JSON.stringify(credential)),
        this.#etcd.put(userDeviceKey(device.userId, device.id)).value(''),
      ],
    );
    return result.succeeded;
  }

  /**
   * Replaces a user's account credential if it is still at `previous.version`: the old token
   * stops matching in the same write. False if it changed meanwhile (a concurrent rotation).
   */
  async replaceAccountCredential(userId: string, previous: number, tokenHash: string): Promise<boolean> {
    const credential: CredentialRecord = { kind: 'user', userId, tokenHash };
    const result = await this.#txn(
      [{ key: credentialKey(userId), mod: previous }],
      [this.#etcd.put(credentialKey(userId)).value(JSON.stringify(credential))],
    );
    return result.succeeded;
  }

  /**
   * Deletes a device if its record is still at `previous.version`: the record, its credential
   * (its token stops matching) and its entry in the user's index. Its presence lives under a
   * lease of its own (PresenceStore.remove). False if it changed or went meanwhile.
   */
  async deleteDevice(previous: Versioned<DeviceRecord>): Promise<boolean> {
    const { id, userId } = previous.value;
    const result = await this.#txn(
      [{ key: deviceKey(id), mod: previous.version }],
      [
        this.#etcd.delete().key(deviceKey(id)),
        this.#etcd.delete().key(credentialKey(id)),
        this.#etcd.delete().key(userDeviceKey(userId, id)),
      ],
    );
    return result.succeeded;
  }

  /** A user's devices in id order, each with whether it has presence now; read in batches. */
  async listUserDevices(userId: string): Promise<ListedDevice[]> {
    const prefix = userDevicesPrefix(userId);
    const index = await this.#etcd.getAll().prefix(prefix).keys();
    const ids = index.map((key) => key.slice(prefix.length));
    const devices: ListedDevice[] = [];
    // Two reads per device, within etcd's limit of operations per transaction.
    const perBatch = Math.floor(maxOpsPerTxn / 2);
    for (let i = 0; i < ids.length; i += perBatch) {
      const batch = ids.slice(i, i + perBatch);
      const res = await this.#etcd
        .if('/mw/revision-probe', 'Mod', '!=', -1)
        .then(...batch.flatMap((id) => [this.#etcd.get(deviceKey(id)), this.#etcd.get(presenceKey(id))]))
        .commit();
      batch.forEach((_id, j) => {
        const record = res.responses[2 * j]?.response_range.kvs[0];
        const presence = res.responses[2 * j + 1]?.response_range.kvs[0];
        // An index entry whose device is gone (never written apart from it) is skipped, not trusted.
        if (record !== undefined) devices.push({ ...decode<DeviceRecord>(record).value, online: presence !== undefined });
      });
    }
    return devices;
  }

  async getObject(id: string): Promise<Versioned<ObjectRecord> | undefined> {
    return this.#getVersioned<ObjectRecord>(objectKey(id));
  }

  /** Creates an object and its owner's membership index entry; false if the id is taken. */
  async createObject(object: ObjectRecord): Promise<boolean> {
    const result = await this.#txn(
      [{ key: objectKey(object.id), mod: 0 }],
      [
        this.#etcd.put(objectKey(object.id)).value(JSON.stringify(object)),
        this.#etcd.put(membershipKey(object.owner, object.id)).value(object.members[object.owner] ?? 'owner'),
      ],
    );
    return result.succeeded;
  }

  /**
   * Replaces an object record if it is still at `previous.version`, keeping every member's
   * index entry in step; false if it changed meanwhile.
   */
  async updateObject(previous: Versioned<ObjectRecord>, next: ObjectRecord): Promise<boolean> {
    const ops: IRequestOp[] = [await this.#etcd.put(objectKey(next.id)).value(JSON.stringify(next)).op()];
    for (const userId of Object.keys(previous.value.members)) {
      if (!(userId in next.members)) ops.push(await this.#etcd.delete().key(membershipKey(userId, next.id)).op());
    }
    for (const [userId, role] of Object.entries(next.members)) {
      if (previous.value.members[userId] !== role) ops.push(await this.#etcd.put(membershipKey(userId, next.id)).value(role).op());
    }
    const result = await this.#txn([{ key: objectKey(next.id), mod: previous.version }], ops);
    return result.succeeded;
  }

  /** Deletes an object, all its entries and every member's index entry; false if it changed meanwhile. */
  async deleteObject(previous: Versioned<ObjectRecord>): Promise<boolean> {
    const id = previous.value.id;
    const ops: IRequestOp[] = [
      await this.#etcd.delete().key(objectKey(id)).op(),
      // Entries and the head key.
      await this.#etcd
        .delete()
        .prefix(`${objectKey(id)}/`)
        .op(),
    ];
    for (const userId of Object.keys(previous.value.members)) ops.push(await this.#etcd.delete().key(membershipKey(userId, id)).op());
    const result = await this.#txn([{ key: objectKey(id), mod: previous.version }], ops);
    return result.succeeded;
  }

  /** The objects a user is a member of, with the role the index records. */
  async listMemberships(userId: string): Promise<{ objectId: string; role: Role }[]> {
    const prefix = membershipPrefix(userId);
    const res = await this.#etcd.getAll().prefix(prefix).exec();
    return res.kvs.map((kv) => ({ objectId: kv.key.toString('utf8').slice(prefix.length), role: kv.value.toString('utf8') as Role }));
  }

  async getEntry(objectId: string, path: string): Promise<Versioned<EntryRecord> | undefined> {
    return this.#getVersioned<EntryRecord>(entryKey(objectId, path));
  }

  /**
   * Writes an entry if it is still at `expectedVersion` (0: absent) and the object record is
   * still at `object.version`. A deleted entry is written as a tombstone with a marker for
   * the sweeper; writing a live entry clears any marker.
   */
  async putEntry(
    object: Versioned<ObjectRecord>,
    expectedVersion: number,
    entry: EntryRecord,
    refs?: EntryRefs,
  ): Promise<EntryWriteResult> {
    const objectId = object.value.id;
    const key = entryKey(objectId, entry.path);
    const marker = tombstoneKey(objectId, entry.path);
    const ops = [
      this.#etcd.put(key).value(JSON.stringify(entry)),
      this.#etcd.put(objectHeadKey(objectId)).value(''),
      entry.deleted
        ? this.#etcd.put(marker).value(JSON.stringify({ deletedAt: new Date().toISOString() }))
        : this.#etcd.delete().key(marker),
    ];
    // A file's references (ADR 24): written with the entry, each block's state unchanged since
    // its proof; or written before, and the epoch proves none was dropped since.
    const inline = refs?.kind === 'inline' ? refs.blocks : [];
    const guards =
      refs?.kind === 'written'
        ? [{ key: refEpochKey(objectId, entry.path), mod: refs.epoch }]
        : inline.map((b) => ({ key: blockStateKey(b.sha256), mod: b.stateVersion }));
    for (const b of inline) ops.push(this.#etcd.put(blockRefKey(b.sha256, objectId, entry.path)).value(''));
    const result = await this.#txn([{ key: objectKey(objectId), mod: object.version }, { key, mod: expectedVersion }, ...guards], ops, [
      objectKey(objectId),
      key,
      ...guards.map((g) => g.key),
    ]);
    if (result.succeeded) return { ok: true, version: result.revision };
    const [objectNow, entryNow, ...guardsNow] = result.reads;
    if (objectNow === undefined || Number(objectNow.mod_revision) !== object.version) return { ok: false, reason: 'object' };
    const moved = guards.map((g, i) => Number(guardsNow[i]?.mod_revision ?? 0) !== g.mod);
    if (refs?.kind === 'written' && moved.some(Boolean)) return { ok: false, reason: 'refs' };
    const marked = inline.filter((_, i) => moved[i]).map((b) => b.sha256);
    if (marked.length > 0) return { ok: false, reason: 'blocks', marked };
    return { ok: false, reason: 'entry', current: entryNow === undefined ? undefined : decode<EntryRecord>(entryNow) };
  }

  /**
   * A page of an object's entries in path order, read at `snapshot` (the current revision
   * when absent), starting after path `after`.
   */
  async listEntries(
    objectId: string,
    options: { snapshot?: number; after: string; limit: number },
  ): Promise<{ entries: Versioned<EntryRecord>[]; snapshot: number; more: boolean }> {
    const prefix = entriesPrefix(objectId);
    const start = options.after === '' ? prefix : `${prefix}${options.after}\0`;
    const builder = this.#etcd
      .getAll()
      .inRange({ start, end: rangeEnd(prefix) })
      .limit(options.limit);
    if (options.snapshot !== undefined) builder.revision(options.snapshot);
    const res = await this.#readRange(() => builder.exec());
    return { entries: res.kvs.map((kv) => decode<EntryRecord>(kv)), snapshot: Number(res.header.revision), more: res.more };
  }

  /**
   * Entries changed after revision `since` (tombstones included), in path order, read at
   * `snapshot` (the current revision when absent).
   */
  async changedEntries(
    objectId: string,
    since: number,
    snapshot?: number,
  ): Promise<{ entries: Versioned<EntryRecord>[]; snapshot: number }> {
    const builder = this.#etcd
      .getAll()
      .prefix(entriesPrefix(objectId))
      .minModRevision(since + 1);
    if (snapshot !== undefined) builder.revision(snapshot);
    const res = await this.#readRange(() => builder.exec());
    return { entries: res.kvs.map((kv) => decode<EntryRecord>(kv)), snapshot: Number(res.header.revision) };
  }

  /**
   * The revision of the object's latest entry change (0 if none) and the revision the answer
   * was read at: no entry of the object changed between the two.
   */
  async objectHead(objectId: string): Promise<{ latest: number; readAt: number }> {
    const res = await this.#etcd.get(objectHeadKey(objectId)).exec();
    return { latest: Number(res.kvs[0]?.mod_revision ?? 0), readAt: Number(res.header.revision) };
  }

  /**
   * One consistent read of an object's record, its head and the given entries (at most 126):
   * what a change set needs when the change feed already knows which paths changed.
   */
  async readForChanges(
    objectId: string,
    paths: readonly string[],
  ): Promise<{ object: Versioned<ObjectRecord> | undefined; head: { latest: number; readAt: number }; entries: Versioned<EntryRecord>[] }> {
    const res = await this.#etcd
      .if(objectKey(objectId), 'Mod', '!=', -1)
      .then(
        this.#etcd.get(objectKey(objectId)),
        this.#etcd.get(objectHeadKey(objectId)),
        ...paths.map((p) => this.#etcd.get(entryKey(objectId, p))),
      )
      .commit();
    const [objectKv, headKv, ...entryKvs] = res.responses.map((r) => r.response_range.kvs[0]);
    return {
      object: objectKv === undefined ? undefined : decode<ObjectRecord>(objectKv),
      head: { latest: Number(headKv?.mod_revision ?? 0), readAt: Number(res.header.revision) },
      entries: entryKvs.filter((kv): kv is IKeyValue => kv !== undefined).map((kv) => decode<EntryRecord>(kv)),
    };
  }

  /** The current versions of the given entries (absent ones are left out), in the given order. */
  async getEntries(objectId: string, paths: readonly string[]): Promise<Versioned<EntryRecord>[]> {
    // etcd allows 128 operations per transaction by default.
    const batches: string[][] = [];
    for (let i = 0; i < paths.length; i += 128) batches.push(paths.slice(i, i + 128));
    const results = await Promise.all(
      batches.map(async (batch) => {
        const res = await this.#etcd
          .if(objectKey(objectId), 'Mod', '!=', -1)
          .then(...batch.map((p) => this.#etcd.get(entryKey(objectId, p))))
          .commit();
        return res.responses.map((r) => r.response_range.kvs[0]).filter((kv): kv is IKeyValue => kv !== undefined);
      }),
    );
    return results.flat().map((kv) => decode<EntryRecord>(kv));
  }

  /**
   * One consistent read of a user's membership index (every object with the role and the
   * revision of its index key) and of the head keys of up to 127 of those objects: what a
   * notification answer is computed from. A missing head reads as revision 0.
   */
  async readMembershipsAndHeads(
    userId: string,
    objectIds: readonly string[],
  ): Promise<{ revision: number; memberships: Map<string, { role: Role; revision: number }>; heads: Map<string, number> }> {
    if (objectIds.length > maxOpsPerTxn - 1) throw new RangeError(`at most ${maxOpsPerTxn - 1} heads per read, not ${objectIds.length}`);
    const prefix = membershipPrefix(userId);
    const res = await this.#etcd
      .if(userKey(userId), 'Mod', '!=', -1)
      .then(this.#etcd.getAll().prefix(prefix), ...objectIds.map((id) => this.#etcd.get(objectHeadKey(id))))
      .commit();
    const [index, ...headResponses] = res.responses.map((r) => r.response_range.kvs);
    const memberships = new Map<string, { role: Role; revision: number }>();
    for (const kv of index ?? []) {
      memberships.set(kv.key.toString('utf8').slice(prefix.length), {
        role: kv.value.toString('utf8') as Role,
        revision: Number(kv.mod_revision),
      });
    }
    const heads = new Map<string, number>();
    objectIds.forEach((id, i) => heads.set(id, Number(headResponses[i]?.[0]?.mod_revision ?? 0)));
    return { revision: Number(res.header.revision), memberships, heads };
  }

  /** The revision of each object's latest entry change (0: none), read in batches. */
  async readHeads(objectIds: readonly string[]): Promise<Map<string, number>> {
    const heads = new Map<string, number>();
    for (let i = 0; i < objectIds.length; i += maxOpsPerTxn) {
      const batch = objectIds.slice(i, i + maxOpsPerTxn);
      const res = await this.#etcd
        .if('/mw/revision-probe', 'Mod', '!=', -1)
        .then(...batch.map((id) => this.#etcd.get(objectHeadKey(id))))
        .commit();
      batch.forEach((id, j) => heads.set(id, Number(res.responses[j]?.response_range.kvs[0]?.mod_revision ?? 0)));
    }
    return heads;
  }

  /** Tombstone markers of the slots first..last: which entry was deleted when. */
  async listTombstones(first: number, last: number): Promise<{ objectId: string; path: string; deletedAt: string }[]> {
    const start = `/mw/t/${slotSegment(first)}/`;
    const end = `/mw/t/${slotSegment(last + 1)}/`;
    const res = await this.#etcd.getAll().inRange({ start, end }).exec();
    return res.kvs.map((kv) => {
      const rest = kv.key.toString('utf8').slice(start.length);
      const slash = rest.indexOf('/');
      return {
        objectId: rest.slice(0, slash),
        path: rest.slice(slash + 1),
        deletedAt: (JSON.parse(kv.value.toString('utf8')) as { deletedAt: string }).deletedAt,
      };
    });
  }

  /**
   * Purges a tombstone if the entry is still that tombstone, and raises the object's history
   * floor past it so that older cursors get 410 instead of missing the delete.
   */
  async purgeTombstone(objectId: string, path: string): Promise<void> {
    const marker = tombstoneKey(objectId, path);
    for (let attempt = 0; attempt < 5; attempt++) {
      const [object, entry] = await Promise.all([this.getObject(objectId), this.getEntry(objectId, path)]);
      if (object === undefined || entry === undefined || !entry.value.deleted) {
        await this.#txn([], [this.#etcd.delete().key(marker)]);
        return;
      }
      const next: ObjectRecord = { ...object.value, historyFloor: Math.max(object.value.historyFloor, entry.version) };
      const result = await this.#txn(
        [
          { key: objectKey(objectId), mod: object.version },
          { key: entryKey(objectId, path), mod: entry.version },
        ],
        [
          this.#etcd.put(objectKey(objectId)).value(JSON.stringify(next)),
          this.#etcd.delete().key(entryKey(objectId, path)),
          this.#etcd.put(objectHeadKey(objectId)).value(''),
          this.#etcd.delete().key(marker),
        ],
      );
      if (result.succeeded) return;
    }
  }

  /** Everything recorded about a block (state, holders, references), read at one revision. */
  async readBlock(sha256: string): Promise<BlockRecords> {
    return (await this.#readBlockBatch([sha256]))[0]!;
  }

  /**
   * The records of each of `sha256s` (as readBlock, in the order asked): up to 42 blocks per
   * read-only transaction (three ranges each, within etcd's 128 operations), up to 8 of those
   * at once. Each block's records are read at one revision.
   */
  async readBlocks(sha256s: readonly string[]): Promise<BlockRecords[]> {
    const perTxn = Math.floor(maxOpsPerTxn / 3);
    const batches: string[][] = [];
    for (let i = 0; i < sha256s.length; i += perTxn) batches.push(sha256s.slice(i, i + perTxn));
    const read: BlockRecords[][] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < batches.length) {
        const i = next++;
        read[i] = await this.#readBlockBatch(batches[i]!);
      }
    };
    await Promise.all(Array.from({ length: Math.min(8, batches.length) }, worker));
    return read.flat();
  }

  async #readBlockBatch(sha256s: readonly string[]): Promise<BlockRecords[]> {
    const res = await this.#etcd
      .if('/mw/revision-probe', 'Mod', '!=', -1)
      .then(
        ...sha256s.flatMap((sha256) => [
          this.#etcd.get(blockStateKey(sha256)),
          this.#etcd.getAll().prefix(blockHoldersPrefix(sha256)),
          this.#etcd.getAll().prefix(blockRefsPrefix(sha256)),
        ]),
      )
      .commit();
    const ranges = res.responses.map((r) => r.response_range.kvs);
    return sha256s.map((sha256, i) => {
      const holdersAt = blockHoldersPrefix(sha256);
      const refsAt = blockRefsPrefix(sha256);
      const [stateKvs, holderKvs, refKvs] = ranges.slice(3 * i, 3 * i + 3);
      const stateKv = stateKvs?.[0];
      return {
        revision: Number(res.header.revision),
        state: stateKv === undefined ? undefined : decode<BlockState>(stateKv),
        holders: (holderKvs ?? []).map((kv) => ({
          userId: kv.key.toString('utf8').slice(holdersAt.length),
          createdAt: (JSON.parse(kv.value.toString('utf8')) as { createdAt: string }).createdAt,
          version: Number(kv.mod_revision),
        })),
        refs: (refKvs ?? []).map((kv) => {
          const rest = kv.key.toString('utf8').slice(refsAt.length);
          const slash = rest.indexOf('/');
          return { objectId: rest.slice(0, slash), path: rest.slice(slash + 1), version: Number(kv.mod_revision) };
        }),
      };
    });
  }

  /**
   * What an upload of a block by `userId` needs, read at one revision in one round trip: the
   * block's state, whether the user holds it already, and the user's record (its quota).
   */
  async readForUpload(
    sha256: string,
    userId: string,
  ): Promise<{ state: Versioned<BlockState> | undefined; holds: boolean; user: UserRecord | undefined }> {
    const res = await this.#etcd
      .if('/mw/revision-probe', 'Mod', '!=', -1)
      .then(this.#etcd.get(blockStateKey(sha256)), this.#etcd.get(blockHolderKey(sha256, userId)), this.#etcd.get(userKey(userId)))
      .commit();
    const [stateKv, holderKv, userKv] = res.responses.map((r) => r.response_range.kvs[0]);
    return {
      state: stateKv === undefined ? undefined : decode<BlockState>(stateKv),
      holds: holderKv !== undefined,
      user: userKv === undefined ? undefined : decode<UserRecord>(userKv).value,
    };
  }

  /**
   * Records that a user uploaded a block, if its state is still at `stateVersion` (what it was
   * before the bytes went to S3; 0: no state record, the block was never collected). When the
   * state moved, writes nothing and answers the state as it is now.
   */
  async recordHolder(sha256: string, userId: string, stateVersion: number, now: Date, size: number): Promise<HolderWriteResult> {
    return new Promise<HolderWriteResult>((resolve, reject) => {
      this.#holderWrites.push({ sha256, userId, stateVersion, createdAt: now.toISOString(), size, resolve, reject });
      // Outside any request's slot fence: a batch carries the block records of many requests (blocks are not slotted, ADR 24).
      if (this.#holderWrites.length === 1) withoutSlotFence(() => setImmediate(() => void this.#writeHolders()));
    });
  }

  // Holder writes that arrived in the same turn of the event loop go to etcd in one transaction
  // (each write's compare and puts, and the fence once): concurrent uploads cost one round trip.
  // If any compare fails, each write of the batch is tried alone, so one moved block state
  // fails only its own upload.
  async #writeHolders(): Promise<void> {
    // One write per (block, user): etcd refuses a transaction that puts one key twice, and two
    // uploads of one block by one user write the same records.
    const byKey = new Map<string, HolderWrite[]>();
    for (const w of this.#holderWrites.splice(0)) {
      const key = `${w.sha256}/${w.userId}`;
      const same = byKey.get(key);
      if (same === undefined) byKey.set(key, [w]);
      else same.push(w);
    }
    const writes = [...byKey.values()];
    const settle = (group: HolderWrite[], result: HolderWriteResult): void => {
      for (const w of group) w.resolve(result);
    };
    // A compare and two puts per write, and the fence: within etcd's 128 operations.
    const perTxn = 40;
    for (let i = 0; i < writes.length; i += perTxn) {
      const batch = writes.slice(i, i + perTxn);
      try {
        const together = batch.length > 1 ? await this.#holderTxn(batch.map((g) => g[0]!)) : undefined;
        if (together?.succeeded === true) {
          for (const group of batch) settle(group, { ok: true, version: together.revision });
          continue;
        }
        for (const group of batch) {
          const w = group[0]!;
          const result = await this.#holderTxn([w], [blockStateKey(w.sha256)]);
          const kv = result.reads[0];
          settle(
            group,
            result.succeeded
              ? { ok: true, version: result.revision }
              : { ok: false, state: kv === undefined ? undefined : decode<BlockState>(kv) },
          );
        }
      } catch (err) {
        for (const group of batch) for (const w of group) w.reject(err);
      }
    }
  }

  #holderTxn(
    writes: readonly HolderWrite[],
    reads: string[] = [],
  ): Promise<{ succeeded: boolean; revision: number; reads: (IKeyValue | undefined)[] }> {
    const ops = writes.flatMap((w) => [
      this.#etcd.put(blockHolderKey(w.sha256, w.userId)).value(JSON.stringify({ createdAt: w.createdAt })),
      this.#etcd.put(usageKey(w.userId, w.sha256)).value(String(w.size)),
    ]);
    return this.#txn(
      writes.map((w) => ({ key: blockStateKey(w.sha256), mod: w.stateVersion })),
      ops,
      reads,
    );
  }

  /**
   * Removes a user's holder record of a block (and its usage key) if it is still the one written
   * at `version`: for an upload whose bytes did not reach S3 after its holder was written, or a
   * holder whose block S3 lacks. False when the record moved or went meanwhile.
   */
  async dropHolder(sha256: string, userId: string, version: number): Promise<boolean> {
    // Block records are in no request's slot (ADR 24).
    return withoutSlotFence(async () => {
      const result = await this.#txn(
        [{ key: blockHolderKey(sha256, userId), mod: version }],
        [this.#etcd.delete().key(blockHolderKey(sha256, userId)), this.#etcd.delete().key(usageKey(userId, sha256))],
      );
      return result.succeeded;
    });
  }

  /** A user's password record; undefined when none was set. */
  async getPassword(userId: string): Promise<PasswordRecord | undefined> {
    return (await this.#getVersioned<PasswordRecord>(passwordKey(userId)))?.value;
  }

  /** Sets a user's password if the user exists; false when there is no such user. */
  async setPassword(userId: string, record: PasswordRecord): Promise<boolean> {
    const user = await this.#getVersioned<UserRecord>(userKey(userId));
    if (user === undefined) return false;
    const result = await this.#txn(
      [{ key: userKey(userId), mod: user.version }],
      [this.#etcd.put(passwordKey(userId)).value(JSON.stringify(record))],
    );
    // The user record changed meanwhile (a quota): it still exists, so write again without the compare.
    if (!result.succeeded) await this.#txn([], [this.#etcd.put(passwordKey(userId)).value(JSON.stringify(record))]);
    return true;
  }

  /** A user's failed sign-ins in a row, with their version (0 when there is none). */
  async getSignInFailures(userId: string): Promise<{ value: SignInFailures | undefined; version: number }> {
    const found = await this.#getVersioned<SignInFailures>(signInFailuresKey(userId));
    return { value: found?.value, version: found?.version ?? 0 };
  }

  /** Replaces the failures record if still at `version` (0: absent); undefined `next` deletes it. False on a race. */
  async putSignInFailures(userId: string, version: number, next: SignInFailures | undefined): Promise<boolean> {
    const key = signInFailuresKey(userId);
    const op = next === undefined ? this.#etcd.delete().key(key) : this.#etcd.put(key).value(JSON.stringify(next));
    return (await this.#txn([{ key, mod: version }], [op])).succeeded;
  }

  /**
   * Creates a sign-in session: its credential and its entry in the user's session index, both
   * under an etcd lease of `ttlSeconds`, so that an expired session's keys go by themselves.
   */
  async createSession(sessionId: string, credential: CredentialRecord, ttlSeconds: number): Promise<boolean> {
    const lease = this.#etcd.lease(ttlSeconds, { autoKeepAlive: false });
    const leaseId = await lease.grant();
    const result = await this.#txn(
      [{ key: credentialKey(sessionId), mod: 0 }],
      [
        this.#etcd.put(credentialKey(sessionId)).value(JSON.stringify(credential)).lease(leaseId),
        this.#etcd.put(userSessionKey(credential.userId, sessionId)).value('').lease(leaseId),
      ],
    );
    lease.release();
    return result.succeeded;
  }

  /** The ids of a user's sign-in sessions. */
  async listSessions(userId: string): Promise<string[]> {
    const prefix = userSessionsPrefix(userId);
    const keys = await this.#etcd.getAll().prefix(prefix).keys();
    return keys.map((k) => k.slice(prefix.length));
  }

  /** Deletes sign-in sessions of a user (their credentials and index entries); each stops working on every process. */
  async deleteSessions(userId: string, sessionIds: readonly string[]): Promise<void> {
    // Two operations per session, well under etcd's 128 operations per transaction.
    for (let i = 0; i < sessionIds.length; i += 50) {
      const batch = sessionIds.slice(i, i + 50);
      await this.#txn(
        [],
        batch.flatMap((id) => [this.#etcd.delete().key(credentialKey(id)), this.#etcd.delete().key(userSessionKey(userId, id))]),
      );
    }
  }

  /** The bytes a user holds: the sizes of the blocks it uploaded that were not collected since. */
  async storageUsed(userId: string): Promise<number> {
    const sizes = await this.#etcd.getAll().prefix(usagePrefix(userId)).strings();
    return Object.values(sizes).reduce((sum, size) => sum + Number(size), 0);
  }

  /** Sets a user's storage quota (null: unlimited); the updated record, or undefined when there is no such user. */
  async setUserQuota(userId: string, quotaBytes: number | null): Promise<UserRecord | undefined> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const user = await this.#getVersioned<UserRecord>(userKey(userId));
      if (user === undefined) return undefined;
      const next: UserRecord = { ...user.value, quotaBytes };
      if (
        (await this.#txn([{ key: userKey(userId), mod: user.version }], [this.#etcd.put(userKey(userId)).value(JSON.stringify(next))]))
          .succeeded
      )
        return next;
    }
    throw new EtcdCallError('setUserQuota', new Error(`user ${userId} kept changing`));
  }

  /**
   * Writes the references of the entry at `path` to `blocks`, each only if the block's state is
   * still at the version its possession was checked at. Returns the blocks whose state moved
   * (the collector marked them): those are missing now. The references of the blocks before a
   * failed batch stay; the collector drops them when no entry names them.
   */
  async addBlockRefs(objectId: string, path: string, blocks: readonly BlockToReference[]): Promise<string[]> {
    // One compare and one put per block, well under etcd's 128 operations per transaction.
    const perTxn = 100;
    for (let i = 0; i < blocks.length; i += perTxn) {
      const batch = blocks.slice(i, i + perTxn);
      const result = await this.#txn(
        batch.map((b) => ({ key: blockStateKey(b.sha256), mod: b.stateVersion })),
        batch.map((b) => this.#etcd.put(blockRefKey(b.sha256, objectId, path)).value('')),
        batch.map((b) => blockStateKey(b.sha256)),
      );
      if (!result.succeeded)
        return batch.filter((b, j) => Number(result.reads[j]?.mod_revision ?? 0) !== b.stateVersion).map((b) => b.sha256);
    }
    return [];
  }

  /** The revision of the entry's reference epoch (0 when no reference of it was ever dropped). */
  async refEpoch(objectId: string, path: string): Promise<number> {
    const res = await this.#etcd.get(refEpochKey(objectId, path)).exec();
    return Number(res.kvs[0]?.mod_revision ?? 0);
  }

  /** The names of the blocks with records in `slot`. */
  async listBlocks(slot: number): Promise<string[]> {
    const prefix = blocksPrefix(slot);
    const keys = await this.#etcd.getAll().prefix(prefix).keys();
    return [...new Set(keys.map((k) => k.slice(prefix.length, prefix.length + 64)))];
  }

  /**
   * Drops a reference whose entry no longer names the block, if neither the reference nor the
   * entry (nor, when absent, the object) changed since they were read; bumps the entry's
   * reference epoch so that a commit which wrote the reference before fails and writes it again.
   */
  async dropStaleRef(
    sha256: string,
    ref: { objectId: string; path: string; version: number },
    entryVersion: number,
    objectPresent: boolean,
  ): Promise<boolean> {
    const compares = [
      { key: blockRefKey(sha256, ref.objectId, ref.path), mod: ref.version },
      { key: entryKey(ref.objectId, ref.path), mod: entryVersion },
      // A removed object takes its epoch keys with it; a commit to it fails on its record.
      ...(objectPresent ? [] : [{ key: objectKey(ref.objectId), mod: 0 }]),
    ];
    const ops: { op(): Promise<IRequestOp> }[] = [this.#etcd.delete().key(blockRefKey(sha256, ref.objectId, ref.path))];
    if (objectPresent) ops.push(this.#etcd.put(refEpochKey(ref.objectId, ref.path)).value(''));
    return (await this.#txn(compares, ops)).succeeded;
  }

  /**
   * Marks a block `deleting` if, since `seen` was read, its state did not move, no reference
   * exists, and no holder record was written; deletes its holder records. Returns the mark's
   * revision, or undefined when something changed (the block is kept).
   */
  async markBlockDeleting(sha256: string, seen: BlockRecords, now: Date): Promise<number | undefined> {
    const state: BlockState = { state: 'deleting', since: now.toISOString(), holders: seen.holders.map((h) => h.userId) };
    const refs = Range.prefix(blockRefsPrefix(sha256));
    const holders = Range.prefix(blockHoldersPrefix(sha256));
    const compares: ICompare[] = [
      {
        key: Buffer.from(blockStateKey(sha256)),
        target: CompareTarget.Mod,
        result: CompareResult.Equal,
        mod_revision: seen.state?.version ?? 0,
      },
      // Over a range: true only when every key in it matches, and an empty range has create revision 0.
      { key: refs.start, range_end: refs.end, target: CompareTarget.Create, result: CompareResult.Equal, create_revision: 0 },
      {
        key: holders.start,
        range_end: holders.end,
        target: CompareTarget.Mod,
        result: CompareResult.Less,
        mod_revision: seen.revision + 1,
      },
    ];
    const ops = [
      await this.#etcd.put(blockStateKey(sha256)).value(JSON.stringify(state)).op(),
      await this.#etcd.delete().prefix(blockHoldersPrefix(sha256)).op(),
    ];
    return this.#rangeTxn(compares, ops);
  }

  /**
   * Records that a block marked at `markVersion` is gone from S3, removing the usage keys of the
   * holders the mark removed; false if its state moved meanwhile.
   */
  async markBlockDeleted(sha256: string, markVersion: number, now: Date, holders: readonly string[]): Promise<boolean> {
    const state: BlockState = { state: 'deleted', since: now.toISOString() };
    for (let i = 0; i < holders.length; i += 100) {
      const drops = holders.slice(i, i + 100).map((userId) => this.#etcd.delete().key(usageKey(userId, sha256)));
      if (!(await this.#txn([{ key: blockStateKey(sha256), mod: markVersion }], drops)).succeeded) return false;
    }
    const put = this.#etcd.put(blockStateKey(sha256)).value(JSON.stringify(state));
    return (await this.#txn([{ key: blockStateKey(sha256), mod: markVersion }], [put])).succeeded;
  }

  /** A fenced transaction with compares the builder cannot express (over key ranges); the revision it committed at, or undefined. */
  async #rangeTxn(compares: ICompare[], ops: IRequestOp[]): Promise<number | undefined> {
    if (this.#suspended) throw this.#suspended();
    const fence = this.#fence;
    const slotFence = currentSlotFence();
    const fenceCompare: ICompare[] = [...(fence ? [fence] : []), ...(slotFence ? [slotFence] : [])].map((f) => ({
      key: Buffer.from(f.key),
      target: CompareTarget.Mod,
      result: CompareResult.Equal,
      mod_revision: f.revision,
    }));
    const fenceRead = [
      ...(fence ? [await this.#etcd.get(fence.key).op()] : []),
      ...(slotFence ? [await this.#etcd.get(slotFence.key).op()] : []),
    ];
    const res = await this.#etcd.kv.txn({ compare: [...fenceCompare, ...compares], success: ops, failure: fenceRead });
    if (res.succeeded) return Number(res.header.revision);
    const values = res.responses.map((r) => r.response_range.kvs[0]);
    this.#checkFences(fence, slotFence, values);
    return undefined;
  }

  /**
   * After a failed transaction, raises OwnershipLostError if the owner record moved and
   * SlotMovedError if the request's slot changed owner; takes the fences' reads off `values`.
   */
  #checkFences(fence: Fence | undefined, slotFence: Fence | undefined, values: (IKeyValue | undefined)[]): void {
    if (fence) {
      const owner = values.shift();
      if (owner === undefined || Number(owner.mod_revision) !== fence.revision) {
        throw new OwnershipLostError(
          `the owner record ${fence.key} moved from revision ${fence.revision}: another process owns these slots`,
        );
      }
    }
    if (slotFence) {
      const slotOwner = values.shift();
      if (Number(slotOwner?.mod_revision ?? 0) !== slotFence.revision) {
        throw new SlotMovedError(`the owner key ${slotFence.key} moved from revision ${slotFence.revision}: the slot is moving`);
      }
    }
  }

  async #getVersioned<T>(key: string): Promise<Versioned<T> | undefined> {
    const res = await this.#etcd.get(key).exec();
    const kv = res.kvs[0];
    return kv === undefined ? undefined : decode<T>(kv);
  }

  async #readRange<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (err) {
      if (isCompacted(err)) throw new HistoryCompactedError('the requested revision was compacted', { cause: err });
      throw err;
    }
  }

  /**
   * One fenced transaction: if the fence and every `compares` hold, run `ops`; otherwise read
   * `reads` (and the fence) so the caller can tell why. A moved fence is an OwnershipLostError.
   */
  async #txn(
    compares: { key: string; mod: number }[],
    ops: (IRequestOp | { op(): Promise<IRequestOp> })[],
    reads: string[] = [],
  ): Promise<{ succeeded: boolean; revision: number; reads: (IKeyValue | undefined)[] }> {
    if (this.#suspended) throw this.#suspended();
    const fence = this.#fence;
    const slotFence = currentSlotFence();
    const all = [
      ...(fence ? [{ key: fence.key, mod: fence.revision }] : []),
      ...(slotFence ? [{ key: slotFence.key, mod: slotFence.revision }] : []),
      ...compares,
    ];
    const first = all[0];
    const elseOps = [
      ...(fence ? [this.#etcd.get(fence.key)] : []),
      ...(slotFence ? [this.#etcd.get(slotFence.key)] : []),
      ...reads.map((k) => this.#etcd.get(k)),
    ];
    let builder;
    if (first === undefined) {
      // Nothing to compare: an empty comparison list always succeeds.
      builder = this.#etcd.if('/mw/revision-probe', 'Mod', '!=', -1);
    } else {
      builder = this.#etcd.if(first.key, 'Mod', '==', first.mod);
      for (const c of all.slice(1)) builder = builder.and(c.key, 'Mod', '==', c.mod);
    }
    const res = await builder
      .then(...ops)
      .else(...elseOps)
      .commit();
    if (res.succeeded) return { succeeded: true, revision: Number(res.header.revision), reads: [] };
    const values = res.responses.map((r) => r.response_range.kvs[0]);
    this.#checkFences(fence, slotFence, values);
    return { succeeded: false, revision: Number(res.header.revision), reads: values };
  }
}
