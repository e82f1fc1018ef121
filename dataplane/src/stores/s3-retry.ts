// When and how long the block store waits before repeating an idempotent S3 request (HEAD and
// GET; a PUT streams its body from the client and is not kept, so it is never repeated here).
// Pure: the caller passes the random number, so the policy is table-tested. The delays follow
// "full jitter" (a random wait between zero and an exponentially growing cap), which spreads
// the retries of many replicas that were throttled at the same moment.

/** How many times an idempotent request is tried, and the bounds of the waits in between. */
export interface S3RetryPolicy {
  /** Attempts in all, the first included (default 4). */
  attempts: number;
  /** The cap of the first wait (default 100 ms); it doubles per attempt. */
  baseDelayMs: number;
  /** No wait is longer than this, `Retry-After` included (default 5000 ms). */
  maxDelayMs: number;
}

/** The defaults: four attempts, waits capped at 0.1, 0.2 and 0.4 s (or a Retry-After of at most 5 s). */
export const defaultS3RetryPolicy: S3RetryPolicy = { attempts: 4, baseDelayMs: 100, maxDelayMs: 5000 };

/**
 * Whether an answer is worth repeating: `SlowDown` (whatever its status), any `503`, and a
 * `500` whose code is `InternalError` or which carried no code (a proxy between us and S3).
 */
export function isRetryableS3Answer(status: number, code: string | undefined): boolean {
  if (code === 'SlowDown') return true;
  if (status === 503) return true;
  return status === 500 && (code === undefined || code === 'InternalError');
}

/**
 * How long to wait before attempt `attempt + 1` after attempt `attempt` (1-based) failed;
 * `retryAfter` is the answer's header, `random` a number in [0, 1).
 */
export function s3RetryDelayMs(policy: S3RetryPolicy, attempt: number, random: number, retryAfter?: string): number {
  const seconds = retryAfter === undefined ? Number.NaN : Number(retryAfter);
  // A Retry-After from the server is honoured, with jitter above it so replicas do not return together.
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(policy.maxDelayMs, seconds * 1000 + random * policy.baseDelayMs);
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.floor(random * cap);
}

/**
 * Whether a request that got no answer is worth repeating: a reset or broken pipe on a reused
 * keep-alive socket that the server had closed meanwhile. A timeout is not: the server is slow,
 * and waiting again as long only delays the failure.
 */
export function isRetryableNetworkError(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return code === 'ECONNRESET' || code === 'EPIPE';
}
