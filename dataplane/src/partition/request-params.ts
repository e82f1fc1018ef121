// Parsing of URL parts shared by several route files: an entry path from a `*path` wildcard,
// a page size, a query parameter given once. Route files import these, never each other.
import type { Request } from 'express';
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

/** A query parameter that may be given at most once. */
export function queryString(req: Request, name: string): string | undefined {
  const value = req.query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw invalidRequest(name, `${name}: must be given once`);
  return value;
}
