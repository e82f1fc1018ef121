// Entries of a mesh object: commit a file's block list or a directory with optimistic
// concurrency (If-Match / If-None-Match: *), delete to a tombstone, list, and delta sync.
import { Router } from 'express';
import type express from 'express';
import type { Request } from 'express';
import { formatCursor, formatPageToken, InvalidCursorError, parseCursor, parsePageToken, type PageToken } from '../../cursor.ts';
import { parseWritePrecondition, preconditionHolds, strongEtag, type WritePrecondition } from '../../http/preconditions.ts';
import { normalizeEntryPath } from '../../paths.ts';
import { slotOf } from '../../slots.ts';
import type { EntryRecord, ObjectRecord, Versioned } from '../../stores/metadata-store.ts';
import { ApiError, notFound } from '../api-error.ts';
import { checkObjectAccess, forgetObject, loadObjectFor, loadObjectForWrite, memberPrincipalOf, requireOwnedSlot, type PartitionContext } from '../context.ts';
import { contentHashOf } from '../content-plan.ts';
import type { ObjectPollHandler } from '../long-poll/long-polls.ts';
import { parseWaitSeconds } from '../long-poll/params.ts';
import { commitEntryBody, validate, type CommitEntryBody } from '../schemas.ts';
import { idParam } from './objects.ts';

const defaultPageSize = 1000;
const maxPageSize = 5000;
// A commit retries by itself when only the object record moved (a rename or share meanwhile).
const commitAttempts = 5;

/** The public view of an entry version. */
export function entryView(entry: Versioned<EntryRecord>): Record<string, unknown> {
  return { ...entry.value, version: String(entry.version) };
}

/** The normalised entry path from a `*path` route parameter. */
export function entryPathParam(req: Request): string {
  const raw = (req.params as Record<string, unknown>).path;
  const joined = Array.isArray(raw) ? raw.join('/') : typeof raw === 'string' ? raw : '';
  return normalizeEntryPath(joined);
}

/**
 * The live entry a reader asks for by `/v1/objects/:id/.../*path`: checks slot ownership and
 * membership first, and answers 404 for a missing or deleted entry.
 */
export async function readableEntry(
  ctx: PartitionContext,
  req: Request<{ id: string; path: string[] }>,
  res: express.Response,
): Promise<{ id: string; path: string; entry: Versioned<EntryRecord> }> {
  const id = idParam(req.params.id, 'id');
  await requireOwnedSlot(ctx, slotOf(id), `object ${id}`);
  const principal = await memberPrincipalOf(ctx, req, res);
  const path = entryPathParam(req);
  await loadObjectFor(ctx, principal.userId, id, 'reader');
  const entry = await ctx.metadata.getEntry(id, path);
  if (entry === undefined || entry.value.deleted) throw notFound(`entry ${path}`);
  return { id, path, entry };
}

function pageSize(value: unknown): number {
  if (value === undefined) return defaultPageSize;
  const n = Number(value);
  if (typeof value !== 'string' || !Number.isInteger(n) || n < 1 || n > maxPageSize) {
    throw new ApiError(400, 'invalid_request', `limit: must be an integer from 1 to ${maxPageSize}`, { field: 'limit' });
  }
  return n;
}

function queryString(req: Request, name: string): string | undefined {
  const value = req.query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new ApiError(400, 'invalid_request', `${name}: must be given once`, { field: name });
  return value;
}

/** The entry revision a blind write can assume, or undefined when it must read first. */
function blindExpectation(precondition: WritePrecondition): number | undefined {
  if (precondition.kind === 'create') return 0;
  if (precondition.kind === 'match' && precondition.versions.length === 1 && /^[1-9]\d{0,14}$/.test(precondition.versions[0]!)) return Number(precondition.versions[0]);
  return undefined;
}

function preconditionFailed(path: string, current: Versioned<EntryRecord> | undefined): ApiError {
  const live = current !== undefined && !current.value.deleted ? current : undefined;
  return new ApiError(
    412,
    'precondition_failed',
    live ? `entry ${path} is at version ${live.version}` : `entry ${path} does not exist`,
    { currentVersion: live ? String(live.version) : null, current: live ? entryView(live) : null },
    live ? { ETag: strongEtag(String(live.version)) } : {},
  );
}

function requirePrecondition(req: Request): WritePrecondition {
  const precondition = parseWritePrecondition(req.headers['if-match'], req.headers['if-none-match']);
  if (precondition.kind === 'none') {
    throw new ApiError(428, 'precondition_required', 'send If-Match with the version you have, or If-None-Match: * to create');
  }
  if (precondition.kind === 'match' && precondition.versions.length === 0) {
    throw new ApiError(400, 'invalid_request', 'If-Match: must list strong entity tags such as "42"', { field: 'If-Match' });
  }
  return precondition;
}

/** A `changes` request, kept by a waiting poll to run again after each change of the object. */
interface ChangesQuery {
  ctx: PartitionContext;
  userId: string;
  id: string;
  since: number;
  page: PageToken | undefined;
  limit: number;
}

/** One change set (or a page of it) of an object after `since`; `changed` is false when it is empty. */
async function runChanges(query: ChangesQuery): Promise<{ body: unknown; changed: boolean; seen: number }> {
  const { ctx, userId, id, since, page, limit } = query;
  const after = Buffer.from(page?.after ?? '');
  const sortedAfter = (paths: string[]): string[] =>
    paths
      .map((p) => ({ p, bytes: Buffer.from(p) }))
      .filter((x) => Buffer.compare(x.bytes, after) > 0)
      .sort((x, y) => Buffer.compare(x.bytes, y.bytes))
      .map((x) => x.p);
  let object: Versioned<ObjectRecord> | undefined;
  let snapshot: number | undefined;
  let slice: Versioned<EntryRecord>[] | undefined;
  let more = false;

  // Fast path, one etcd read: the feed already lists the changed paths; if it had seen the
  // object's latest change (its head) when we looked, the list was complete.
  const peek = page === undefined ? ctx.changeFeed.peek(id, since) : undefined;
  if (peek !== undefined) {
    const wanted = sortedAfter(peek.paths);
    if (Math.min(wanted.length, limit) <= 120) {
      const read = await ctx.metadata.readForChanges(id, wanted.slice(0, limit));
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
      loadObjectFor(ctx, userId, id, 'reader'),
      page === undefined ? ctx.metadata.objectHead(id) : Promise.resolve(undefined),
    ]);
    object = loaded;
    snapshot = page?.snapshot ?? head!.readAt;
    if (head !== undefined && head.latest <= since) {
      slice = [];
    } else if (since >= object.value.historyFloor && since <= snapshot) {
      // From the change feed when it reaches back far enough: cost grows with the changes, not the object.
      const paths = await ctx.changeFeed.changedPaths(id, since, snapshot, head?.latest ?? 0);
      if (paths !== undefined) {
        const wanted = sortedAfter(paths);
        more = wanted.length > limit;
        // Current versions: possibly newer than the snapshot, which only repeats them next time.
        slice = await ctx.metadata.getEntries(id, wanted.slice(0, limit));
      }
    }
  }
  if (since < object!.value.historyFloor || since > snapshot!) {
    throw new ApiError(410, 'cursor_expired', 'the cursor is older than the retained history (or not from this mesh); list the entries again and sync from the new cursor', {
      relist: true,
    });
  }
  if (slice === undefined) {
    // A scan with a minimum mod revision: after a restart, or for a cursor older than the feed.
    const changed = await ctx.metadata.changedEntries(id, since, snapshot);
    // etcd orders keys by their bytes, so page boundaries compare UTF-8 bytes too.
    const remaining = changed.entries.filter((e) => Buffer.compare(Buffer.from(e.value.path), after) > 0);
    slice = remaining.slice(0, limit);
    more = remaining.length > limit;
  }
  return {
    body: {
      changes: slice.map(entryView),
      cursor: formatCursor(snapshot!),
      next: more && slice.length > 0 ? formatPageToken({ snapshot: snapshot!, after: slice.at(-1)!.value.path, since }) : null,
    },
    changed: slice.length > 0,
    seen: snapshot!,
  };
}

/** How a waiting `changes` poll runs and times out; one object for all polls. */
const changesPollHandler: ObjectPollHandler<ChangesQuery> = {
  run: runChanges,
  // Nothing changed while it waited: the same cursor back.
  timedOut: (query) => ({ changes: [], cursor: formatCursor(query.since), next: null }),
};

/** Routes for entries and changes of an object. */
export function entryRoutes(ctx: PartitionContext, json: express.RequestHandler): Router {
  const router = Router();

  /**
   * Writes `build(current)` under the caller's preconditions, retrying when only the object
   * moved. A `blind` write (one whose new value does not depend on the current one) with
   * If-None-Match: * or a single If-Match version skips reading the entry: the transaction's
   * compare on the entry's revision is the check, and only a failed compare reads it back.
   */
  async function conditionalWrite(
    objectId: string,
    userId: string,
    path: string,
    precondition: WritePrecondition,
    build: (current: Versioned<EntryRecord> | undefined) => EntryRecord,
    blind: boolean,
  ): Promise<{ entry: Versioned<EntryRecord>; created: boolean }> {
    let guess = blind ? blindExpectation(precondition) : undefined;
    for (let attempt = 0; attempt < commitAttempts; attempt++) {
      // The cached record is safe here: the transaction compares its revision.
      const object = await loadObjectForWrite(ctx, userId, objectId, 'writer');
      let expected: number;
      let created: boolean;
      let live: Versioned<EntryRecord> | undefined;
      if (guess !== undefined) {
        expected = guess;
        created = guess === 0;
      } else {
        const stored = await ctx.metadata.getEntry(objectId, path);
        live = stored !== undefined && !stored.value.deleted ? stored : undefined;
        if (!preconditionHolds(precondition, live === undefined ? undefined : String(live.version))) throw preconditionFailed(path, stored);
        expected = stored?.version ?? 0;
        created = live === undefined;
      }
      const next = build(live);
      const result = await ctx.metadata.putEntry(object, expected, next);
      if (result.ok) return { entry: { value: next, version: result.version }, created };
      if (result.reason === 'object') {
        forgetObject(ctx, objectId);
        continue;
      }
      // A blind guess missed (a tombstone under a create, or a lost race): decide on what is there.
      if (guess !== undefined) {
        guess = undefined;
        continue;
      }
      throw preconditionFailed(path, result.current);
    }
    throw new ApiError(503, 'busy', `object ${objectId} kept changing; retry`, {}, { 'Retry-After': '1' });
  }

  router.put('/v1/objects/:id/entries/*path', json, async (req, res) => {
    const id = idParam(req.params.id, 'id');
    await requireOwnedSlot(ctx, slotOf(id), `object ${id}`);
    const principal = await memberPrincipalOf(ctx, req, res);
    const path = entryPathParam(req);
    const body: CommitEntryBody = validate(commitEntryBody, req.body);
    if (body.kind === 'file') ctx.throttle.checkEntrySize(body.blocks.reduce((n, b) => n + b.size, 0));
    const precondition = requirePrecondition(req);
    // Access is checked before the blocks, so a stranger learns nothing from a 409.
    await loadObjectForWrite(ctx, principal.userId, id, 'writer');
    let size = 0;
    if (body.kind === 'file') {
      const sizes = await ctx.blocks.sizesOf(body.blocks.map((b) => b.sha256));
      const missing = [...sizes].filter(([, s]) => s === undefined).map(([sha]) => sha);
      if (missing.length > 0) {
        throw new ApiError(409, 'blocks_missing', `${missing.length} of the entry's blocks are not in the store; upload them and commit again`, { missing });
      }
      body.blocks.forEach((block, i) => {
        if (sizes.get(block.sha256) !== block.size) {
          throw new ApiError(400, 'invalid_request', `body.blocks.${i}.size: block ${block.sha256} is ${sizes.get(block.sha256)} bytes, not ${block.size}`, {
            field: `body.blocks.${i}.size`,
          });
        }
        size += block.size;
      });
    }
    const modifiedBy = principal.kind === 'device' ? principal.deviceId : principal.userId;
    const { entry, created } = await conditionalWrite(
      id,
      principal.userId,
      path,
      precondition,
      () => ({
      path,
      kind: body.kind,
      size,
      blocks: body.kind === 'file' ? body.blocks : [],
      contentHash: body.kind === 'file' ? contentHashOf(body.blocks) : null,
      modifiedBy,
        mtime: body.mtime ?? new Date().toISOString(),
        deleted: false,
      }),
      true,
    );
    res
      .status(created ? 201 : 200)
      .setHeader('ETag', strongEtag(String(entry.version)))
      .json(entryView(entry));
  });

  router.delete('/v1/objects/:id/entries/*path', async (req, res) => {
    const id = idParam(req.params.id, 'id');
    await requireOwnedSlot(ctx, slotOf(id), `object ${id}`);
    const principal = await memberPrincipalOf(ctx, req, res);
    const path = entryPathParam(req);
    const precondition = requirePrecondition(req);
    if (precondition.kind === 'create') throw new ApiError(400, 'invalid_request', 'If-None-Match: * makes no sense for a delete', { field: 'If-None-Match' });
    const object = await loadObjectFor(ctx, principal.userId, id, 'writer');
    const stored = await ctx.metadata.getEntry(id, path);
    if (stored === undefined || stored.value.deleted) throw notFound(`entry ${path}`);
    const modifiedBy = principal.kind === 'device' ? principal.deviceId : principal.userId;
    const { entry } = await conditionalWrite(
      object.value.id,
      principal.userId,
      path,
      precondition,
      (current) => {
        if (current === undefined) throw notFound(`entry ${path}`);
        return { ...current.value, blocks: [], size: 0, contentHash: null, modifiedBy, mtime: new Date().toISOString(), deleted: true };
      },
      false,
    );
    res.setHeader('ETag', strongEtag(String(entry.version))).json(entryView(entry));
  });

  router.get('/v1/objects/:id/entries/*path', async (req, res) => {
    const { entry } = await readableEntry(ctx, req, res);
    const etag = strongEtag(String(entry.version));
    res.setHeader('ETag', etag).setHeader('Cache-Control', 'private, no-cache');
    if (req.fresh) {
      res.status(304).end();
      return;
    }
    res.json(entryView(entry));
  });

  router.get('/v1/objects/:id/entries', async (req, res) => {
    const id = idParam(req.params.id, 'id');
    await requireOwnedSlot(ctx, slotOf(id), `object ${id}`);
    const principal = await memberPrincipalOf(ctx, req, res);
    const limit = pageSize(req.query.limit);
    const pageText = queryString(req, 'page');
    const page = pageText === undefined ? undefined : parsePageToken(pageText);
    if (page?.since !== undefined) throw new InvalidCursorError('page token belongs to a change set, not a listing');
    await loadObjectFor(ctx, principal.userId, id, 'reader');
    const live: Versioned<EntryRecord>[] = [];
    let after = page?.after ?? '';
    let snapshot = page?.snapshot;
    let more = true;
    // Tombstones are skipped, so keep reading until the page is full or the object ends.
    while (live.length < limit && more) {
      const batch = await ctx.metadata.listEntries(id, { snapshot, after, limit: limit - live.length });
      snapshot = batch.snapshot;
      more = batch.more;
      for (const entry of batch.entries) {
        after = entry.value.path;
        if (!entry.value.deleted) live.push(entry);
      }
    }
    res.setHeader('Cache-Control', 'private, no-cache').json({
      entries: live.map(entryView),
      cursor: formatCursor(snapshot!),
      next: more ? formatPageToken({ snapshot: snapshot!, after }) : null,
    });
  });

  router.get('/v1/objects/:id/changes', async (req, res, next) => {
    const id = idParam(req.params.id, 'id');
    await requireOwnedSlot(ctx, slotOf(id), `object ${id}`);
    const principal = await memberPrincipalOf(ctx, req, res);
    const limit = pageSize(req.query.limit);
    const pageText = queryString(req, 'page');
    const cursorText = queryString(req, 'cursor');
    const page = pageText === undefined ? undefined : parsePageToken(pageText);
    if (page !== undefined && page.since === undefined) throw new InvalidCursorError('page token belongs to a listing, not a change set');
    if (page === undefined && cursorText === undefined) throw new ApiError(400, 'invalid_request', 'cursor: is required (from a listing or an earlier change set)', { field: 'cursor' });
    const wait = parseWaitSeconds(req.query.wait, 0);
    if (wait > 0 && page !== undefined) throw new ApiError(400, 'invalid_request', 'wait: a page of a change set is answered at once; wait with the cursor instead', { field: 'wait' });
    const query: ChangesQuery = { ctx, userId: principal.userId, id, since: page?.since ?? parseCursor(cursorText!), page, limit };
    if (wait === 0) {
      res.setHeader('Cache-Control', 'private, no-cache').json((await runChanges(query)).body);
      return;
    }
    const clientId = principal.kind === 'device' ? principal.deviceId : principal.userId;
    ctx.longPolls.objectChanges({ userId: principal.userId, clientId }, id, query, changesPollHandler, wait, res, next);
  });

  return router;
}
