// Admission at the gateway: an adaptive concurrency limit per partition, so that excess load is
// refused here, where a refusal is cheap, and the partitions stay in their efficient range
// (a refusal still costs a partition a pass through its HTTP server). While the limit is in use
// (at least 80 % of it in flight), it grows by about one per round trip as long as answers come
// back fast, and shrinks by a tenth when the time to an answer's headers rises well above the
// partition's baseline (the fastest answers of the last window); a `503` from the partition
// shrinks it whatever the load. Below 80 % nothing changes: latency at low load says nothing of
// capacity. Long polls and streamed uploads (whose answer waits for the body) are not measured,
// and long polls are not counted. Pure: the time comes in as an argument.

/** Bounds of the limit. */
export interface LimitBounds {
  min: number;
  max: number;
}

/** How a request admitted under the limit ended. */
export interface Completion {
  /** The partition answered 503 (overloaded, draining, ...): a sign of pressure. */
  overloaded: boolean;
  /** Time until the answer's headers, in ms; undefined when there was no answer or it says nothing (the gateway itself lagged). */
  latencyMs: number | undefined;
}

// Latency above baseline × this (plus a floor) counts as pressure.
const latencyTolerance = 3;
const latencyFloorMs = 5;
// The baseline is the fastest answer of the last window; a new window starts this often.
const windowMs = 5000;
// At most one decrease per this long: one burst of slow answers is one signal, not fifty.
const decreaseEveryMs = 100;
const decreaseFactor = 0.9;

/** The adaptive concurrency limit of one partition. */
export class AdaptiveLimit {
  readonly #bounds: LimitBounds;
  #limit: number;
  #inFlight = 0;
  #baselineMs: number | undefined;
  #windowMinMs = Number.POSITIVE_INFINITY;
  #windowStart = 0;
  #lastDecrease = Number.NEGATIVE_INFINITY;

  constructor(bounds: LimitBounds, initial = Math.min(bounds.max, Math.max(bounds.min, 128))) {
    this.#bounds = bounds;
    this.#limit = initial;
  }

  /** The current limit, rounded down. */
  get limit(): number {
    return Math.floor(this.#limit);
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Takes a place if one is free; the caller must `complete` it. */
  tryAcquire(): boolean {
    if (this.#inFlight >= Math.floor(this.#limit)) return false;
    this.#inFlight++;
    return true;
  }

  /** Gives a place back and adapts the limit to how the request went. */
  complete(outcome: Completion, nowMs: number): void {
    const busy = this.#inFlight >= Math.floor(this.#limit) * 0.8;
    this.#inFlight = Math.max(0, this.#inFlight - 1);
    if (outcome.latencyMs !== undefined) this.#observeLatency(outcome.latencyMs, nowMs);
    const slow =
      outcome.latencyMs !== undefined &&
      this.#baselineMs !== undefined &&
      outcome.latencyMs > this.#baselineMs * latencyTolerance + latencyFloorMs;
    if (outcome.overloaded || (busy && slow)) {
      if (nowMs - this.#lastDecrease >= decreaseEveryMs) {
        this.#lastDecrease = nowMs;
        this.#limit = Math.max(this.#bounds.min, this.#limit * decreaseFactor);
      }
      return;
    }
    // Grow only while the limit is what holds requests back.
    if (busy) this.#limit = Math.min(this.#bounds.max, this.#limit + 1 / Math.max(1, this.#limit));
  }

  #observeLatency(ms: number, nowMs: number): void {
    if (nowMs - this.#windowStart >= windowMs) {
      if (Number.isFinite(this.#windowMinMs)) this.#baselineMs = this.#windowMinMs;
      this.#windowMinMs = Number.POSITIVE_INFINITY;
      this.#windowStart = nowMs;
    }
    this.#windowMinMs = Math.min(this.#windowMinMs, ms);
    if (this.#baselineMs === undefined || ms < this.#baselineMs) this.#baselineMs = ms;
  }
}
