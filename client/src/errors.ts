// How an answer or a failed exchange becomes a typed error. Every non-2xx answer the client does
// not expect becomes an `ApiError` of the shared catalogue (@meshwork/contract) when its code is
// catalogued with that status, so client and server agree on what a code means; anything else
// (an unknown code, a status the catalogue does not give that code, a body that is not the JSON
// envelope) is an `UnexpectedAnswerError` that still carries the status. A request that got no
// answer is a `NetworkError`, `RequestAbortedError` or `RequestTimeoutError`, never a bare TypeError.
import { ApiError, MeshworkError, apiErrorCatalogue, isApiErrorCode } from '@meshwork/contract/errors';

/** An error answer whose code is not in the catalogue, or not with this status, or whose body is not the JSON envelope. */
export class UnexpectedAnswerError extends MeshworkError {
  readonly status: number;
  readonly details: Record<string, unknown>;
  readonly headers: Record<string, string>;
  /** The answer's body as text (cut at 4 KiB). */
  readonly body: string;

  constructor(
    code: string,
    status: number,
    message: string,
    options: { details?: Record<string, unknown>; headers?: Record<string, string>; body?: string; cause?: unknown },
  ) {
    super(code, message, { cause: options.cause });
    this.status = status;
    this.details = options.details ?? {};
    this.headers = options.headers ?? {};
    this.body = options.body ?? '';
  }
}

/**
 * Whether an answer says the partition has no such route (`404` or `405`): an older partition,
 * whose callers then do without it.
 */
export function isMissingRoute(err: unknown): boolean {
  return (err instanceof ApiError || err instanceof UnexpectedAnswerError) && (err.status === 404 || err.status === 405);
}

/** The request got no answer: the connection failed or broke. `cause` is what the transport threw. */
export class NetworkError extends MeshworkError {
  constructor(message: string, options: { cause: unknown }) {
    super('network_error', message, options);
  }
}

/** The caller's AbortSignal fired; `cause` is the signal's reason. */
export class RequestAbortedError extends MeshworkError {
  constructor(message: string, options: { cause: unknown }) {
    super('aborted', message, options);
  }
}

/** No answer's headers arrived within the client's `timeoutMs` (a long poll's wait added). */
export class RequestTimeoutError extends MeshworkError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('timeout', message, options);
  }
}

/** Any error an API call raises for an answer: both carry `status`, `details` and `headers`. */
export type AnswerError = ApiError | UnexpectedAnswerError;

const maxBodyInError = 4096;

/** The typed error for an error answer (pure: status, lower-cased headers and the body text). */
export function errorFromAnswer(status: number, headers: Record<string, string>, bodyText: string, what: string): AnswerError {
  let envelope: unknown;
  try {
    envelope = bodyText === '' ? undefined : JSON.parse(bodyText);
  } catch {
    envelope = undefined;
  }
  const error = typeof envelope === 'object' && envelope !== null ? (envelope as { error?: unknown }).error : undefined;
  if (typeof error !== 'object' || error === null || typeof (error as { code?: unknown }).code !== 'string') {
    const body = bodyText.slice(0, maxBodyInError);
    return new UnexpectedAnswerError(
      `http_${status}`,
      status,
      `${what} answered ${status} without an error envelope${body ? `: ${body.slice(0, 200)}` : ''}`,
      {
        headers,
        body,
      },
    );
  }
  const { code, message, ...details } = error as { code: string; message?: unknown } & Record<string, unknown>;
  const text = `${what} answered ${status} ${code}${typeof message === 'string' ? `: ${message}` : ''}`;
  if (isApiErrorCode(code) && apiErrorCatalogue[code].status === status) {
    return new ApiError(code, typeof message === 'string' ? message : text, { details, headers });
  }
  return new UnexpectedAnswerError(code, status, text, { details, headers, body: bodyText.slice(0, maxBodyInError) });
}

/** Whether an answer error is worth repeating the same request for (the catalogue's `retryable`, 429 and 503 only). */
export function isRetryableAnswer(error: AnswerError): boolean {
  if (error.status !== 429 && error.status !== 503) return false;
  return error instanceof ApiError ? apiErrorCatalogue[error.code].retryable : true;
}
