// Sync cursors and page tokens. A cursor is the etcd revision up to which a client has seen
// an object; a page token continues a listing or a change set at a fixed snapshot.
import { MeshworkError } from '@meshwork/contract';

/** Raised for a cursor or page token that is not one this service issued. */
export class InvalidCursorError extends MeshworkError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid_cursor', message, options);
  }
}

/** Formats a revision as a cursor. */
export function formatCursor(revision: number): string {
  return String(revision);
}

/** Parses a cursor back into a revision. */
export function parseCursor(cursor: string): number {
  if (!/^\d{1,15}$/.test(cursor)) throw new InvalidCursorError('cursor is not one this service issued');
  return Number(cursor);
}

/** Where the next page of a listing or change set starts. */
export interface PageToken {
  /** The revision the whole result is read at, so pages agree with each other. */
  snapshot: number;
  /** The last entry path of the previous page. */
  after: string;
  /** For change sets: the cursor the client asked from. */
  since?: number;
  /** The page size the first page was asked with, so later pages keep it without `limit`. */
  limit?: number;
}

/** Encodes a page token as an opaque URL-safe string. */
export function formatPageToken(token: PageToken): string {
  const fields: unknown[] = [token.snapshot, token.after, token.since ?? null];
  if (token.limit !== undefined) fields.push(token.limit);
  return Buffer.from(JSON.stringify(fields)).toString('base64url');
}

/** Decodes a page token made by formatPageToken. */
export function parsePageToken(text: string): PageToken {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch (err) {
    throw new InvalidCursorError('page token is not one this service issued', { cause: err });
  }
  if (
    !Array.isArray(value) ||
    (value.length !== 3 && value.length !== 4) ||
    !Number.isSafeInteger(value[0]) ||
    (value[0] as number) < 1 ||
    typeof value[1] !== 'string' ||
    !(value[2] === null || (Number.isSafeInteger(value[2]) && (value[2] as number) >= 0)) ||
    !(value.length === 3 || (Number.isSafeInteger(value[3]) && (value[3] as number) >= 1))
  ) {
    throw new InvalidCursorError('page token is not one this service issued');
  }
  const [snapshot, after, since, limit] = value as [number, string, number | null, number | undefined];
  return { snapshot, after, ...(since === null ? {} : { since }), ...(limit === undefined ? {} : { limit }) };
}
