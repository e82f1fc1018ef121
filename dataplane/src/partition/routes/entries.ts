// Entries of a mesh object: commit a file's block list or a directory with optimistic
// concurrency (If-Match / If-None-Match: *), delete to a tombstone, read, list, and delta sync.
// A file of at most one block may instead be written whole, its content as the body (ADR 86).
// The protocol itself lives in ../sync/; these handlers parse, call it and answer.
import { Router } from 'express';
import type express from 'express';
import type { Request } from 'express';
import { ApiError } from '@meshwork/contract';
import { parseCursor, parsePageToken, InvalidCursorError } from '../../cursor.ts';
import { strongEtag } from '../../http/preconditions.ts';
import { InvalidPathError } from '../../paths.ts';
import { invalidRequest } from '../errors.ts';
import { modifierOf, type RouteHooks } from '../hooks.ts';
import type { LongPolls } from '../long-poll/long-polls.ts';
import { parseWaitSeconds } from '../long-poll/params.ts';
import { commitEntryBody, mtimeParam, validate } from '../schemas.ts';
import { uploadSize, type BlockDeps } from '../sync/blocks.ts';
import { changesPollHandler, runChanges, type ChangesDeps, type ChangesQuery } from '../sync/changes.ts';
import { entryView, requirePrecondition } from '../sync/conditional-write.ts';
import { commitEntry, deleteEntry, listLiveEntries, liveEntry, writeFileContent, type EntryDeps } from '../sync/entries.ts';
import type { Throttle } from '../throttle/throttle.ts';
import { entryPathParam, isOctetStream, pageLimit, queryString, readDeclaredBody } from '../request-params.ts';

/** What the entry routes need besides the hooks. */
export interface EntryRouteDeps {
  entries: EntryDeps;
  /** Block uploads, for a file written whole. */
  uploads: BlockDeps;
  changes: ChangesDeps;
  longPolls: Pick<LongPolls, 'objectChanges'>;
  throttle: Pick<Throttle, 'checkEntrySize'>;
}

function writePrecondition(req: Request): ReturnType<typeof requirePrecondition> {
  return requirePrecondition(req.headers['if-match'], req.headers['if-none-match']);
}

/** A commit's answer: `201` for a new entry, `200` otherwise, the entry and its ETag. */
function answerCommit(res: express.Response, { entry, created }: Awaited<ReturnType<typeof commitEntry>>): void {
  res
    .status(created ? 201 : 200)
    .setHeader('ETag', strongEtag(String(entry.version)))
    .json(entryView(entry));
}

/** Routes for entries and changes of an object. */
export function entryRoutes(hooks: RouteHooks, deps: EntryRouteDeps, json: express.RequestHandler): Router {
  const router = Router();
  const { entries } = deps;

  const commit = hooks.route(
    {
      ids: ['id'],
      slot: 'object',
      principal: 'member',
      parse: (req) => {
        const path = entryPathParam(req);
        const body = validate(commitEntryBody, req.body);
        if (body.kind === 'file') deps.throttle.checkEntrySize(body.blocks.reduce((n, b) => n + b.size, 0));
        return { path, body, precondition: writePrecondition(req) };
      },
      // Access is checked before the blocks, so a stranger learns nothing from a 409.
      access: { need: 'writer', cached: true },
    },
    async ({ res, id, principal, input, object }) => {
      const writer = { userId: principal.userId, modifiedBy: modifierOf(principal) };
      // cloudStorage never changes after creation, so the write cache's record is good for it.
      const peerToPeerOnly = !object.value.cloudStorage;
      answerCommit(res, await commitEntry(entries, { objectId: id, ...input, writer, peerToPeerOnly }));
    },
  );
  // A body of application/octet-stream is the file's whole content: stored as its one block
  // and committed in the same call (ADR 86), with the preconditions and answer of a commit.
  const writeWhole = hooks.route(
    {
      ids: ['id'],
      slot: 'object',
      principal: 'member',
      parse: (req) => {
        const path = entryPathParam(req);
        const size = uploadSize(req.headers['content-length'], 'whole');
        deps.throttle.checkEntrySize(size);
        return { path, size, mtime: mtimeParam(queryString(req, 'mtime')), precondition: writePrecondition(req) };
      },
      access: { need: 'writer', cached: true },
    },
    async ({ req, res, id, principal, input, object }) => {
      // Its content lives on devices only: the bytes have nowhere to go.
      if (!object.value.cloudStorage) {
        throw new ApiError('peer_to_peer_only', `object ${id} keeps its content on devices only; commit the file's block list instead`);
      }
      const bytes = await readDeclaredBody(req, input.size);
      const writer = { userId: principal.userId, modifiedBy: modifierOf(principal) };
      const mtime = input.mtime === undefined ? {} : { mtime: input.mtime };
      const request = { objectId: id, path: input.path, bytes, ...mtime, precondition: input.precondition, writer };
      answerCommit(res, await writeFileContent({ entries, uploads: deps.uploads }, request));
    },
  );
  const put: express.RequestHandler = (req, res, next) =>
    isOctetStream(req.headers['content-type']) ? writeWhole(req, res, next) : json(req, res, next);
  // The paths without `*path` name the empty entry path: 400 invalid_path, not a missing route.
  // Separate routes, not an array of paths, so that each keeps its own route label.
  router.put('/v1/objects/:id/entries/*path', put, commit);
  router.put('/v1/objects/:id/entries', put, commit);

  const remove = hooks.route(
    {
      ids: ['id'],
      slot: 'object',
      principal: 'member',
      parse: (req) => {
        const path = entryPathParam(req);
        const precondition = writePrecondition(req);
        if (precondition.kind === 'create') throw invalidRequest('If-None-Match', 'If-None-Match: * makes no sense for a delete');
        return { path, precondition };
      },
      access: { need: 'writer' },
    },
    async ({ res, id, principal, input }) => {
      const entry = await deleteEntry(entries, {
        objectId: id,
        ...input,
        writer: { userId: principal.userId, modifiedBy: modifierOf(principal) },
      });
      res.setHeader('ETag', strongEtag(String(entry.version))).json(entryView(entry));
    },
  );
  router.delete('/v1/objects/:id/entries/*path', remove);
  router.delete('/v1/objects/:id/entries', remove);

  router.get(
    '/v1/objects/:id/entries/*path',
    hooks.route(
      { ids: ['id'], slot: 'object', principal: 'member', parse: entryPathParam, access: { need: 'reader' } },
      async ({ req, res, id, input }) => {
        const entry = await liveEntry(entries.metadata, id, input);
        res.setHeader('ETag', strongEtag(String(entry.version))).setHeader('Cache-Control', 'private, no-cache');
        if (req.fresh) {
          res.status(304).end();
          return;
        }
        res.json(entryView(entry));
      },
    ),
  );

  router.get(
    '/v1/objects/:id/entries',
    hooks.route(
      {
        ids: ['id'],
        slot: 'object',
        principal: 'member',
        parse: (req) => {
          // Routing ignores a trailing slash: `.../entries/` is the entry with the empty path, not the listing.
          if (req.path.endsWith('/')) throw new InvalidPathError('path is empty');
          const pageText = queryString(req, 'page');
          const page = pageText === undefined ? undefined : parsePageToken(pageText);
          if (page?.since !== undefined) throw new InvalidCursorError('page token belongs to a change set, not a listing');
          return { limit: pageLimit(req.query.limit, page), page };
        },
        access: { need: 'reader' },
      },
      async ({ res, id, input }) => {
        res.setHeader('Cache-Control', 'private, no-cache').json(await listLiveEntries(entries.metadata, id, input.page, input.limit));
      },
    ),
  );

  // No access hook: the change set checks access itself, every time a waiting poll runs it again.
  router.get(
    '/v1/objects/:id/changes',
    hooks.route(
      {
        ids: ['id'],
        slot: 'object',
        principal: 'member',
        parse: (req) => {
          const pageText = queryString(req, 'page');
          const cursorText = queryString(req, 'cursor');
          const page = pageText === undefined ? undefined : parsePageToken(pageText);
          const limit = pageLimit(req.query.limit, page);
          if (page !== undefined && page.since === undefined)
            throw new InvalidCursorError('page token belongs to a listing, not a change set');
          if (page === undefined && cursorText === undefined)
            throw invalidRequest('cursor', 'cursor: is required (from a listing or an earlier change set)');
          const wait = parseWaitSeconds(req.query.wait, 0);
          if (wait > 0 && page !== undefined)
            throw invalidRequest('wait', 'wait: a page of a change set is answered at once; wait with the cursor instead');
          return { limit, page, since: page?.since ?? parseCursor(cursorText!), wait };
        },
      },
      async ({ res, next, id, principal, input }) => {
        const query: ChangesQuery = {
          deps: deps.changes,
          userId: principal.userId,
          id,
          since: input.since,
          page: input.page,
          limit: input.limit,
        };
        if (input.wait === 0) {
          res.setHeader('Cache-Control', 'private, no-cache').json((await runChanges(query)).body);
          return;
        }
        deps.longPolls.objectChanges(
          { userId: principal.userId, clientId: modifierOf(principal) },
          id,
          query,
          changesPollHandler,
          input.wait,
          res,
          next,
        );
      },
    ),
  );

  return router;
}
