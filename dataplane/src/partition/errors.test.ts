// The failure classification: every typed error of the layers below becomes the catalogue's
// code and status, etcd failures are recognised by the etcd3 client's classes (whose `name`
// is plain "Error", so no name pattern could), and what is not known is a 500.
import { ApiError, MeshworkError } from '@meshwork/contract';
import { ClientClosedError, EtcdError, EtcdLeaseInvalidError, GRPCDeadlineExceededError, GRPCUnavailableError } from 'etcd3';
import { describe, expect, it } from 'vitest';
import { InvalidCursorError } from '../cursor.ts';
import { InvalidPathError } from '../paths.ts';
import { BlockStoreError } from '../stores/block-store.ts';
import { HistoryCompactedError, OwnershipLostError } from '../stores/metadata-store.ts';
import { EtcdKeepAliveError, PresenceConflictError } from '../stores/presence-store.ts';
import { SlotMovedError } from '../stores/slot-fence.ts';
import { classifyFailure, isEtcdFailure, type FailureKind } from './errors.ts';
import { ValidationError } from './schemas.ts';

const limit = 2 * 1024 * 1024;

describe('classifyFailure', () => {
  it.each<[string, unknown, FailureKind, string, number, Record<string, unknown>, Record<string, string>]>([
    [
      'an ApiError as it is',
      new ApiError('blocks_missing', 'm', { details: { missing: ['a'] } }),
      'answer',
      'blocks_missing',
      409,
      { missing: ['a'] },
      {},
    ],
    [
      'a validation error with its field',
      new ValidationError('body.name', 'too long'),
      'answer',
      'invalid_request',
      400,
      { field: 'body.name' },
      {},
    ],
    ['a bad path', new InvalidPathError('bad'), 'answer', 'invalid_path', 400, { field: 'path' }, {}],
    ['a bad cursor', new InvalidCursorError('bad'), 'answer', 'invalid_cursor', 400, { field: 'cursor' }, {}],
    ['a compacted revision', new HistoryCompactedError('gone'), 'answer', 'cursor_expired', 410, { relist: true }, {}],
    ['a moved fence', new OwnershipLostError('moved'), 'ownership_lost', 'ownership_lost', 503, {}, { 'Retry-After': '1' }],
    ['a slot that moved under a write', new SlotMovedError('moved'), 'answer', 'slot_moving', 503, {}, { 'Retry-After': '1' }],
    ['an over-large body', { type: 'entity.too.large', status: 413, message: 'x' }, 'answer', 'too_large', 413, {}, {}],
    ['unparsable JSON', { type: 'entity.parse.failed', status: 400, message: 'x' }, 'answer', 'invalid_json', 400, { field: 'body' }, {}],
    [
      'an unsupported charset',
      { type: 'charset.unsupported', status: 415, message: 'x' },
      'answer',
      'unsupported_media_type',
      415,
      { field: 'body' },
      {},
    ],
    ['an aborted body', { type: 'request.aborted', status: 400, message: 'x' }, 'answer', 'invalid_request', 400, { field: 'body' }, {}],
    [
      'a body stream the parser could not read',
      { type: 'stream.not.readable', status: 500, message: 'x' },
      'internal',
      'internal',
      500,
      {},
      {},
    ],
    ['S3 failing', new BlockStoreError('500'), 'store', 'store_unavailable', 503, {}, { 'Retry-After': '1' }],
    ['etcd unreachable', new GRPCUnavailableError('down'), 'store', 'store_unavailable', 503, {}, { 'Retry-After': '1' }],
    ['etcd too slow', new GRPCDeadlineExceededError('slow'), 'store', 'store_unavailable', 503, {}, { 'Retry-After': '1' }],
    ['an etcd server error', new EtcdError('etcdserver: too many requests'), 'store', 'store_unavailable', 503, {}, { 'Retry-After': '1' }],
    ['an unanswered keep-alive', new EtcdKeepAliveError('no answer'), 'store', 'store_unavailable', 503, {}, { 'Retry-After': '1' }],
    ['a closed etcd client (a bug, not an outage)', new ClientClosedError('kv'), 'internal', 'internal', 500, {}, {}],
    ['anything else', new TypeError('x is undefined'), 'internal', 'internal', 500, {}, {}],
  ])('answers %s', (_what, err, kind, code, status, details, headers) => {
    const failure = classifyFailure(err, limit);
    expect(failure.kind).toBe(kind);
    expect(failure.error).toMatchObject({ code, status, details, headers });
    expect(failure.error.toJSON().error).toEqual({ code, message: failure.error.message, ...details });
  });

  it('never answers a stack trace or the inner message of an unexpected error', () => {
    const failure = classifyFailure(new Error('secret internals'), limit);
    expect(failure.error.message).toBe('internal error');
    expect(failure.error.cause).toBeInstanceOf(Error);
  });

  it('names the body limit in a 413', () => {
    expect(classifyFailure({ type: 'entity.too.large', status: 413, message: 'x' }, 1234).error.message).toBe(
      'the body is larger than 1234 bytes',
    );
  });
});

describe('isEtcdFailure', () => {
  it.each<[string, unknown, boolean]>([
    ['GRPCUnavailableError', new GRPCUnavailableError('x'), true],
    ['EtcdLeaseInvalidError', new EtcdLeaseInvalidError('1'), true],
    ['EtcdKeepAliveError', new EtcdKeepAliveError('x'), true],
    ['an Error merely named like one', Object.assign(new Error('x'), { name: 'GRPCUnavailableError' }), false],
    ['PresenceConflictError', new PresenceConflictError('x'), false],
    ['a string', 'GRPC', false],
  ])('%s: %s', (_what, err, expected) => {
    expect(isEtcdFailure(err)).toBe(expected);
  });
});

describe('typed errors', () => {
  const typed = [
    new ValidationError('f', 'm'),
    new HistoryCompactedError('m'),
    new OwnershipLostError('m'),
    new SlotMovedError('m'),
    new EtcdKeepAliveError('m'),
    new PresenceConflictError('m'),
  ];
  it.each(typed)('%s derives from MeshworkError and is named after its class', (err) => {
    expect(err).toBeInstanceOf(MeshworkError);
    expect(err.name).toBe(err.constructor.name);
  });
});
