// How the partition answers a failure: every thrown error becomes one ApiError of the catalogue
// in @meshwork/contract (code and status defined once), so the error handler only writes it.
// Typed errors of the layers below (validation, paths, cursors, the stores) are recognised by
// class here; etcd failures by the etcd3 client's exported error classes.
import {
  EtcdAuthenticationFailedError,
  EtcdError,
  EtcdInvalidAuthTokenError,
  EtcdLeaseInvalidError,
  EtcdPermissionDeniedError,
  EtcdWatchStreamEnded,
  GRPCGenericError,
} from 'etcd3';
import { ApiError } from '@meshwork/contract';
import { InvalidCursorError } from '../cursor.ts';
import { InvalidPathError } from '../paths.ts';
import { BlockStoreError } from '../stores/block-store.ts';
import { EtcdCallError, HistoryCompactedError, OwnershipLostError } from '../stores/metadata-store.ts';
import { SlotMovedError } from '../stores/slot-fence.ts';
import { EtcdKeepAliveError } from '../stores/presence-store.ts';
import { ValidationError } from './schemas.ts';

/** 404 that never says whether the thing exists for someone else. */
export function notFound(what: string): ApiError {
  return new ApiError('not_found', `${what} not found`);
}

/** 400 `invalid_request` naming the offending field, as every validation failure does. */
export function invalidRequest(field: string, message: string): ApiError {
  return new ApiError('invalid_request', message, { details: { field } });
}

// Every failure class etcd3 raises for an unreachable, failing or refusing etcd (GRPC* derive
// from GRPCGenericError); its programming errors (ClientClosedError, ClientRuntimeError) are not here.
const etcdFailures = [
  GRPCGenericError,
  EtcdError,
  EtcdLeaseInvalidError,
  EtcdWatchStreamEnded,
  EtcdAuthenticationFailedError,
  EtcdInvalidAuthTokenError,
  EtcdPermissionDeniedError,
];

/**
 * Whether `err` is the etcd client's circuit breaker refusing a call after consecutive failures
 * (cockatiel's BrokenCircuitError, which etcd3 raises as it is): recognised by the brand
 * property cockatiel's own `isBrokenCircuitError` checks, since cockatiel is etcd3's dependency,
 * not ours.
 */
export function isBrokenCircuit(err: unknown): boolean {
  return err instanceof Error && (err as { isBrokenCircuitError?: unknown }).isBrokenCircuitError === true;
}

/** Whether `err` is etcd failing to serve a request (a store outage: 503, retry). */
export function isEtcdFailure(err: unknown): boolean {
  return (
    etcdFailures.some((failure) => err instanceof failure) ||
    err instanceof EtcdKeepAliveError ||
    err instanceof EtcdCallError ||
    isBrokenCircuit(err)
  );
}

/** What the error handler does with a failure besides answering it. */
export type FailureKind = 'answer' | 'ownership_lost' | 'store' | 'internal';

/** A failure as the catalogue answers it, and what else it calls for. */
export interface Failure {
  error: ApiError;
  kind: FailureKind;
}

interface BodyParserError {
  type: string;
  status: number;
  message: string;
}

function isBodyParserError(err: unknown): err is BodyParserError {
  if (typeof err !== 'object' || err === null) return false;
  const { type, status } = err as { type?: unknown; status?: unknown };
  return typeof type === 'string' && typeof status === 'number';
}

function bodyParserFailure(err: BodyParserError, maxJsonBytes: number): Failure {
  if (err.type === 'entity.too.large')
    return { error: new ApiError('too_large', `the body is larger than ${maxJsonBytes} bytes`), kind: 'answer' };
  if (err.type === 'entity.parse.failed') {
    return { error: new ApiError('invalid_json', 'body: is not valid JSON', { details: { field: 'body' } }), kind: 'answer' };
  }
  // An unsupported Content-Encoding or charset is 415; a stream the parser could not read (its 500s) is a bug here.
  if (err.status === 415)
    return { error: new ApiError('unsupported_media_type', `body: ${err.message}`, { details: { field: 'body' } }), kind: 'answer' };
  if (err.status >= 500) return { error: new ApiError('internal', 'internal error', { cause: err }), kind: 'internal' };
  return { error: invalidRequest('body', `body: ${err.message}`), kind: 'answer' };
}

/** Classifies any thrown value into the catalogue's answer; `maxJsonBytes` names the body limit in a 413. */
export function classifyFailure(err: unknown, maxJsonBytes: number): Failure {
  if (err instanceof ApiError) return { error: err, kind: 'answer' };
  if (err instanceof ValidationError) return { error: invalidRequest(err.field, err.message), kind: 'answer' };
  if (err instanceof InvalidPathError)
    return { error: new ApiError('invalid_path', err.message, { details: { field: 'path' }, cause: err }), kind: 'answer' };
  if (err instanceof InvalidCursorError) {
    return { error: new ApiError('invalid_cursor', err.message, { details: { field: 'cursor' }, cause: err }), kind: 'answer' };
  }
  if (err instanceof HistoryCompactedError) {
    const message = 'the cursor is older than the retained history; list the entries again';
    return { error: new ApiError('cursor_expired', message, { details: { relist: true }, cause: err }), kind: 'answer' };
  }
  if (err instanceof OwnershipLostError) {
    const message = 'this process no longer owns these slots; retry';
    return { error: new ApiError('ownership_lost', message, { headers: { 'Retry-After': '1' }, cause: err }), kind: 'ownership_lost' };
  }
  if (err instanceof SlotMovedError) {
    const message = 'the slot moved to another partition while this write was on its way; nothing was written; retry';
    return { error: new ApiError('slot_moving', message, { headers: { 'Retry-After': '1' }, cause: err }), kind: 'answer' };
  }
  if (isBodyParserError(err)) return bodyParserFailure(err, maxJsonBytes);
  if (err instanceof BlockStoreError || isEtcdFailure(err)) {
    const message = 'a backing store is unavailable; retry';
    return { error: new ApiError('store_unavailable', message, { headers: { 'Retry-After': '1' }, cause: err }), kind: 'store' };
  }
  return { error: new ApiError('internal', 'internal error', { cause: err }), kind: 'internal' };
}
