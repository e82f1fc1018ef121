// Young-generation collections paced by the bytes a process streams (ADR 75).
//
// Every chunk a socket reads arrives in a fresh buffer outside V8's heap, owned by a small JS
// object. A process that mostly forwards such chunks makes few other JS objects, so its young
// generation fills slowly, and V8 frees those buffers only once about 64 MiB of them have built
// up (its external-memory trigger), by a full mark-compact. Asking for a young-generation
// collection after every `paceBytes` streamed frees them while their owners are still young,
// for a fraction of a millisecond each. A pool of long-lived buffers let go is in the old
// generation instead, which only a full collection frees (`dropped`). Node exposes the collector
// only when started with `--expose-gc`; without it the pacer does nothing.
//
// A full collection leaves the heap's emptied pages committed, and V8 keeps a pool of them for
// later: a process that was busy for a while stays at its busy size. `settled` asks, after a
// burst of work, for the collection V8 makes when memory runs out (its last-resort flavour),
// which also shrinks the heap and empties the pool (ADR 85).

/** Bytes streamed between two paced collections. */
export const gcPaceBytes = 8 * 1024 * 1024;

/** The least time between two memory-reducing collections (`settled`). */
export const gcReduceEveryMs = 5_000;

/** The collector `--expose-gc` installs as `globalThis.gc`, as far as the pacer calls it. */
export type Collector = (options: { type: 'minor' | 'major'; flavor?: 'last-resort' }) => void;

/** Counts streamed bytes and asks `collect` for a young-generation collection every `paceBytes`. */
export class GcPacer {
  readonly paceBytes: number;
  readonly reduceEveryMs: number;
  readonly #collect: Collector | undefined;
  #since = 0;
  #collections = 0;
  #reducedAt = Number.NEGATIVE_INFINITY;

  constructor(collect: Collector | undefined, paceBytes: number = gcPaceBytes, reduceEveryMs: number = gcReduceEveryMs) {
    if (!(paceBytes > 0)) throw new RangeError(`paceBytes must be positive, got ${paceBytes}`);
    if (!(reduceEveryMs >= 0)) throw new RangeError(`reduceEveryMs must be 0 or more, got ${reduceEveryMs}`);
    this.#collect = collect;
    this.paceBytes = paceBytes;
    this.reduceEveryMs = reduceEveryMs;
  }

  /** Whether this pacer can collect (the process runs with `--expose-gc`). */
  get active(): boolean {
    return this.#collect !== undefined;
  }

  /** Collections asked for so far. */
  get collections(): number {
    return this.#collections;
  }

  /** Notes `bytes` more streamed; collects once `paceBytes` have gone by since the last time. */
  streamed(bytes: number): void {
    if (this.#collect === undefined) return;
    this.#since += bytes;
    if (this.#since < this.paceBytes) return;
    this.#since = 0;
    this.#collections++;
    this.#collect({ type: 'minor' });
  }

  /**
   * Notes that the process let go of `bytes` of long-lived buffers (a pool emptied): they are
   * in the old generation, which only a full collection frees, so one is asked for when they
   * come to `paceBytes` or more.
   */
  dropped(bytes: number): void {
    if (this.#collect === undefined || bytes < this.paceBytes) return;
    this.#collections++;
    this.#collect({ type: 'major' });
  }

  /**
   * Notes that a burst of work ended (an agent's pass): asks for a full collection that also
   * gives the heap's free pages back, unless one was asked for less than `reduceEveryMs` before
   * `now`. Says whether it asked.
   */
  settled(now: number = performance.now()): boolean {
    if (this.#collect === undefined || this.reduceDueInMs(now) > 0) return false;
    this.#reducedAt = now;
    this.#collections++;
    this.#collect({ type: 'major', flavor: 'last-resort' });
    return true;
  }

  /** How long after `now` `settled` would collect again: 0 when it would now. */
  reduceDueInMs(now: number = performance.now()): number {
    return Math.max(0, this.#reducedAt + this.reduceEveryMs - now);
  }
}

/** This process's pacer, over `globalThis.gc` when Node runs with `--expose-gc`. */
export const processGcPacer = new GcPacer((globalThis as { gc?: Collector }).gc);
