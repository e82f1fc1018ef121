// When sign-in is locked (ADR 42): after `failures` wrong passwords in a row within `windowMillis`,
// further attempts are refused for `lockMillis`, whatever password they bring. The same rule
// counts per account (stored in etcd, so every replica sees it) and per client address (kept
// by each process). Pure: the time is an argument.

/** Failed sign-ins in a row: how many, since when, and until when sign-in is locked (epoch ms). */
export interface FailureCount {
  failures: number;
  firstAt: number;
  lockedUntil: number;
}

/** The limits: ten failures within 15 minutes lock sign-in for 15 minutes. */
export interface LockoutLimits {
  failures: number;
  windowMillis: number;
  lockMillis: number;
}

/** The limits the partition applies. */
export const signInLimits: LockoutLimits = { failures: 10, windowMillis: 15 * 60_000, lockMillis: 15 * 60_000 };

/** How many milliseconds sign-in stays locked (0: not locked). */
export function lockedForMillis(count: FailureCount | undefined, now: number): number {
  return count === undefined ? 0 : Math.max(0, count.lockedUntil - now);
}

/** The count after one more wrong password at `now`: a count older than the window starts over; reaching the limit locks. */
export function afterFailure(count: FailureCount | undefined, now: number, limits: LockoutLimits = signInLimits): FailureCount {
  const fresh = count === undefined || now - count.firstAt > limits.windowMillis || (count.lockedUntil !== 0 && count.lockedUntil <= now);
  const failures = fresh ? 1 : count.failures + 1;
  const firstAt = fresh ? now : count.firstAt;
  return { failures, firstAt, lockedUntil: failures >= limits.failures ? now + limits.lockMillis : 0 };
}

/** Whole seconds for a Retry-After header (at least 1). */
export function retryAfterSeconds(millis: number): number {
  return Math.max(1, Math.ceil(millis / 1000));
}

/** Failure counts per client address, kept by one process (bounded: the oldest address is forgotten first). */
export class AddressFailures {
  readonly #counts = new Map<string, FailureCount>();
  readonly #limit: number;
  readonly #limits: LockoutLimits;

  constructor(limits: LockoutLimits = signInLimits, limit = 10_000) {
    this.#limits = limits;
    this.#limit = limit;
  }

  /** Milliseconds the address stays locked (0: not locked). */
  lockedFor(address: string, now: number): number {
    return lockedForMillis(this.#counts.get(address), now);
  }

  /** Counts a wrong password from `address`. */
  fail(address: string, now: number): void {
    const next = afterFailure(this.#counts.get(address), now, this.#limits);
    this.#counts.delete(address);
    if (this.#counts.size >= this.#limit) {
      const oldest = this.#counts.keys().next().value;
      if (oldest !== undefined) this.#counts.delete(oldest);
    }
    this.#counts.set(address, next);
  }

  /** Forgets an address after a successful sign-in from it. */
  succeed(address: string): void {
    this.#counts.delete(address);
  }
}
