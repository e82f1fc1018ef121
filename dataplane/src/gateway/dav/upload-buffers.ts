// Whole-block buffers that one WebDAV upload uses again (as the agent's BlockBuffers do, ADR 75).
import { maxBlockSize } from '@meshwork/client';
import { processGcPacer, type GcPacer } from '@meshwork/contract';

/**
 * The 4 MiB buffers one upload assembles its blocks in, given back once a block is stored (or
 * found stored already) and taken again for a later block: a large file costs the buffers its
 * blocks in flight need instead of a fresh one per block. The pool takes any whole 4 MiB
 * buffer it is given (only the upload's own blocks are). Dropped
 * at the upload's end; the pacer then asks for the full collection that frees them at once.
 */
export class UploadBuffers {
  readonly #free: ArrayBuffer[] = [];
  readonly #keep: number;
  readonly #pacer: GcPacer;
  #made = 0;

  constructor(keep: number, pacer: GcPacer = processGcPacer) {
    this.#keep = keep;
    this.#pacer = pacer;
  }

  /** A 4 MiB buffer, used before or new. */
  take(): Uint8Array {
    const free = this.#free.pop();
    if (free !== undefined) return new Uint8Array(free);
    this.#made++;
    return new Uint8Array(maxBlockSize);
  }

  /**
   * Takes back the buffer a stored block lies in when it is 4 MiB long and not detached; nothing
   * may read the block any more. A buffer given back twice is kept once: handed out to two blocks
   * at a time, it would mix their bytes.
   */
  give(data: Uint8Array): void {
    const buffer = data.buffer;
    if (!(buffer instanceof ArrayBuffer) || buffer.detached || buffer.byteLength !== maxBlockSize) return;
    if (this.#free.length < this.#keep && !this.#free.includes(buffer)) this.#free.push(buffer);
  }

  /** How many buffers were made (not taken again). */
  get made(): number {
    return this.#made;
  }

  /**
   * Lets go of every buffer (those still out are the garbage collector's). After a large file
   * (4 buffers or more) the pacer is told; smaller uploads leave theirs to the next collection,
   * which costs less than a full one per file.
   */
  drop(): void {
    if (this.#made >= 4) this.#pacer.dropped(this.#made * maxBlockSize);
    this.#free.length = 0;
  }
}
