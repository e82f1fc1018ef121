// A work queue of object keys like client-go's: a key waiting twice is queued once, a key
// is never processed by two workers at once (an add while it runs queues it again after),
// failures retry with per-key exponential backoff, and workers are capped.

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
export class WorkQueue {
  readonly #queue: string[] = [];
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
    return this.#queue.length;
  }

  /** Keys being processed right now. */
  get active(): number {
    return this.#processing.size;
  }

  /** Queues `key` unless it is already waiting. */
  add(key: string): void {
    this.#options.hooks.added?.();
    if (this.#dirty.has(key)) return;
    this.#dirty.add(key);
    this.#queuedAt.set(key, performance.now());
    if (this.#processing.has(key)) return;
    this.#queue.push(key);
    this.#options.hooks.depth?.(this.#queue.length);
    this.#pump();
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
    while (this.#running && this.#processing.size < this.#options.concurrency && this.#queue.length > 0) {
      const key = this.#queue.shift()!;
      this.#options.hooks.depth?.(this.#queue.length);
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
        this.#queue.push(key);
        this.#options.hooks.depth?.(this.#queue.length);
      }
      if (this.#processing.size === 0 && !this.#running) for (const resolve of this.#idle.splice(0)) resolve();
      this.#pump();
    }
  }
}
