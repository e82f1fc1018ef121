// The one root of Meshwork's error classes and the public API's error catalogue: every error
// code a route may answer, defined once with its HTTP status. The partition answers with these
// codes and @meshwork/client raises the same typed errors, so a code means the same thing on
// both sides of the wire.

/** The root of every error class Meshwork defines; callers branch on `code`, never on the message. */
export class MeshworkError extends Error {
  /** A stable, machine-readable name of the failure (snake_case). */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * Every error code of the public API with its HTTP status and whether the client may retry the
 * same request (after `Retry-After` where the answer carries one).
 */
export const apiErrorCatalogue = {
  invalid_request: { status: 400, retryable: false, summary: 'a parameter, header or body field is invalid; error.field names it' },
  invalid_json: { status: 400, retryable: false, summary: 'the body is not valid JSON' },
  invalid_path: { status: 400, retryable: false, summary: 'an entry path breaks the path rules' },
  invalid_cursor: { status: 400, retryable: false, summary: 'a cursor or page token is malformed' },
  unauthenticated: { status: 401, retryable: false, summary: 'no token, or a token that is unknown or revoked' },
  forbidden: { status: 403, retryable: false, summary: 'the caller is known but may not do this' },
  not_found: { status: 404, retryable: false, summary: 'no such thing, or one the caller may not see' },
  method_not_allowed: { status: 405, retryable: false, summary: 'the route exists but not with this method; Allow lists those it takes' },
  conflict: { status: 409, retryable: false, summary: 'the request conflicts with the current state' },
  blocks_missing: { status: 409, retryable: false, summary: 'a commit names blocks the caller has not uploaded; error.missing lists them' },
  not_a_file: { status: 409, retryable: false, summary: 'the entry is a directory, not a file' },
  peer_to_peer_only: {
    status: 409,
    retryable: false,
    summary:
      "the object keeps its content on devices only (cloudStorage: false); fetch it from a device (sources, or the device's remote routes)",
  },
  cursor_expired: { status: 410, retryable: false, summary: 'the cursor is older than the retained history; list again (relist: true)' },
  length_required: { status: 411, retryable: false, summary: 'the upload has no Content-Length' },
  precondition_failed: { status: 412, retryable: false, summary: 'If-Match or If-None-Match did not hold; error.current is what is there' },
  too_large: { status: 413, retryable: false, summary: 'the body is larger than the route accepts' },
  entry_too_large: { status: 413, retryable: false, summary: 'a commit names more bytes than the maximum entry size' },
  unsupported_media_type: {
    status: 415,
    retryable: false,
    summary: 'the body is not in a Content-Type or Content-Encoding the route accepts',
  },
  range_not_satisfiable: { status: 416, retryable: false, summary: 'the Range lies outside the content' },
  misdirected: { status: 421, retryable: true, summary: 'another partition owns the slot; error.owner is its address' },
  hash_mismatch: { status: 422, retryable: false, summary: 'an uploaded block does not hash to its name' },
  precondition_required: { status: 428, retryable: false, summary: 'a write needs If-Match or If-None-Match: *' },
  rate_limited: { status: 429, retryable: true, summary: 'the caller is over its rate; retry after Retry-After' },
  sign_in_locked: {
    status: 429,
    retryable: false,
    summary: 'too many wrong passwords for the account or from the address; retry after Retry-After',
  },
  too_many_long_polls: { status: 429, retryable: true, summary: 'the device holds its most long polls open' },
  too_many_polls: { status: 429, retryable: true, summary: 'the process holds its most long polls open' },
  request_timeout: { status: 408, retryable: false, summary: 'the request did not arrive in time (headers or body too slow)' },
  headers_too_large: { status: 431, retryable: false, summary: 'the request line and headers exceed the limit' },
  insufficient_storage: { status: 507, retryable: false, summary: 'the user is over its storage quota' },
  bad_gateway: {
    status: 502,
    retryable: true,
    summary: 'the gateway got no valid answer from the partition (it broke off or sent garbage)',
  },
  gateway_timeout: { status: 504, retryable: true, summary: 'the partition did not answer the gateway in time' },
  internal: { status: 500, retryable: true, summary: 'a bug; never answered on purpose' },
  busy: { status: 503, retryable: true, summary: 'the object kept changing under the request; retry' },
  draining: { status: 503, retryable: true, summary: 'the process is shutting down; retry (another replica answers)' },
  overloaded: { status: 503, retryable: true, summary: 'the partition sheds load; retry after Retry-After' },
  ownership_lost: { status: 503, retryable: true, summary: 'the process no longer owns the slot; retry' },
  slot_moving: {
    status: 503,
    retryable: true,
    summary: 'the slot moved to another partition while the write was on its way; it was not applied; retry after Retry-After',
  },
  store_unavailable: { status: 503, retryable: true, summary: 'etcd or S3 did not answer; retry after Retry-After' },
  partition_unavailable: {
    status: 503,
    retryable: true,
    summary: 'the gateway has no ready member of the partition that owns the slot, or the slot moved under a streamed body; retry',
  },
  device_offline: {
    status: 503,
    retryable: true,
    summary: 'the device has no relay connection to the service (or it dropped); retry after Retry-After',
  },
  relay_busy: {
    status: 503,
    retryable: true,
    summary: "the device's relay is at its bound of concurrent requests or bytes per second; retry after Retry-After",
  },
  not_ready: { status: 503, retryable: true, summary: 'a readiness check failed' },
  unhealthy: { status: 503, retryable: true, summary: 'a deep health check failed' },
  event_loop_stalled: { status: 503, retryable: true, summary: 'the event loop stalled' },
} as const satisfies Record<string, { status: number; retryable: boolean; summary: string }>;

/** A code of the public API's error catalogue. */
export type ApiErrorCode = keyof typeof apiErrorCatalogue;

/** The HTTP status of a catalogued code. */
export function statusOf(code: ApiErrorCode): number {
  return apiErrorCatalogue[code].status;
}

/** Whether `code` is in the catalogue (a client meeting an unknown one treats it by status). */
export function isApiErrorCode(code: unknown): code is ApiErrorCode {
  return typeof code === 'string' && Object.hasOwn(apiErrorCatalogue, code);
}

/**
 * A failure of the public API: its status comes from the catalogue, `details` travel in the
 * JSON envelope `{"error":{"code","message",...details}}`, `headers` with the answer
 * (`Retry-After`, `ETag`, `Allow`). The server throws it; the client raises it from an answer.
 */
export class ApiError extends MeshworkError {
  declare readonly code: ApiErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(
    code: ApiErrorCode,
    message: string,
    options: { details?: Record<string, unknown>; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(code, message, { cause: options.cause });
    this.status = statusOf(code);
    this.details = options.details ?? {};
    this.headers = options.headers ?? {};
  }

  /** The JSON envelope every error answer carries. */
  toJSON(): { error: Record<string, unknown> } {
    return { error: { code: this.code, message: this.message, ...this.details } };
  }
}
