// Event-loop responsiveness for /livez: a timer that should fire every `tickMs` measures how
// late it fires. A stall shows up on the first tick after it, and counts for `windowMs`, so a
// process that stalls again and again fails liveness even though each probe lands between stalls.

export interface EventLoopStatus {
  ok: boolean;
  /** How late the latest tick fired. */
  delayMs: number;
  /** The longest delay within the window. */
  maxDelayMs: number;
  limitMs: number;
  windowMs: number;
}

/** Measures event-loop delay; start() before use, stop() to let the process exit. */
export class EventLoopMonitor {
  readonly #limitMs: number;
  readonly #tickMs: number;
  readonly #windowMs: number;
  readonly #samples: { at: number; delay: number }[] = [];
  #last = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: { limitMs: number; tickMs?: number; windowMs?: number }) {
    this.#limitMs = options.limitMs;
    this.#tickMs = options.tickMs ?? 200;
    this.#windowMs = options.windowMs ?? 10_000;
  }

  start(): void {
    this.#last = performance.now();
    this.#timer = setInterval(() => this.#tick(), this.#tickMs).unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** The current delay and whether a recent one exceeded the limit. */
  status(): EventLoopStatus {
    const now = performance.now();
    // A stall still going on (this call runs only after it, but a tick may not have yet).
    const pending = Math.max(0, now - this.#last - this.#tickMs);
    let max = pending;
    for (const s of this.#samples) if (now - s.at <= this.#windowMs && s.delay > max) max = s.delay;
    const latest = this.#samples.at(-1)?.delay ?? 0;
    const round = (ms: number): number => Math.round(ms * 10) / 10;
    return {
      ok: max <= this.#limitMs,
      delayMs: round(Math.max(latest, pending)),
      maxDelayMs: round(max),
      limitMs: this.#limitMs,
      windowMs: this.#windowMs,
    };
  }

  #tick(): void {
    const now = performance.now();
    const delay = Math.max(0, now - this.#last - this.#tickMs);
    this.#last = now;
    this.#samples.push({ at: now, delay });
    while (this.#samples.length > 0 && now - this.#samples[0]!.at > this.#windowMs) this.#samples.shift();
  }
}
