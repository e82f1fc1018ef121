// Event-loop lag, the backstop of the dynamic limits: when the loop itself runs late (CPU
// starved, long synchronous work, GC), latency measured per request no longer sees the
// queue in front of it, and the only safe move is to stop taking new work until it recovers.
import { monitorEventLoopDelay, type ELDHistogram } from 'node:perf_hooks';

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
  #threadCpu: NodeJS.CpuUsage | undefined;
  #utilization = 1;

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
   * The CPU time of the event loop's thread over the last interval, as a share of the
   * interval (`process.threadCpuUsage`): how busy the process kept itself, which a process
   * starved by its neighbours or its CPU limit is not (the lag above sees that). 1 until the
   * first interval ends, and while stopped.
   */
  get utilization(): number {
    return this.#utilization;
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
    this.#threadCpu = process.threadCpuUsage();
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
    this.#threadCpu = undefined;
    this.#utilization = 1;
  }

  #check(): void {
    const histogram = this.#histogram!;
    const now = performance.now();
    const elapsedMs = now - this.#lastCheck;
    this.record(intervalLagMs(histogram.percentile(50), histogram.count, this.#resolutionMs, elapsedMs - this.#intervalMs));
    this.#lastCheck = now;
    histogram.reset();
    const cpu = process.threadCpuUsage();
    if (this.#threadCpu !== undefined && elapsedMs > 0) {
      const usedMs = (cpu.user - this.#threadCpu.user + cpu.system - this.#threadCpu.system) / 1000;
      this.#utilization = Math.min(1, usedMs / elapsedMs);
    }
    this.#threadCpu = cpu;
  }

  /** Sets the lag of the interval just ended (what the timer does; tests call it directly). */
  record(lagMs: number): void {
    this.#previousLagMs = this.#lagMs;
    this.#lagMs = lagMs;
  }
}
