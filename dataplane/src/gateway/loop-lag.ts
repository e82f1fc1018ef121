// How late the gateway's own event loop runs, sampled every 200 ms. Admission reads it: while
// the gateway itself lags, the time to a partition's answer measures the gateway's queue, not
// the partition, so latency must not shrink a partition's limit; and past a larger lag the
// gateway refuses new requests itself, before they cost a forward.
import { monitorEventLoopDelay } from 'node:perf_hooks';

const sampleMs = 200;

/** The gateway process's event-loop lag. */
export class LoopLag {
  readonly #histogram: ReturnType<typeof monitorEventLoopDelay> = monitorEventLoopDelay({ resolution: 10 });
  #meanMs = 0;
  #timer: NodeJS.Timeout | undefined;

  /** The mean delay of the last sample, in ms. */
  get meanMs(): number {
    return this.#meanMs;
  }

  start(): void {
    this.#histogram.enable();
    this.#timer = setInterval(() => {
      const mean = this.#histogram.mean / 1e6;
      this.#meanMs = Number.isFinite(mean) ? mean : 0;
      this.#histogram.reset();
    }, sampleMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#histogram.disable();
  }
}
