// When to repeat a request and how long to wait first. Pure: the time and the randomness come in
// as arguments, so the policy is tested without a clock. A retryable answer (429 or 503 of a
// retryable code) is repeated after its Retry-After, never earlier, plus jitter so that clients
// told the same second do not come back together; a request that got no answer is repeated
// after an exponential backoff with full jitter. Only requests that are safe to repeat are.

/** How the client repeats requests; `maxAttempts: 1` turns retries off. */
export interface RetryPolicy {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  /** The first backoff without Retry-After; it doubles per attempt. */
  baseDelayMs: number;
  /** The longest wait the client accepts: a longer Retry-After is raised to the caller at once. */
  maxDelayMs: number;
  /** The fraction of the wait added at random (0.2: up to 20 % later). */
  jitter: number;
}

/** The policy a client has unless told otherwise. */
export const defaultRetryPolicy: Readonly<RetryPolicy> = { maxAttempts: 4, baseDelayMs: 200, maxDelayMs: 30_000, jitter: 0.2 };

/** Parses a Retry-After header (seconds or an HTTP date) into milliseconds from `nowMs`; undefined when absent or malformed. */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // An HTTP date names its day and month; anything else (`1.5`) is malformed, not a date.
  const at = /[a-z]/i.test(trimmed) ? Date.parse(trimmed) : Number.NaN;
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}

/**
 * How long to wait before attempt `attempt + 1` (attempt counts from 1), or undefined to give up:
 * attempts exhausted, or the server asks for longer than `maxDelayMs`. `random` is in [0, 1).
 */
export function retryDelayMs(policy: RetryPolicy, attempt: number, retryAfterMs: number | undefined, random: number): number | undefined {
  if (attempt >= policy.maxAttempts) return undefined;
  if (retryAfterMs !== undefined) {
    if (retryAfterMs > policy.maxDelayMs) return undefined;
    // Never earlier than asked; the spread has a floor so that `Retry-After: 0` is spread too.
    return Math.round(retryAfterMs + Math.max(retryAfterMs, policy.baseDelayMs) * policy.jitter * random);
  }
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + (ceiling / 2) * random);
}

/**
 * Whether repeating a request cannot do harm: reads, conditional writes (a repeat of one that
 * took effect meets 412 rather than writing twice) and block uploads (content-addressed).
 * A body that is a stream cannot be sent twice and is never repeated.
 */
export function isSafeToRepeat(
  method: string,
  headers: Record<string, string>,
  options: { blockUpload?: boolean; streamBody?: boolean } = {},
): boolean {
  if (options.streamBody) return false;
  const m = method.toUpperCase();
  if (m === 'GET' || m === 'HEAD') return true;
  if (options.blockUpload && m === 'PUT') return true;
  if (m === 'PUT' || m === 'DELETE') return headers['if-match'] !== undefined || headers['if-none-match'] !== undefined;
  return false;
}
