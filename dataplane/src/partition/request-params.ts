// Parsing of URL parts shared by several route files: the percent-encoding of the whole path,
// an entry path from a `*path` wildcard, a page size, a query parameter given once. Route files import these, never each other.
import type { Request } from 'express';
import type { Readable } from 'node:stream';
import { parse as parseQueryString, type ParsedUrlQuery } from 'node:querystring';
import { ApiError } from '@meshwork/contract';
import { normalizeEntryPath } from '../paths.ts';
import { invalidRequest } from './errors.ts';

const defaultPageSize = 1000;
const maxPageSize = 5000;

/** The normalised entry path from a `*path` route parameter. */
export function entryPathParam(req: Request): string {
  const raw = (req.params as Record<string, unknown>).path;
  const joined = Array.isArray(raw) ? raw.join('/') : typeof raw === 'string' ? raw : '';
  return normalizeEntryPath(joined);
}

/** The `limit` of a page: 1 to 5000, 1000 when absent. */
export function pageSize(value: unknown): number {
  if (value === undefined) return defaultPageSize;
  const n = Number(value);
  if (typeof value !== 'string' || !Number.isInteger(n) || n < 1 || n > maxPageSize) {
    throw invalidRequest('limit', `limit: must be an integer from 1 to ${maxPageSize}`);
  }
  return n;
}

/** The `limit` of a page: as asked, else the one its page token carries from the first page, else 1000. */
export function pageLimit(value: unknown, token: { limit?: number } | undefined): number {
  return value === undefined && token?.limit !== undefined ? token.limit : pageSize(value);
}

/** Whether a Content-Type header is `application/octet-stream` (its parameters ignored). */
export function isOctetStream(contentType: string | undefined): boolean {
  return contentType !== undefined && contentType.split(';', 1)[0]!.trim().toLowerCase() === 'application/octet-stream';
}

/** The whole body of a request that declared `size` bytes (400 when it stops short). */
export async function readDeclaredBody(req: Readable, size: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let read = 0;
  try {
    for await (const chunk of req) {
      chunks.push(chunk as Buffer);
      read += (chunk as Buffer).length;
    }
  } catch (err) {
    throw new ApiError('invalid_request', 'body: could not be read whole', { details: { field: 'body' }, cause: err });
  }
  if (read !== size) throw invalidRequest('body', `body: ${read} bytes, not the ${size} that Content-Length declares`);
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, read);
}

/** A query parameter that may be given at most once. */
export function queryString(req: Request, name: string): string | undefined {
  return queryValue(req.query, name);
}

/**
 * The query of a request target as express reads it with the app's 'simple' parser
 * (node:querystring, the part after `?` and before any `#`), without the parsed URL that
 * `req.query` leaves on the request: a waiting long poll should not keep one.
 */
export function queryOf(url: string): ParsedUrlQuery {
  const hash = url.indexOf('#');
  const target = hash === -1 ? url : url.slice(0, hash);
  const start = target.indexOf('?');
  return parseQueryString(start === -1 ? '' : target.slice(start + 1));
}

/** A parameter of a parsed query that may be given at most once. */
export function queryValue(query: Request['query'] | ParsedUrlQuery, name: string): string | undefined {
  const value = query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw invalidRequest(name, `${name}: must be given once`);
  return value;
}

// Where an object's entry path starts: /v1/objects/{id}/entries/... and .../content/...
const entryPathPrefix = /^\/v1\/objects\/[^/]*\/(?:entries|content)\//i;

function firstUndecodable(part: string): unknown {
  for (const segment of part.split('/')) {
    try {
      decodeURIComponent(segment);
    } catch (err) {
      return err;
    }
  }
  return undefined;
}

/**
 * Refuses a URL path with a segment that does not percent-decode (`%ff`, `%zz`, an overlong
 * UTF-8 form): 400 `invalid_path` inside an entry path, `invalid_request` elsewhere. Checked
 * before routing, which would otherwise fail to decode the route's parameters.
 */
export function checkPercentEncoding(path: string): void {
  if (!path.includes('%')) return;
  const prefix = entryPathPrefix.exec(path)?.[0] ?? '';
  const inUrl = firstUndecodable(prefix === '' ? path : prefix);
  if (inUrl !== undefined) {
    throw new ApiError('invalid_request', 'url: a path segment is not valid percent-encoded UTF-8', {
      details: { field: 'url' },
      cause: inUrl,
    });
  }
  const inEntryPath = prefix === '' ? undefined : firstUndecodable(path.slice(prefix.length));
  if (inEntryPath !== undefined) {
    throw new ApiError('invalid_path', 'path: a segment is not valid percent-encoded UTF-8', {
      details: { field: 'path' },
      cause: inEntryPath,
    });
  }
}
