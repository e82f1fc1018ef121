// The JSON body of the routes that take one, read here rather than by express.json so that every
// way a client can get a body wrong is a 4xx of the error catalogue, answered at once: a body
// that is not declared `application/json` (a cross-site form can send text/plain, never JSON)
// is 415, a declared length over the limit is 413 before a byte is read, a body that is not in
// its Content-Encoding is 400. What is left unread of a refused body is drained, bounded, by the
// app's error handler (RFC 9112 §9.6), so a client still sending reads its answer.
import type { Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { RequestHandler } from 'express';
import { ApiError } from '@meshwork/contract';

/** How a Content-Type header stands to a JSON route. */
export type JsonMediaType = 'json' | 'not_json' | 'bad_charset';

/** Whether `contentType` is `application/json`, with no parameter but an optional UTF-8 charset. */
export function jsonMediaType(contentType: string | undefined): JsonMediaType {
  if (contentType === undefined) return 'not_json';
  const [type, ...params] = contentType.split(';');
  if (type!.trim().toLowerCase() !== 'application/json') return 'not_json';
  for (const param of params) {
    const [name, value = ''] = param.split('=', 2).map((part) => part.trim().toLowerCase());
    if (name === '' && value === '') continue;
    if (name !== 'charset' || !['utf-8', '"utf-8"', 'utf8'].includes(value)) return 'bad_charset';
  }
  return 'json';
}

/** Content-Encodings a JSON body may come in (RFC 9110 §8.4.1), each with its decoder. */
const decoders: Record<string, (() => NodeJS.ReadWriteStream) | undefined> = {
  identity: undefined,
  gzip: createGunzip,
  'x-gzip': createGunzip,
  deflate: createInflate,
  br: createBrotliDecompress,
};

/** Whether a request announces a body: chunked, or a Content-Length other than 0. */
export function announcesBody(headers: { 'transfer-encoding'?: string | undefined; 'content-length'?: string | undefined }): boolean {
  return headers['transfer-encoding'] !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0');
}

function bodyError(message: string, cause?: unknown): ApiError {
  return new ApiError('invalid_request', `body: ${message}`, { details: { field: 'body' }, cause });
}

/** Reads `source` whole, refusing more than `limit` bytes. */
function readAll(source: Readable, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (err: ApiError | undefined): void => {
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('error', onError);
      source.off('aborted', onAborted);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        source.pause();
        done(new ApiError('too_large', `the body is larger than ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => done(undefined);
    const onError = (err: Error): void => done(bodyError('could not be read or decoded', err));
    const onAborted = (): void => done(bodyError('the client stopped sending it'));
    source.on('data', onData);
    source.once('end', onEnd);
    source.once('error', onError);
    source.once('aborted', onAborted);
  });
}

/** Middleware that parses a JSON body into `req.body` (undefined when the request has none), at most `limit` decoded bytes. */
export function jsonBody(limit: number): RequestHandler {
  return async (req, _res, next) => {
    req.body = undefined;
    if (!announcesBody(req.headers)) {
      next();
      return;
    }
    const media = jsonMediaType(req.headers['content-type']);
    if (media !== 'json') {
      const message =
        media === 'bad_charset' ? 'a JSON body must be UTF-8' : 'the body of this route must be sent as Content-Type: application/json';
      throw new ApiError('unsupported_media_type', message, { details: { field: 'Content-Type' } });
    }
    const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
    if (!Object.hasOwn(decoders, encoding)) {
      throw new ApiError('unsupported_media_type', `Content-Encoding ${encoding} is not one of ${Object.keys(decoders).join(', ')}`, {
        details: { field: 'Content-Encoding' },
      });
    }
    if (encoding === 'identity' && Number(req.headers['content-length']) > limit)
      throw new ApiError('too_large', `the body is larger than ${limit} bytes`);
    // Already read, or the client went away while the request was being admitted.
    if (!req.readable) throw bodyError('could not be read: the request ended before it was');
    const decoder = decoders[encoding]?.();
    let bytes: Buffer;
    if (decoder === undefined) {
      bytes = await readAll(req, limit);
    } else {
      req.pipe(decoder);
      try {
        bytes = await readAll(decoder as unknown as Readable, limit);
      } catch (err) {
        throw err instanceof ApiError && err.code === 'invalid_request' ? bodyError(`is not valid ${encoding}`, err.cause) : err;
      } finally {
        // What is left of the request is the error handler's to drain.
        req.unpipe(decoder);
        decoder.on('error', () => undefined);
        (decoder as unknown as Readable).destroy();
      }
    }
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch (err) {
      throw new ApiError('invalid_json', 'body: is not UTF-8', { details: { field: 'body' }, cause: err });
    }
    try {
      req.body = JSON.parse(text) as unknown;
    } catch (err) {
      throw new ApiError('invalid_json', 'body: is not valid JSON', { details: { field: 'body' }, cause: err });
    }
    next();
  };
}
