// What one process knows about a user's objects for change notification: the set of objects
// the user is a member of (from the membership index, kept current by the change feed), the
// objects it lost recently, and the latest change it was told about. Memory only decides
// whether to wait; every answer comes from an exact read of etcd (see ADR 6).
import type { Role } from '../../stores/metadata-store.ts';

/** An exact read of a user's membership index and the head keys of their objects. */
export interface FeedRead {
  /** The membership index was read at this revision; heads at this revision or later. */
  revision: number;
  /** Object id → role and the membership key's revision. */
  memberships: Map<string, { role: Role; revision: number }>;
  /** Object id → revision of the object's latest entry change (0: none yet). */
  heads: Map<string, number>;
}

/** One object in a notification answer. */
export interface ObjectNotice {
  id: string;
  /** The caller's role, when still a member. */
  role?: Role;
  /** True when the caller is no longer a member (removed, or the object was deleted). */
  removed?: true;
}

/** How many cursors a feed remembers as quiet: a few per device of the user. */
const quietLimit = 64;
/** How many lost objects a feed remembers, to tell devices that were away about them. */
const removedLimit = 1024;

/** A user's notification state in this process. */
export class UserFeed {
  readonly userId: string;
  /** Object id → revision of its membership key, as last known. */
  readonly members = new Map<string, number>();
  /** Object id → revision at (or before) which the user stopped being a member. */
  readonly removed = new Map<string, number>();
  /** Memory may say "nothing changed after T" only for T at or above this revision. */
  validFrom = Number.POSITIVE_INFINITY;
  /** Bumped when memory can no longer be trusted; reads started before it are discarded. */
  generation = 0;
  /** The latest revision of a change the feed was told about. */
  lastEvent = 0;
  /** The revision of the newest membership read merged; older membership events are in it. */
  mergedAt = 0;
  /** Cursor → the revision up to which a read found nothing after it (the same cursor comes back after a timeout). */
  readonly #quiet = new Map<number, number>();

  constructor(userId: string) {
    this.userId = userId;
  }

  /** A membership key of this user changed; says whether to start or stop watching the object. */
  onMembership(objectId: string, present: boolean, revision: number): 'subscribe' | 'unsubscribe' | undefined {
    if (revision <= this.mergedAt) return undefined;
    this.lastEvent = Math.max(this.lastEvent, revision);
    const wasMember = this.members.has(objectId);
    if (present) {
      this.members.set(objectId, revision);
      this.removed.delete(objectId);
      return wasMember ? undefined : 'subscribe';
    }
    this.members.delete(objectId);
    this.#remember(objectId, revision);
    return wasMember ? 'unsubscribe' : undefined;
  }

  /** An object of this user changed at `revision`. */
  onObjectChange(revision: number): void {
    this.lastEvent = Math.max(this.lastEvent, revision);
  }

  /** Whether memory can tell that nothing changed after `threshold`, so the poll may wait without a read. */
  quietAfter(threshold: number): boolean {
    return threshold >= this.validFrom && this.lastEvent <= threshold;
  }

  /** Memory missed changes (the change feed restarted): until the next read, every poll reads. */
  invalidate(): void {
    this.validFrom = Number.POSITIVE_INFINITY;
    this.mergedAt = 0;
    this.generation++;
  }

  /**
   * Merges a read of the membership index taken at `revision` with what events said meanwhile
   * (an event newer than the read wins); returns the objects to start and stop watching.
   */
  mergeMemberships(memberships: ReadonlyMap<string, { revision: number }>, revision: number): { subscribe: string[]; unsubscribe: string[] } {
    const subscribe: string[] = [];
    const unsubscribe: string[] = [];
    // A read that finished after a newer one holds nothing new.
    if (revision <= this.mergedAt) return { subscribe, unsubscribe };
    for (const [objectId, membership] of memberships) {
      const known = this.members.get(objectId);
      if (known !== undefined && known > revision) continue;
      if ((this.removed.get(objectId) ?? 0) > revision) continue;
      if (known === undefined) subscribe.push(objectId);
      this.members.set(objectId, membership.revision);
      this.removed.delete(objectId);
    }
    for (const [objectId, known] of this.members) {
      if (memberships.has(objectId) || known > revision) continue;
      this.members.delete(objectId);
      // Gone at some revision up to the read; telling a device twice is harmless, never telling it is not.
      this.#remember(objectId, revision);
      unsubscribe.push(objectId);
    }
    this.mergedAt = revision;
    this.validFrom = Math.min(this.validFrom, revision);
    return { subscribe, unsubscribe };
  }

  /** The objects that changed after `cursor` according to `read`, by id. */
  changesSince(cursor: number, read: FeedRead): ObjectNotice[] {
    const notices: ObjectNotice[] = [];
    for (const [id, membership] of read.memberships) {
      if (membership.revision > cursor || (read.heads.get(id) ?? 0) > cursor) notices.push({ id, role: membership.role });
    }
    for (const [id, revision] of this.removed) {
      if (revision > cursor && !read.memberships.has(id)) notices.push({ id, removed: true });
    }
    return notices.sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
  }

  /** The revision a poll with `cursor` may wait from: past what a read already found quiet for it. */
  thresholdFor(cursor: number): number {
    return Math.max(cursor, this.#quiet.get(cursor) ?? 0);
  }

  /** Records that nothing changed after `cursor` up to `upTo`. */
  recordQuiet(cursor: number, upTo: number): void {
    this.#quiet.delete(cursor);
    this.#quiet.set(cursor, upTo);
    if (this.#quiet.size > quietLimit) {
      const oldest = this.#quiet.keys().next().value;
      if (oldest !== undefined) this.#quiet.delete(oldest);
    }
  }

  #remember(objectId: string, revision: number): void {
    this.removed.delete(objectId);
    this.removed.set(objectId, revision);
    if (this.removed.size > removedLimit) {
      const oldest = this.removed.keys().next().value;
      if (oldest !== undefined) this.removed.delete(oldest);
    }
  }
}
