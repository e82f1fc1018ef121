// Delta sync (ADR 0004, ADR 0005): the changes of an object after a cursor, page by page at
// one snapshot, from the change feed when it reaches back far enough and from an etcd scan
// with a minimum mod revision otherwise; a cursor older than the retained history (or newer
// than the snapshot, so not from this mesh) is 410. Pure decisions first, then the executor
// that a waiting poll runs again after each change of the object.
import { ApiError } from '@meshwork/contract';
import { formatCursor, formatPageToken, type PageToken } from '../../cursor.ts';
import type { EntryRecord, MetadataStore, ObjectRecord, Versioned } from '../../stores/metadata-store.ts';
import type { ChangeFeed } from '../change-feed.ts';
import type { ObjectPollHandler } from '../long-poll/long-polls.ts';
import { checkObjectAccess, type ObjectAccess } from './access.ts';
import { entryView } from './conditional-write.ts';

// The fast path reads at most this many entries by key in one transaction.
const fastPathMaxEntries = 120;

/** The paths after `after` in etcd's order: by UTF-8 bytes, as page boundaries compare. */
export function pathsAfter(paths: readonly string[], after: string): string[] {
  const bound = Buffer.from(after);
  return paths
    .map((p) => ({ p, bytes: Buffer.from(p) }))
    .filter((x) => Buffer.compare(x.bytes, bound) > 0)
    .sort((x, y) => Buffer.compare(x.bytes, y.bytes))
    .map((x) => x.p);
}

/** Whether a change set may be answered from `since`: not below the history floor, not past the snapshot. */
export function cursorInRange(since: number, historyFloor: number, snapshot: number): boolean {
  return since >= historyFloor && since <= snapshot;
}

/** 410 `cursor_expired`: the client lists the entries again and syncs from the new cursor. */
export function cursorExpired(): ApiError {
  return new ApiError(
    'cursor_expired',
    'the cursor is older than the retained history (or not from this mesh); list the entries again and sync from the new cursor',
    { details: { relist: true } },
  );
}

/** The fast path serves a first page whose changed paths the feed knows, when that page is small. */
export function fastPathFits(wanted: number, limit: number): boolean {
  return Math.min(wanted, limit) <= fastPathMaxEntries;
}

/** The answer of a change set page. */
export interface ChangesPage {
  changes: Record<string, unknown>[];
  cursor: string;
  next: string | null;
}

/** Builds a page: the changes, the snapshot as the cursor, and a token for the rest when there is more. */
export function changesPage(
  slice: readonly Versioned<EntryRecord>[],
  snapshot: number,
  more: boolean,
  since: number,
  limit?: number,
): ChangesPage {
  return {
    changes: slice.map(entryView),
    cursor: formatCursor(snapshot),
    next:
      more && slice.length > 0
        ? formatPageToken({ snapshot, after: slice.at(-1)!.value.path, since, ...(limit === undefined ? {} : { limit }) })
        : null,
  };
}

/** What a change set needs: metadata reads, the change feed and the access rule. */
export interface ChangesDeps {
  metadata: Pick<MetadataStore, 'readForChanges' | 'objectHead' | 'getEntries' | 'changedEntries'>;
  changeFeed: Pick<ChangeFeed, 'peek' | 'changedPaths'>;
  access: Pick<ObjectAccess, 'load'>;
}

/** A `changes` request, kept by a waiting poll to run again after each change of the object. */
export interface ChangesQuery {
  deps: ChangesDeps;
  userId: string;
  id: string;
  since: number;
  page: PageToken | undefined;
  limit: number;
}

/** One change set (or a page of it) of an object after `since`; `changed` is false when it is empty. */
export async function runChanges(query: ChangesQuery): Promise<{ body: ChangesPage; changed: boolean; seen: number }> {
  const { deps, userId, id, since, page, limit } = query;
  const after = page?.after ?? '';
  let object: Versioned<ObjectRecord> | undefined;
  let snapshot: number | undefined;
  let slice: Versioned<EntryRecord>[] | undefined;
  let more = false;

  // Fast path, one etcd read: the feed already lists the changed paths; if it had seen the
  // object's latest change (its head) when we looked, the list was complete.
  const peek = page === undefined ? deps.changeFeed.peek(id, since) : undefined;
  if (peek !== undefined) {
    const wanted = pathsAfter(peek.paths, after);
    if (fastPathFits(wanted.length, limit)) {
      const read = await deps.metadata.readForChanges(id, wanted.slice(0, limit));
      object = checkObjectAccess(read.object, userId, id, 'reader');
      if (read.head.latest <= peek.seen) {
        snapshot = read.head.readAt;
        slice = read.entries;
        more = wanted.length > limit;
      }
    }
  }

  if (slice === undefined) {
    // The first page fixes the snapshot: the revision the object's head was read at.
    const [loaded, head] = await Promise.all([
      deps.access.load(userId, id, 'reader'),
      page === undefined ? deps.metadata.objectHead(id) : Promise.resolve(undefined),
    ]);
    object = loaded;
    snapshot = page?.snapshot ?? head!.readAt;
    if (head !== undefined && head.latest <= since) {
      slice = [];
    } else if (cursorInRange(since, object.value.historyFloor, snapshot)) {
      // From the change feed when it reaches back far enough: cost grows with the changes, not the object.
      const paths = await deps.changeFeed.changedPaths(id, since, snapshot, head?.latest ?? 0);
      if (paths !== undefined) {
        const wanted = pathsAfter(paths, after);
        more = wanted.length > limit;
        // Current versions: possibly newer than the snapshot, which only repeats them next time.
        slice = await deps.metadata.getEntries(id, wanted.slice(0, limit));
      }
    }
  }
  if (!cursorInRange(since, object!.value.historyFloor, snapshot!)) throw cursorExpired();
  if (slice === undefined) {
    // A scan with a minimum mod revision: after a restart, or for a cursor older than the feed.
    const changed = await deps.metadata.changedEntries(id, since, snapshot);
    // etcd orders keys by their bytes, so page boundaries compare UTF-8 bytes too.
    const bound = Buffer.from(after);
    const remaining = changed.entries.filter((e) => Buffer.compare(Buffer.from(e.value.path), bound) > 0);
    slice = remaining.slice(0, limit);
    more = remaining.length > limit;
  }
  return { body: changesPage(slice, snapshot!, more, since, limit), changed: slice.length > 0, seen: snapshot! };
}

/** How a waiting `changes` poll runs and times out; one object for all polls. */
export const changesPollHandler: ObjectPollHandler<ChangesQuery> = {
  run: runChanges,
  // Nothing changed while it waited: the same cursor back.
  timedOut: (query) => ({ changes: [], cursor: formatCursor(query.since), next: null }),
};
