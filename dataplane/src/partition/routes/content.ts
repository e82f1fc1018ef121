// Content: which blocks the caller has not proved possession of, block upload and download
// (scoped per caller, ADR 24; a download may be a redirect to the store, ADR 71), and a file's content streamed from its blocks with ETag,
// If-None-Match, Range and Cache-Control. Nothing here passes through a body parser: bodies
// stream to and from S3 with backpressure.
import type { KeyObject } from 'node:crypto';
import { Router } from 'express';
import type express from 'express';
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import { ApiError } from '@meshwork/contract';
import { ifNoneMatchHits, strongEtag } from '../../http/preconditions.ts';
import { contentRange, parseRange } from '../../http/range.ts';
import type { BlockStore } from '../../stores/block-store.ts';
import { BlockHashMismatchError } from '../../stores/hash-verifier.ts';
import type { MetadataStore } from '../../stores/metadata-store.ts';
import { planBlockReads, type BlockRead } from '../content-plan.ts';
import { ClientGoneError, sendBlocks } from '../content-stream.ts';
import { invalidRequest } from '../errors.ts';
import type { RouteHooks } from '../hooks.ts';
import { entryPathParam } from '../request-params.ts';
import { blockLocationsBody, blockUploadsBody, blockUploadTargetsBody, missingBlocksBody, validate } from '../schemas.ts';
import {
  blockUploads,
  confirmUploads,
  missingBlocks,
  readableBlockSize,
  readableBlockSizes,
  uploadBlock,
  uploadSize,
  uploadTagOf,
  type BlockMetadata,
  type UploadRedirect,
} from '../sync/blocks.ts';
import { liveEntry } from '../sync/entries.ts';
import type { PossessionCache } from '../sync/possession-cache.ts';
import type { QuotaCache } from '../sync/quota-cache.ts';

/** What the content routes need besides the hooks. */
export interface ContentRouteDeps {
  blocks: BlockStore;
  metadata: Pick<MetadataStore, 'getEntry'> & BlockMetadata;
  logger: Logger;
  /** Where uploads remember their proofs for the commits that follow. */
  possession?: PossessionCache;
  /** The users' quotas, as recently read. */
  quotas: Pick<QuotaCache, 'quotaOf'>;
  /** When set, a block GET answers `307` to a presigned URL at this address of the store. */
  downloadRedirect?: { endpoint: URL; expiresInSeconds: number } | undefined;
  /** When set, `POST /v1/blocks/uploads` answers presigned PUT URLs at the store (ADR 80). */
  uploadRedirect?: UploadRedirect | undefined;
  /** The key of the upload tags `POST /v1/blocks/uploaded` checks: the one URLs are given with, where they are. */
  uploadTagKey: KeyObject;
}

function shaParam(value: unknown): string {
  if (typeof value !== 'string' || !/^[0-9a-f]{64}$/.test(value)) throw invalidRequest('sha256', 'sha256: must be a lower-case hex sha256');
  return value;
}

/** Routes for blocks and file content. */
export function contentRoutes(hooks: RouteHooks, deps: ContentRouteDeps, json: express.RequestHandler): Router {
  const router = Router();
  const { blocks, logger } = deps;

  // What the file route sets before its first byte; taken back when the first block cannot be read.
  const fileHeaders = ['ETag', 'Last-Modified', 'Accept-Ranges', 'Cache-Control', 'Content-Type', 'Content-Length', 'Content-Range'];

  async function sendContent(res: Response, reads: readonly BlockRead[], what: string): Promise<void> {
    try {
      await sendBlocks(blocks, reads, res);
      res.end();
    } catch (err) {
      // Nothing sent yet (the store failed before the first byte): the error handler answers it (503 for a store outage).
      if (!res.headersSent && !(err instanceof ClientGoneError) && !(err instanceof BlockHashMismatchError)) {
        for (const name of fileHeaders) res.removeHeader(name);
        res.statusCode = 200;
        throw err;
      }
      // Headers are gone already; the truncated body (shorter than Content-Length) tells the client.
      if (err instanceof BlockHashMismatchError) {
        logger.error({ err, what }, 'Refused to serve a corrupt block');
      } else if (!(err instanceof ClientGoneError)) {
        logger.warn({ err, what }, 'Stopped streaming content');
      }
      res.destroy();
    }
  }

  router.post(
    '/v1/blocks/missing',
    json,
    hooks.route({ principal: 'member', parse: (req) => validate(missingBlocksBody, req.body) }, async ({ res, principal, input }) => {
      res.json({ missing: await missingBlocks(deps.metadata, principal.userId, input.blocks) });
    }),
  );

  router.post(
    '/v1/blocks/locations',
    json,
    hooks.route({ principal: 'member', parse: (req) => validate(blockLocationsBody, req.body) }, async ({ req, res, principal, input }) => {
      const { readable, unreadable } = await readableBlockSizes(deps, principal.userId, input.blocks);
      const redirect = deps.downloadRedirect;
      if (redirect === undefined) {
        // Nothing to point at but the partition itself: a block without a URL is read with `GET /v1/blocks/{sha256}`.
        res.setHeader('Cache-Control', 'no-store').json({ blocks: readable, unreadable });
        return;
      }
      // The URLs are credentials, as a block GET's redirect is (ADR 71); signed as that one is.
      const checksumMode = req.headers['x-amz-checksum-mode'] === 'ENABLED';
      const date = new Date();
      const expiresAt = new Date(date.getTime() + redirect.expiresInSeconds * 1000).toISOString();
      const located = await Promise.all(
        readable.map(async (b) => ({
          ...b,
          url: await blocks.presignedGet(b.sha256, redirect.endpoint, redirect.expiresInSeconds, { checksumMode, date }),
        })),
      );
      res.setHeader('Cache-Control', 'no-store').json({ blocks: located, unreadable, expiresAt });
    }),
  );

  router.post(
    '/v1/blocks/uploads',
    json,
    hooks.route({ principal: 'member', parse: (req) => validate(blockUploadTargetsBody, req.body) }, async ({ res, principal, input }) => {
      // Presigned URLs are credentials, as a redirect's are (ADR 71): nothing may keep them.
      const answer = await blockUploads(deps, principal.userId, input.blocks, deps.uploadRedirect, {
        checkStore: input.checkStore === true,
      });
      res.setHeader('Cache-Control', 'no-store').json(answer);
    }),
  );

  router.post(
    '/v1/blocks/uploaded',
    json,
    hooks.route({ principal: 'member', parse: (req) => validate(blockUploadsBody, req.body) }, async ({ res, principal, input }) => {
      // Checked even where this process gives out no URLs: another replica of the service may have.
      res.json(await confirmUploads(deps, principal.userId, input.blocks, uploadTagOf(deps.uploadTagKey, principal.userId)));
    }),
  );

  const checkSha = (req: Request): void => void shaParam(req.params.sha256);
  const readFile = { ids: ['id'], slot: 'object', principal: 'member', parse: entryPathParam, access: { need: 'reader' } } as const;

  router.put(
    '/v1/blocks/:sha256',
    hooks.route(
      {
        checkUrl: checkSha,
        principal: 'member',
        parse: (req) => ({ sha256: shaParam(req.params.sha256), size: uploadSize(req.headers['content-length']) }),
      },
      async ({ req, res, principal, input }) => {
        const { sha256, size } = input;
        await uploadBlock(
          { blocks, metadata: deps.metadata, possession: deps.possession, quotas: deps.quotas },
          principal.userId,
          sha256,
          size,
          req,
        );
        res.status(201).setHeader('ETag', strongEtag(sha256)).json({ sha256, size });
      },
    ),
  );

  router.get(
    '/v1/blocks/:sha256',
    hooks.route(
      { checkUrl: checkSha, principal: 'member', parse: (req) => shaParam(req.params.sha256) },
      async ({ req, res, principal, input: sha256 }) => {
        const size = await readableBlockSize({ blocks, metadata: deps.metadata }, principal.userId, sha256);
        const etag = strongEtag(sha256);
        res.setHeader('ETag', etag).setHeader('Cache-Control', 'private, max-age=31536000, immutable');
        if (ifNoneMatchHits(req.headers['if-none-match'], etag)) {
          res.status(304).end();
          return;
        }
        const redirect = deps.downloadRedirect;
        if (redirect !== undefined && req.method === 'GET') {
          // The bytes come from the store itself; the URL is the credential, so nothing may keep it.
          // A client that asks for the store's checksum (the header follows the redirect) gets a URL
          // signed for that header too, since S3 refuses a presigned request's unsigned `x-amz-*` headers.
          const checksumMode = req.headers['x-amz-checksum-mode'] === 'ENABLED';
          const location = await blocks.presignedGet(sha256, redirect.endpoint, redirect.expiresInSeconds, { checksumMode });
          res.removeHeader('ETag');
          res.status(307).setHeader('Location', location).setHeader('Cache-Control', 'no-store').end();
          return;
        }
        res.setHeader('Content-Type', 'application/octet-stream').setHeader('Content-Length', String(size));
        if (req.method === 'HEAD') {
          res.end();
          return;
        }
        await sendContent(res, [{ sha256, size, skip: 0, take: size }], `block ${sha256}`);
      },
    ),
  );

  router.get(
    '/v1/objects/:id/content/*path',
    hooks.route(readFile, async ({ req, res, id, object, input: path }) => {
      const entry = await liveEntry(deps.metadata, id, path);
      if (entry.value.kind !== 'file') throw new ApiError('not_a_file', `entry ${path} is a directory`);
      // Its blocks were never uploaded: the service has nothing to stream.
      if (!object.value.cloudStorage) {
        throw new ApiError('peer_to_peer_only', `object ${id} keeps its content on devices only; ${path} is not in the cloud`);
      }
      const file = entry.value;
      const etag = strongEtag(file.contentHash!);
      res
        .setHeader('ETag', etag)
        .setHeader('Cache-Control', 'private, no-cache')
        .setHeader('Accept-Ranges', 'bytes')
        .setHeader('Last-Modified', new Date(file.mtime).toUTCString());
      if (ifNoneMatchHits(req.headers['if-none-match'], etag)) {
        res.status(304).end();
        return;
      }
      // If-Range: a range is only honoured for the representation the client already has part of.
      const ifRange = req.headers['if-range'];
      const rangeHeader = ifRange === undefined || ifRange === etag ? req.headers.range : undefined;
      const range = parseRange(rangeHeader, file.size);
      if (range.kind === 'unsatisfiable') {
        res.setHeader('Content-Range', `bytes */${file.size}`);
        throw new ApiError('range_not_satisfiable', `the range lies outside the ${file.size} bytes of ${path}`);
      }
      const span = range.kind === 'partial' ? range.range : { start: 0, end: file.size - 1 };
      res.setHeader('Content-Type', 'application/octet-stream');
      if (range.kind === 'partial') res.status(206).setHeader('Content-Range', contentRange(span, file.size));
      res.setHeader('Content-Length', String(file.size === 0 ? 0 : span.end - span.start + 1));
      if (req.method === 'HEAD' || file.size === 0) {
        res.end();
        return;
      }
      await sendContent(res, planBlockReads(file.blocks, span), `${id}/${path}`);
    }),
  );

  return router;
}
