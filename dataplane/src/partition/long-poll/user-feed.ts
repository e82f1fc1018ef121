// What one process knows about a user's objects for change notification: the objects the
// user is a member of (from the membership index, kept current by the change feed) with their
// latest known change, the objects it lost recently, and the latest change it was told of.
// Memory answers where one watch delivered everything; an exact read of etcd otherwise (ADR 6).
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

/** What a feed knows of one object the user is a member of. */
export interface Membership {
  role: Role;
  /** Revision of the membership key. */
  revision: number;
  /** Revision of the object's latest entry change known (0: none known). */
  head: number;
}

/** How many cursors a feed remembers as quiet: a few per device of the user. */
const quietLimit = 64;
const emptyRemoved: ReadonlyMap<string, number> = new Map();
/** How many lost objects a feed remembers, to tell devices that were away about them. */
const removedLimit = 1024;

/** Every object of `memberships` with the user's role, by id: the answer to a poll without a cursor. */
export function liveObjects(memberships: ReadonlyMap<string, { role: Role }>): ObjectNotice[] {
  return [...memberships].map(([id, { role }]) => ({ id, role })).sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
}

/** A user's notification state in this process. */
export class UserFeed {
  readonly userId: string;
  /** The objects the user is a member of, as last known. */
  readonly members = new Map<string, Membership>();
  /** Object id → revision at (or before) which the user stopped being a member; made when first needed. */
  #removed: Map<string, number> | undefined;
  /** Memory may say "nothing changed after T" only for T at or above this revision; -1: not at all. */
  #validFrom = -1;
  /** Bumped when memory can no longer be trusted; reads started before it are discarded. */
  generation = 0;
  /** The latest revision of a change the feed was told about. */
  lastEvent = 0;
  /** The revision of the newest membership read merged; older membership events are in it. */
  mergedAt = 0;
  /**
   * Pairs of (cursor, revision up to which a read found nothing after it), newest last: the
   * same cursor comes back after a timeout. A flat array: most users have one or two devices.
   */
  #quiet: number[] = [];

  constructor(userId: string) {
    this.userId = userId;
  }

  /** Objects the user stopped being a member of, with the revision they went at (or before). */
  get removed(): ReadonlyMap<string, number> {
    return this.#removed ?? emptyRemoved;
  }

  /**
   * A membership key of this user changed (`role` undefined: deleted); says whether to start
   * or stop watching the object.
   */
  onMembership(objectId: string, role: Role | undefined, revision: number): 'subscribe' | 'unsubscribe' | undefined {
    if (revision <= this.mergedAt) return undefined;
    this.lastEvent = Math.max(this.lastEvent, revision);
    const known = this.members.get(objectId);
    if (role !== undefined) {
      this.#removed?.delete(objectId);
      if (known !== undefined) {
        known.role = role;
        known.revision = revision;
        return undefined;
      }
      this.members.set(objectId, { role, revision, head: 0 });
      return 'subscribe';
    }
    this.members.delete(objectId);
    this.#remember(objectId, revision);
    return known !== undefined ? 'unsubscribe' : undefined;
  }

  /** An entry of an object of this user changed at `revision`. */
  onObjectChange(objectId: string, revision: number): void {
    this.lastEvent = Math.max(this.lastEvent, revision);
    const member = this.members.get(objectId);
    if (member !== undefined && revision > member.head) member.head = revision;
  }

  /** Whether memory knows every change after `threshold` that has been delivered. */
  trusts(threshold: number): boolean {
    return this.#validFrom >= 0 && threshold >= this.#validFrom;
  }

  /** Whether memory can tell that nothing changed after `threshold`, so the poll may wait without a read. */
  quietAfter(threshold: number): boolean {
    return this.trusts(threshold) && this.lastEvent <= threshold;
  }

  /** Memory missed changes (the change feed restarted): until the next read, every poll reads. */
  invalidate(): void {
    this.#validFrom = -1;
    this.mergedAt = 0;
    this.generation++;
  }

  /**
   * Merges a read of the membership index taken at `revision` with what events said meanwhile
   * (an event newer than the read wins); returns the objects to start and stop watching.
   */
  mergeMemberships(
    memberships: ReadonlyMap<string, { role: Role; revision: number }>,
    revision: number,
  ): { subscribe: string[]; unsubscribe: string[] } {
    const subscribe: string[] = [];
    const unsubscribe: string[] = [];
    // A read that finished after a newer one holds nothing new.
    if (revision <= this.mergedAt) return { subscribe, unsubscribe };
    for (const [objectId, membership] of memberships) {
      const known = this.members.get(objectId);
      if (known !== undefined && known.revision > revision) continue;
      if ((this.#removed?.get(objectId) ?? 0) > revision) continue;
      this.#removed?.delete(objectId);
      if (known === undefined) {
        subscribe.push(objectId);
        this.members.set(objectId, { role: membership.role, revision: membership.revision, head: 0 });
      } else {
        known.role = membership.role;
        known.revision = membership.revision;
      }
    }
    for (const [objectId, known] of this.members) {
      if (memberships.has(objectId) || known.revision > revision) continue;
      this.members.delete(objectId);
      // Gone at some revision up to the read; telling a device twice is harmless, never telling it is not.
      this.#remember(objectId, revision);
      unsubscribe.push(objectId);
    }
    this.mergedAt = revision;
    this.#validFrom = this.#validFrom < 0 ? revision : Math.min(this.#validFrom, revision);
    return { subscribe, unsubscribe };
  }

  /** Takes in head revisions read from etcd (they cover changes made before a watch began). */
  mergeHeads(heads: ReadonlyMap<string, number>): void {
    for (const [objectId, head] of heads) {
      const member = this.members.get(objectId);
      if (member !== undefined && head > member.head) member.head = head;
    }
  }

  /** The objects that changed after `cursor` as memory knows them, by id; only where `trusts(cursor)`. */
  memoryChangesSince(cursor: number): ObjectNotice[] {
    const notices: ObjectNotice[] = [];
    for (const [id, member] of this.members) {
      if (member.revision > cursor || member.head > cursor) notices.push({ id, role: member.role });
    }
    return this.#withRemoved(notices, cursor, undefined);
  }

  /** The objects that changed after `cursor` according to `read`, by id. */
  changesSince(cursor: number, read: FeedRead): ObjectNotice[] {
    const notices: ObjectNotice[] = [];
    for (const [id, membership] of read.memberships) {
      if (membership.revision > cursor || (read.heads.get(id) ?? 0) > cursor) notices.push({ id, role: membership.role });
    }
    return this.#withRemoved(notices, cursor, read.memberships);
  }

  #withRemoved(notices: ObjectNotice[], cursor: number, members: ReadonlyMap<string, unknown> | undefined): ObjectNotice[] {
    for (const [id, revision] of this.removed) {
      if (revision > cursor && !(members ?? this.members).has(id)) notices.push({ id, removed: true });
    }
    return notices.sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
  }

  /** The revision a poll with `cursor` may wait from: past what a read already found quiet for it. */
  thresholdFor(cursor: number): number {
    const quiet = this.#quiet;
    for (let i = quiet.length - 2; i >= 0; i -= 2) if (quiet[i] === cursor) return Math.max(cursor, quiet[i + 1]!);
    return cursor;
  }

  /** Records that nothing changed after `cursor` up to `upTo`. */
  recordQuiet(cursor: number, upTo: number): void {
    const kept: number[] = [];
    const quiet = this.#quiet;
    for (let i = Math.max(0, quiet.length - 2 * (quietLimit - 1)); i < quiet.length; i += 2) {
      if (quiet[i] !== cursor) kept.push(quiet[i]!, quiet[i + 1]!);
    }
    // A literal of the exact size: push would reserve room for a dozen more.
    this.#quiet = kept.length === 0 ? [cursor, upTo] : [...kept, cursor, upTo];
  }

  #remember(objectId: string, revision: number): void {
    const removed = (this.#removed ??= new Map<string, number>());
    removed.delete(objectId);
    removed.set(objectId, revision);
    if (removed.size > removedLimit) {
      const oldest = removed.keys().next().value;
      if (oldest !== undefined) removed.delete(oldest);
    }
  }
}
