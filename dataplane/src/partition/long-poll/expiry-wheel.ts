// Bucketed expiry for long polls: one shared timer for all of them instead of a timer each.
// Deadlines are rounded up to the next bucket, so nothing expires early, and late by at most
// one bucket (plus the tick's own delay).

/** Something the wheel can hold: it remembers its bucket so that removal needs no lookup. */
export interface Expirable {
  /** The bucket the item sits in; managed by the wheel (-1 when not held). */
  expiryBucket: number;
}

/** Items grouped by deadline into buckets of `resolutionMs`. */
export class ExpiryWheel<T extends Expirable> {
  readonly #resolutionMs: number;
  /** Buckets count from here, so that they stay small integers (no boxed number per item). */
  readonly #origin: number;
  readonly #buckets = new Map<number, Set<T>>();
  /** Every bucket below this one has been emptied. */
  #nextBucket: number;
  #size = 0;

  constructor(resolutionMs: number, now: number) {
    this.#resolutionMs = resolutionMs;
    this.#origin = now;
    this.#nextBucket = 0;
  }

  /** Items currently held. */
  get size(): number {
    return this.#size;
  }

  /** Holds `item` until `deadlineMs` (a Date.now()-style time), replacing any earlier deadline. */
  add(item: T, deadlineMs: number): void {
    this.remove(item);
    const bucket = Math.max(Math.ceil((deadlineMs - this.#origin) / this.#resolutionMs), this.#nextBucket);
    let set = this.#buckets.get(bucket);
    if (set === undefined) {
      set = new Set();
      this.#buckets.set(bucket, set);
    }
    set.add(item);
    item.expiryBucket = bucket;
    this.#size++;
  }

  /** Lets go of `item` without expiring it; false if it was not held. */
  remove(item: T): boolean {
    const bucket = item.expiryBucket;
    if (bucket === -1) return false;
    const set = this.#buckets.get(bucket);
    item.expiryBucket = -1;
    if (set === undefined || !set.delete(item)) return false;
    if (set.size === 0) this.#buckets.delete(bucket);
    this.#size--;
    return true;
  }

  /** Removes and returns every item whose deadline is at or before `now`. */
  expire(now: number): T[] {
    const due: T[] = [];
    const last = Math.floor((now - this.#origin) / this.#resolutionMs);
    if (this.#size === 0) {
      // Nothing held: skip the empty stretch at once.
      this.#nextBucket = Math.max(this.#nextBucket, last + 1);
      return due;
    }
    for (; this.#nextBucket <= last; this.#nextBucket++) {
      const set = this.#buckets.get(this.#nextBucket);
      if (set === undefined) continue;
      this.#buckets.delete(this.#nextBucket);
      for (const item of set) {
        item.expiryBucket = -1;
        due.push(item);
      }
      this.#size -= set.size;
    }
    return due;
  }
}
