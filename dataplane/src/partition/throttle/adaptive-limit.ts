// The process's adaptive concurrency limit, a gradient limiter in the manner of Netflix's
// concurrency-limits (Gradient) and Envoy's adaptive concurrency filter:
//
// - Requests are sampled in windows (at least `windowMs` and `minWindowSamples`); a window's
//   latency is the median of its samples.
// - The no-load latency is the lowest window median seen, and is measured afresh every
//   `probeIntervalMs` (jittered) by holding the limit at `min` until `probeSamples` requests
//   admitted at that concurrency have finished, as Envoy does; a window that never ran above
//   `min` counts as such a measurement, so a lightly loaded process never needs the probe.
//   That lets it rise when the work itself got slower (a slower store, heavier requests)
//   instead of ratcheting down.
// - At the end of each window: gradient = clamp(tolerance × noLoad / latency, 0.5, 1), and
//   limit = limit × gradient + √limit. While latency stays within `tolerance` of no load the
//   limit grows by √limit per window; when latency rises the limit shrinks, at most halving
//   per window. A window that used under half of the limit neither shrinks it (the limit was
//   not what made it slow) nor grows it beyond `initial` (growth must be earned); it only
//   brings a limit that a burst shrank back up to `initial` (ADR 59).
// - The gradient counts only while the event loop is busy (`utilization`, its utilization over
//   the last 2 s, at least `busyUtilization`, 0.9): with time to spare, a slow window is waits
//   (a store, a pause, a burst admitted at once after one), and a window that used half the
//   limit grows it (ADR 59).
// - Over the limit a request is refused at once (no queue: see ADR 7).
//
// Time is passed in (milliseconds, monotonic), so the limiter is a pure state machine.

/** Tuning of the limiter; only `min` and `max` are configuration, the rest are tested defaults. */
export interface AdaptiveLimitOptions {
  min: number;
  max: number;
  initial?: number;
  /** Latency may grow to this multiple of the no-load latency before the limit shrinks. */
  tolerance?: number;
  windowMs?: number;
  minWindowSamples?: number;
  /** A window closes after this long even with few samples (one at least). */
  maxWindowMs?: number;
  probeIntervalMs?: number;
  probeSamples?: number;
  /** A probe that gathers too few samples in this time gives up and keeps the old no-load latency. */
  probeTimeoutMs?: number;
  /** When the limit sits at `min`, probe again this soon: the no-load latency may be stale. */
  probeAtMinMs?: number;
  /** Uniform in [0, 1), for probe jitter. */
  random?: () => number;
  /**
   * How busy the process's event loop was lately: the share of time it ran rather than waited
   * for I/O (0 to 1); 1 when absent. Below `busyUtilization` a window's latency is not taken
   * as this process's overload.
   */
  utilization?: () => number;
  busyUtilization?: number;
}

/** An admitted request's place under the limit. */
export interface Ticket {
  startedAt: number;
  /** Admitted during a probe, at the probe's concurrency. */
  probe: boolean;
}

const maxSamplesPerWindow = 4096;
const minProbeSamples = 5;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** A concurrency limit that follows latency. */
export class AdaptiveConcurrencyLimit {
  readonly min: number;
  readonly max: number;
  readonly #tolerance: number;
  readonly #windowMs: number;
  readonly #minWindowSamples: number;
  readonly #maxWindowMs: number;
  readonly #probeIntervalMs: number;
  readonly #probeSamples: number;
  readonly #probeTimeoutMs: number;
  readonly #probeAtMinMs: number;
  readonly #random: () => number;
  readonly #utilization: () => number;
  readonly #busyUtilization: number;
  readonly #initial: number;
  #limit: number;
  #inflight = 0;
  #noLoadRtt: number | undefined;
  #windowStart: number;
  #samples: number[] = [];
  #windowPeak = 0;
  #probe: { startedAt: number; samples: number[] } | undefined;
  #nextProbeAt: number;

  constructor(options: AdaptiveLimitOptions, now: number) {
    if (!(options.min >= 1 && options.min <= options.max))
      throw new RangeError(`the concurrency limit needs 1 <= min <= max, not ${options.min} and ${options.max}`);
    this.min = options.min;
    this.max = options.max;
    this.#limit = Math.min(options.max, Math.max(options.min, options.initial ?? 32));
    this.#initial = this.#limit;
    this.#tolerance = options.tolerance ?? 1.5;
    this.#windowMs = options.windowMs ?? 100;
    this.#minWindowSamples = options.minWindowSamples ?? 20;
    this.#maxWindowMs = options.maxWindowMs ?? 1000;
    this.#probeIntervalMs = options.probeIntervalMs ?? 30_000;
    this.#probeSamples = options.probeSamples ?? 25;
    this.#probeTimeoutMs = options.probeTimeoutMs ?? 1000;
    this.#probeAtMinMs = options.probeAtMinMs ?? 2000;
    this.#random = options.random ?? Math.random;
    this.#utilization = options.utilization ?? (() => 1);
    this.#busyUtilization = options.busyUtilization ?? 0.9;
    this.#windowStart = now;
    this.#nextProbeAt = now + this.#jittered(this.#probeIntervalMs);
  }

  /** The limit in force now (`min` during a probe). */
  get limit(): number {
    return this.#probe ? this.min : Math.floor(this.#limit);
  }

  /** Requests holding a place now. */
  get inflight(): number {
    return this.#inflight;
  }

  /** The latest no-load latency (ms), once measured. */
  get noLoadRtt(): number | undefined {
    return this.#noLoadRtt;
  }

  /** Whether a probe of the no-load latency is running. */
  get probing(): boolean {
    return this.#probe !== undefined;
  }

  /** Whether a request would be refused now: a cheap look before any other work on it. */
  get full(): boolean {
    return this.#inflight >= this.limit;
  }

  /** Admits a request at `now` if under the limit; undefined means refuse it. */
  tryAcquire(now: number): Ticket | undefined {
    if (this.#probe === undefined && this.#noLoadRtt !== undefined && now >= this.#nextProbeAt)
      this.#probe = { startedAt: now, samples: [] };
    else if (this.#probe !== undefined && now - this.#probe.startedAt > this.#probeTimeoutMs) this.#endProbe(now);
    if (this.#inflight >= this.limit) return undefined;
    this.#inflight++;
    if (this.#inflight > this.#windowPeak) this.#windowPeak = this.#inflight;
    return { startedAt: now, probe: this.#probe !== undefined };
  }

  /**
   * Gives back a ticket at `now`. `sample` says whether its latency speaks for the process's
   * load (false for refusals, transfers dominated by the client's bandwidth, aborted requests).
   */
  release(ticket: Ticket, now: number, sample: boolean): void {
    this.#inflight = Math.max(0, this.#inflight - 1);
    if (!sample) return;
    const rtt = Math.max(0, now - ticket.startedAt);
    if (this.#probe !== undefined) {
      // Only requests admitted at the probe's concurrency tell the no-load latency.
      if (ticket.probe) this.#probe.samples.push(rtt);
      if (this.#probe.samples.length >= this.#probeSamples || now - this.#probe.startedAt > this.#probeTimeoutMs) this.#endProbe(now);
      return;
    }
    if (this.#samples.length < maxSamplesPerWindow) this.#samples.push(rtt);
    const age = now - this.#windowStart;
    if ((age >= this.#windowMs && this.#samples.length >= this.#minWindowSamples) || age >= this.#maxWindowMs) this.#closeWindow(now);
  }

  #closeWindow(now: number): void {
    const rtt = median(this.#samples);
    if (this.#windowPeak <= this.min && this.#samples.length >= minProbeSamples) {
      // A window that never ran above the probe's concurrency is a probe in itself.
      this.#noLoadRtt = rtt;
      this.#nextProbeAt = now + this.#jittered(this.#probeIntervalMs);
    } else if (this.#noLoadRtt === undefined || rtt < this.#noLoadRtt) {
      this.#noLoadRtt = rtt;
    }
    // A floor on the latency compared, so that sub-millisecond noise does not swing the gradient.
    // While the event loop has time to spare, latency that rose came from waits (a store, a
    // pause), not from this process's queue, and refusing work would not bring it down (ADR 59).
    const busy = this.#utilization() >= this.#busyUtilization;
    const gradient = busy ? Math.min(1, Math.max(0.5, (this.#tolerance * Math.max(this.#noLoadRtt, 0.05)) / Math.max(rtt, 0.05))) : 1;
    // A window that used under half the limit says nothing about the limit (Netflix's Gradient2
    // holds it there too): its latency rose for reasons no refusal would help (a garbage
    // collection, a slow store, a mix of heavier requests), and shrinking on it ratcheted the
    // limit down on a lightly loaded process until ordinary bursts met it (ADR 59). Such a
    // window may only bring a limit that an earlier burst shrank back up to `initial`; growth
    // beyond that must be earned by a busy window. A window of a handful of samples decides nothing.
    const appLimited = this.#windowPeak < this.#limit / 2;
    const decisive = this.#samples.length >= minProbeSamples;
    const grow = gradient >= 1 && (!appLimited || this.#limit < this.#initial);
    if (decisive && (grow || (gradient < 1 && !appLimited))) {
      const next = this.#limit * gradient + Math.sqrt(this.#limit);
      const ceiling = appLimited ? this.#initial : this.max;
      this.#limit = Math.min(this.max, ceiling, Math.max(this.min, next));
    }
    if (this.#limit <= this.min) this.#nextProbeAt = Math.min(this.#nextProbeAt, now + this.#probeAtMinMs);
    this.#startWindow(now);
  }

  #endProbe(now: number): void {
    const samples = this.#probe!.samples;
    if (samples.length >= minProbeSamples) this.#noLoadRtt = median(samples);
    this.#probe = undefined;
    this.#nextProbeAt = now + this.#jittered(this.#probeIntervalMs);
    this.#startWindow(now);
  }

  #startWindow(now: number): void {
    this.#windowStart = now;
    this.#samples = [];
    this.#windowPeak = this.#inflight;
  }

  /** `ms` ± 20 %. */
  #jittered(ms: number): number {
    return ms * (0.8 + 0.4 * this.#random());
  }
}
