// A bounded pool of whole-block buffers (ADR 75).
import { processGcPacer, type GcPacer } from '@meshwork/contract/gc-pacer';
import { maxBlockSize } from './blocks.ts';

/**
 * Whole-block (4 MiB) buffers used again once given back: a large file then costs a few
 * buffers for its whole length instead of a fresh one per block that only the garbage
 * collector gives back, so the agent's memory stays flat. Only buffers it handed out come back,
 * each once. The agent's uploads take them as they read a file and give them back once `upload`
 * released them (its `onBlockReleased`); it keeps eight by default, what one upload through the
 * partition holds at most (2 × its parallelism of 4; the agent keeps 12, since its uploads to the
 * store hold 3 ×), and the engine clears it after each pass. The peer listener
 * reads the blocks it serves into them.
 */
export class BlockBuffers {
  readonly #free: Uint8Array[] = [];
  readonly #out = new WeakSet<ArrayBufferLike>();
  readonly #keep: number;
  readonly #pacer: GcPacer;

  /** Keeps at most `keep` free buffers; `pacer` is told when they are let go. */
  constructor(keep = 8, pacer: GcPacer = processGcPacer) {
    this.#keep = keep;
    this.#pacer = pacer;
  }

  /** A buffer of 4 MiB, used before or new. */
  take(): Uint8Array {
    const buffer = this.#free.pop() ?? new Uint8Array(maxBlockSize);
    this.#out.add(buffer.buffer);
    return buffer;
  }

  /** Takes back the buffer `data` lies in, if this pool handed it out and it is not back yet. */
  give(data: Uint8Array): void {
    if (!this.#out.delete(data.buffer)) return;
    if (this.#free.length < this.#keep) this.#free.push(new Uint8Array(data.buffer, 0, maxBlockSize));
  }

  /**
   * Lets go of the free buffers; those handed out still come back. They lived long enough to be
   * in the old generation, so the pacer asks for the full collection that returns them at once
   * (8 MiB or more; ADR 75) rather than whenever the heap next fills.
   */
  clear(): void {
    const bytes = this.#free.reduce((sum, buffer) => sum + buffer.byteLength, 0);
    this.#free.length = 0;
    this.#pacer.dropped(bytes);
  }

  /** Free buffers held now. */
  get free(): number {
    return this.#free.length;
  }
}
