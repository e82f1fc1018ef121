// Who may do what to a mesh object: the access rule (membership and role rank) as a pure
// decision, and the reads behind it, including the short-lived cache that writes may use
// because every entry transaction compares the object's revision (ADR 0004).
import { ApiError } from '@meshwork/contract';
import type { MetadataStore, ObjectRecord, Role, Versioned } from '../../stores/metadata-store.ts';
import { notFound } from '../errors.ts';

const rank: Record<Role, number> = { reader: 1, writer: 2, owner: 3 };

/** Whether `role` is at least `need` (an owner may write, a writer may read). */
export function roleAllows(role: Role | undefined, need: Role): boolean {
  return role !== undefined && rank[role] >= rank[need];
}

/**
 * The access rule: the object for a caller who needs at least `need`. An object the caller
 * is not a member of is reported as not found, exactly like one that does not exist.
 */
export function checkObjectAccess(
  object: Versioned<ObjectRecord> | undefined,
  userId: string,
  objectId: string,
  need: Role,
): Versioned<ObjectRecord> {
  const role = object?.value.members[userId];
  if (object === undefined || role === undefined) throw notFound(`object ${objectId}`);
  if (!roleAllows(role, need)) {
    throw new ApiError('forbidden', `${need === 'owner' ? 'only the owner' : 'a writer or the owner'} may do this; you are a ${role}`);
  }
  return object;
}

/** The write cache's storage: object records by id, each with the time it expires. */
export type ObjectWriteCache = Map<string, { object: Versioned<ObjectRecord>; expires: number }>;

// Long enough to serve a burst of commits from one read, short enough to bound memory churn.
const objectCacheMillis = 5000;
const objectCacheLimit = 10_000;

/** Access decisions over the metadata store, with the write cache. */
export class ObjectAccess {
  readonly #metadata: Pick<MetadataStore, 'getObject'>;
  readonly #cache: ObjectWriteCache;
  readonly #now: () => number;

  constructor(metadata: Pick<MetadataStore, 'getObject'>, cache: ObjectWriteCache = new Map(), now: () => number = Date.now) {
    this.#metadata = metadata;
    this.#cache = cache;
    this.#now = now;
  }

  /** Reads the object and applies the access rule. */
  async load(userId: string, objectId: string, need: Role): Promise<Versioned<ObjectRecord>> {
    return checkObjectAccess(await this.#metadata.getObject(objectId), userId, objectId, need);
  }

  /**
   * Like load, but may answer from the cache. Only for writes: every entry transaction
   * compares the object's revision, so a stale record (a member removed, the object deleted)
   * fails the compare, is forgotten, and the retry reads afresh.
   */
  async loadForWrite(userId: string, objectId: string, need: Role): Promise<Versioned<ObjectRecord>> {
    const cached = this.#cache.get(objectId);
    if (cached && cached.expires > this.#now() && roleAllows(cached.object.value.members[userId], need)) return cached.object;
    const object = await this.load(userId, objectId, need);
    if (this.#cache.size >= objectCacheLimit) this.#cache.clear();
    this.#cache.set(objectId, { object, expires: this.#now() + objectCacheMillis });
    return object;
  }

  /** Drops an object from the write cache after it changed. */
  forget(objectId: string): void {
    this.#cache.delete(objectId);
  }
}
