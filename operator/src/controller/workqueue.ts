// A work queue of object keys like client-go's: a key waiting twice is queued once, a key
// is never processed by two workers at once (an add while it runs queues it again after),
// failures retry with per-key exponential backoff, and workers are capped. Keys come in two
// priorities, as in controller-runtime's priority queue: a change to the resource itself
// (a new generation to act on) goes before a change reported by an owned object (mostly
// status to refresh), so a burst of creations is not starved by its own status updates.

/** What a handler asks for after a successful run. */
export interface HandlerResult {
  /** Process the key again after this many milliseconds. */
  requeueAfterMs?: number;
}

export interface WorkQueueHooks {
  depth?: (depth: number) => void;
  added?: () => void;
  waited?: (seconds: number) => void;
  retried?: () => void;
  /** A handler failed; the key is retried after `delayMs`. */
  failed?: (key: string, err: unknown, delayMs: number) => void;
}

export interface WorkQueueOptions {
  concurrency: number;
  handler: (key: string) => Promise<HandlerResult | void>;
  /** First retry delay; doubled per consecutive failure of the same key. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  hooks?: WorkQueueHooks;
}

/** The retry delay after `failures` consecutive failures of a key. */
export function backoffDelay(failures: number, baseDelayMs: number, maxDelayMs: number): number {
  return Math.min(maxDelayMs, baseDelayMs * 2 ** Math.max(0, failures - 1));
}

/** Deduplicating, concurrency-capped work queue with per-key retry backoff. */
/** `high` for changes of the reconciled resource itself, `low` for everything else. */
export type Priority = 'high' | 'low';

export class WorkQueue {
  readonly #high: string[] = [];
  readonly #low: string[] = [];
  /** Keys waiting to run (in #queue, or marked to run again once their current run ends). */
  readonly #dirty = new Set<string>();
  readonly #processing = new Set<string>();
  readonly #queuedAt = new Map<string, number>();
  readonly #failures = new Map<string, number>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  readonly #options: Required<Omit<WorkQueueOptions, 'hooks'>> & { hooks: WorkQueueHooks };
  #running = false;
  #idle: (() => void)[] = [];

  constructor(options: WorkQueueOptions) {
    this.#options = { baseDelayMs: 5, maxDelayMs: 300_000, hooks: {}, ...options };
  }

  /** Keys waiting (not counting those running). */
  get depth(): number {
    return this.#high.length + this.#low.length;
  }

  /** Keys being processed right now. */
  get active(): number {
    return this.#processing.size;
  }

  /** Queues `key` unless it is already waiting; a high-priority add moves a waiting low-priority key ahead. */
  add(key: string, priority: Priority = 'low'): void {
    this.#options.hooks.added?.();
    if (this.#dirty.has(key)) {
      if (priority === 'high') this.#promote(key);
      return;
    }
    this.#dirty.add(key);
    this.#queuedAt.set(key, performance.now());
    if (this.#processing.has(key)) {
      if (priority === 'high') this.#heldHigh.add(key);
      return;
    }
    (priority === 'high' ? this.#high : this.#low).push(key);
    this.#options.hooks.depth?.(this.depth);
    this.#pump();
  }

  /** Keys added with high priority while they were running. */
  readonly #heldHigh = new Set<string>();

  #promote(key: string): void {
    if (this.#processing.has(key)) {
      this.#heldHigh.add(key);
      return;
    }
    const at = this.#low.indexOf(key);
    if (at < 0) return;
    this.#low.splice(at, 1);
    this.#high.push(key);
  }

  /** Queues `key` after `delayMs` (a later call replaces an earlier pending one only if sooner). */
  addAfter(key: string, delayMs: number): void {
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const pending = this.#timers.get(key);
    if (pending) clearTimeout(pending);
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.#timers.set(key, timer);
  }

  /** Starts handing keys to workers. */
  start(): void {
    this.#running = true;
    this.#pump();
  }

  /** Stops taking new keys and resolves once running handlers finished. */
  async shutdown(): Promise<void> {
    this.#running = false;
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    if (this.#processing.size === 0) return;
    await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  #pump(): void {
    while (this.#running && this.#processing.size < this.#options.concurrency && this.depth > 0) {
      const key = (this.#high.length > 0 ? this.#high.shift() : this.#low.shift())!;
      this.#options.hooks.depth?.(this.depth);
      this.#dirty.delete(key);
      this.#processing.add(key);
      const queuedAt = this.#queuedAt.get(key);
      this.#queuedAt.delete(key);
      if (queuedAt !== undefined) this.#options.hooks.waited?.((performance.now() - queuedAt) / 1000);
      void this.#run(key);
    }
  }

  async #run(key: string): Promise<void> {
    try {
      const result = await this.#options.handler(key);
      this.#failures.delete(key);
      if (result?.requeueAfterMs !== undefined) this.addAfter(key, result.requeueAfterMs);
    } catch (err) {
      const failures = (this.#failures.get(key) ?? 0) + 1;
      this.#failures.set(key, failures);
      const delayMs = backoffDelay(failures, this.#options.baseDelayMs, this.#options.maxDelayMs);
      this.#options.hooks.failed?.(key, err, delayMs);
      this.#options.hooks.retried?.();
      if (this.#running) this.addAfter(key, delayMs);
    } finally {
      this.#processing.delete(key);
      // An add that came in while the key ran was held back; now it may run.
      if (this.#dirty.has(key)) {
        (this.#heldHigh.has(key) ? this.#high : this.#low).push(key);
        this.#options.hooks.depth?.(this.depth);
      }
      this.#heldHigh.delete(key);
      if (this.#processing.size === 0 && !this.#running) for (const resolve of this.#idle.splice(0)) resolve();
      this.#pump();
    }
  }
}
