// Content: which blocks the store lacks, block upload and download, and a file's content
// streamed from its blocks with ETag, If-None-Match, Range and Cache-Control. Nothing here
// passes through a body parser: bodies stream to and from S3 with backpressure.
import { Router } from 'express';
import type express from 'express';
import type { Request, Response } from 'express';
import { ifNoneMatchHits, strongEtag } from '../../http/preconditions.ts';
import { contentRange, parseRange } from '../../http/range.ts';
import { BlockHashMismatchError, BlockSizeMismatchError } from '../../stores/hash-verifier.ts';
import { ApiError, notFound } from '../api-error.ts';
import { memberPrincipalOf, type PartitionContext } from '../context.ts';
import { planBlockReads, type BlockRead } from '../content-plan.ts';
import { ClientGoneError, sendBlocks } from '../content-stream.ts';
import { maxBlockBytes, missingBlocksBody, validate } from '../schemas.ts';
import { readableEntry } from './entries.ts';

function shaParam(value: unknown): string {
  if (typeof value !== 'string' || !/^[0-9a-f]{64}$/.test(value)) {
    throw new ApiError(400, 'invalid_request', 'sha256: must be a lower-case hex sha256', { field: 'sha256' });
  }
  return value;
}

async function sendContent(ctx: PartitionContext, res: Response, reads: readonly BlockRead[], what: string): Promise<void> {
  try {
    await sendBlocks(ctx.blocks, reads, res);
    res.end();
  } catch (err) {
    // Headers are gone already; the truncated body (shorter than Content-Length) tells the client.
    if (err instanceof BlockHashMismatchError) {
      ctx.logger.error({ err, what }, 'Refused to serve a corrupt block');
    } else if (!(err instanceof ClientGoneError)) {
      ctx.logger.warn({ err, what }, 'Stopped streaming content');
    }
    res.destroy();
  }
}

/** Routes for blocks and file content. */
export function contentRoutes(ctx: PartitionContext, json: express.RequestHandler): Router {
  const router = Router();

  router.post('/v1/blocks/missing', json, async (req, res) => {
    await memberPrincipalOf(ctx, req, res);
    const body = validate(missingBlocksBody, req.body);
    const sizes = await ctx.blocks.sizesOf(body.blocks);
    res.json({ missing: [...new Set(body.blocks)].filter((sha) => sizes.get(sha) === undefined) });
  });

  router.put('/v1/blocks/:sha256', async (req: Request, res: Response) => {
    const sha256 = shaParam(req.params.sha256);
    await memberPrincipalOf(ctx, req, res);
    const lengthHeader = req.headers['content-length'];
    if (lengthHeader === undefined) throw new ApiError(411, 'length_required', 'Content-Length is required for a block upload');
    const size = Number(lengthHeader);
    if (!Number.isSafeInteger(size) || size < 1) throw new ApiError(400, 'invalid_request', 'Content-Length: must be a positive integer', { field: 'Content-Length' });
    if (size > maxBlockBytes) throw new ApiError(413, 'too_large', `a block is at most ${maxBlockBytes} bytes`);
    try {
      await ctx.blocks.put(sha256, size, req);
    } catch (err) {
      if (err instanceof BlockHashMismatchError) throw new ApiError(422, 'hash_mismatch', `the body does not hash to ${sha256}; nothing was stored`);
      if (err instanceof BlockSizeMismatchError) throw new ApiError(400, 'invalid_request', `body: ${err.message}`, { field: 'body' });
      throw err;
    }
    res.status(201).setHeader('ETag', strongEtag(sha256)).json({ sha256, size });
  });

  router.get('/v1/blocks/:sha256', async (req, res) => {
    const sha256 = shaParam(req.params.sha256);
    await memberPrincipalOf(ctx, req, res);
    const size = await ctx.blocks.sizeOf(sha256);
    if (size === undefined) throw notFound(`block ${sha256}`);
    const etag = strongEtag(sha256);
    res.setHeader('ETag', etag).setHeader('Cache-Control', 'private, max-age=31536000, immutable');
    if (ifNoneMatchHits(req.headers['if-none-match'], etag)) {
      res.status(304).end();
      return;
    }
    res.setHeader('Content-Type', 'application/octet-stream').setHeader('Content-Length', String(size));
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    await sendContent(ctx, res, [{ sha256, size, skip: 0, take: size }], `block ${sha256}`);
  });

  router.get('/v1/objects/:id/content/*path', async (req, res) => {
    const { id, path, entry } = await readableEntry(ctx, req, res);
    if (entry.value.kind !== 'file') throw new ApiError(409, 'not_a_file', `entry ${path} is a directory`);
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
      throw new ApiError(416, 'range_not_satisfiable', `the range lies outside the ${file.size} bytes of ${path}`);
    }
    const span = range.kind === 'partial' ? range.range : { start: 0, end: file.size - 1 };
    res.setHeader('Content-Type', 'application/octet-stream');
    if (range.kind === 'partial') res.status(206).setHeader('Content-Range', contentRange(span, file.size));
    res.setHeader('Content-Length', String(file.size === 0 ? 0 : span.end - span.start + 1));
    if (req.method === 'HEAD' || file.size === 0) {
      res.end();
      return;
    }
    await sendContent(ctx, res, planBlockReads(file.blocks, span), `${id}/${path}`);
  });

  return router;
}
