// Token buckets as plain state and pure functions of the time (milliseconds from any
// monotonic origin), so that tests drive them with a fake clock and a table of cases.
//
// Request buckets are strict: a request needs one whole token. Byte buckets run on debt:
// a request is admitted while the level is not negative and is then charged its full size,
// which may take the level below zero. That admits a 4 MiB block through a bucket smaller
// than 4 MiB, charges what was really sent (a response's size is known only at its end)
// and still holds the long-run rate, since the debt is repaid before the next admission.

/** How fast a bucket refills (tokens per second) and how many tokens it holds at most. */
export interface BucketLimit {
  perSecond: number;
  capacity: number;
}

/** A bucket's level at the moment `at`; below zero is debt. */
export interface BucketState {
  level: number;
  at: number;
}

/** A full bucket, as an idle client has. */
export function fullBucket(limit: BucketLimit, now: number): BucketState {
  return { level: limit.capacity, at: now };
}

/** The bucket's level at `now` (a clock that stepped back refills nothing). */
export function levelAt(state: BucketState, limit: BucketLimit, now: number): number {
  const elapsed = Math.max(0, now - state.at);
  return Math.min(limit.capacity, state.level + (elapsed * limit.perSecond) / 1000);
}

/** Milliseconds until the bucket holds `tokens` (0 when it does now; Infinity if it never can). */
export function waitFor(state: BucketState, limit: BucketLimit, now: number, tokens: number): number {
  if (tokens > limit.capacity) return Number.POSITIVE_INFINITY;
  const level = levelAt(state, limit, now);
  return level >= tokens ? 0 : ((tokens - level) * 1000) / limit.perSecond;
}

/** Removes `tokens` from the bucket at `now`; the level may go below zero (debt). */
export function take(state: BucketState, limit: BucketLimit, now: number, tokens: number): void {
  state.level = levelAt(state, limit, now) - tokens;
  state.at = Math.max(now, state.at);
}

/** Whether the bucket has refilled completely, so forgetting it loses nothing. */
export function isFull(state: BucketState, limit: BucketLimit, now: number): boolean {
  return levelAt(state, limit, now) >= limit.capacity;
}

/** A wait as a Retry-After value: whole seconds, at least 1. */
export function retryAfterSeconds(waitMs: number): number {
  return Math.max(1, Math.ceil(waitMs / 1000));
}
