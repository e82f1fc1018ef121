// Event-loop lag, the backstop of the dynamic limits: when the loop itself runs late (CPU
// starved, long synchronous work, GC), latency measured per request no longer sees the
// queue in front of it, and the only safe move is to stop taking new work until it recovers.
import { monitorEventLoopDelay, performance, type ELDHistogram, type EventLoopUtilization } from 'node:perf_hooks';

// Intervals the utilization is averaged over: two seconds at the default half second, so that
// the catching up after one pause does not read as a busy process, and an overload does.
const utilizationIntervals = 4;

/**
 * The lag of one interval in ms: the median timer delay beyond the sampling resolution (a
 * lone GC pause does not move it, a saturated loop does), or the interval timer's own
 * overrun when the loop was blocked so long that no sample was taken.
 */
export function intervalLagMs(medianDelayNs: number, samples: number, resolutionMs: number, overrunMs: number): number {
  if (samples === 0 || !Number.isFinite(medianDelayNs)) return Math.max(0, overrunMs);
  return Math.max(0, medianDelayNs / 1e6 - resolutionMs);
}

/**
 * Watches the event loop's delay with `monitorEventLoopDelay` and says when to shed: when
 * two intervals in a row lagged past the threshold, so that one pause (a long GC, the
 * process stopped and continued) is not taken for saturation.
 */
export class EventLoopLagMonitor {
  readonly thresholdMs: number;
  readonly #intervalMs: number;
  readonly #resolutionMs: number;
  #histogram: ELDHistogram | undefined;
  #timer: NodeJS.Timeout | undefined;
  #lastCheck = 0;
  #lagMs = 0;
  #previousLagMs = 0;
  #elu: EventLoopUtilization | undefined;
  #utilizations: number[] = [];

  constructor(thresholdMs: number, options: { intervalMs?: number; resolutionMs?: number } = {}) {
    this.thresholdMs = thresholdMs;
    this.#intervalMs = options.intervalMs ?? 500;
    this.#resolutionMs = options.resolutionMs ?? 10;
  }

  /** The lag measured over the last interval (half a second by default), in ms. */
  get lagMs(): number {
    return this.#lagMs;
  }

  /**
   * The share of the last two seconds the event loop spent running rather than waiting for
   * I/O (`performance.eventLoopUtilization`, averaged over the last 4 intervals); 1 until the
   * first interval ends, and while stopped.
   */
  get utilization(): number {
    const recent = this.#utilizations;
    return recent.length === 0 ? 1 : recent.reduce((a, b) => a + b, 0) / recent.length;
  }

  /** Whether new work should be refused now. */
  get shedding(): boolean {
    return this.#lagMs > this.thresholdMs && this.#previousLagMs > this.thresholdMs;
  }

  /** Starts sampling; the timer does not keep the process alive. */
  start(): void {
    if (this.#timer) return;
    this.#histogram = monitorEventLoopDelay({ resolution: this.#resolutionMs });
    this.#histogram.enable();
    this.#lastCheck = performance.now();
    this.#elu = performance.eventLoopUtilization();
    this.#timer = setInterval(() => this.#check(), this.#intervalMs);
    this.#timer.unref();
  }

  /** Stops sampling. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#histogram?.disable();
    this.#histogram = undefined;
    this.#lagMs = 0;
    this.#previousLagMs = 0;
    this.#elu = undefined;
    this.#utilizations = [];
  }

  #check(): void {
    const histogram = this.#histogram!;
    const now = performance.now();
    this.record(intervalLagMs(histogram.percentile(50), histogram.count, this.#resolutionMs, now - this.#lastCheck - this.#intervalMs));
    this.#lastCheck = now;
    histogram.reset();
    const elu = performance.eventLoopUtilization();
    if (this.#elu !== undefined) this.recordUtilization(performance.eventLoopUtilization(elu, this.#elu).utilization);
    this.#elu = elu;
  }

  /** Adds the event loop's utilization of the interval just ended (what the timer does; tests call it directly). */
  recordUtilization(utilization: number): void {
    this.#utilizations.push(utilization);
    if (this.#utilizations.length > utilizationIntervals) this.#utilizations.shift();
  }

  /** Sets the lag of the interval just ended (what the timer does; tests call it directly). */
  record(lagMs: number): void {
    this.#previousLagMs = this.#lagMs;
    this.#lagMs = lagMs;
  }
}
