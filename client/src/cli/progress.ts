// The progress display of a transfer: one line on stderr, redrawn at most ten times a second,
// only when stderr is a terminal (a log file or a pipe gets no progress at all). The text of
// the line is format.ts's `progressLine`.
import { progressLine } from './format.ts';

/** A writable terminal stream as far as progress needs one. */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): boolean;
}

/** A progress line for one transfer; a no-op when the stream is not a terminal. */
export class Progress {
  readonly #stream: ProgressStream;
  readonly #label: string;
  readonly #total: number | undefined;
  readonly #started = performance.now();
  readonly #enabled: boolean;
  #bytes = 0;
  // Never drawn: the first update draws, however soon after the process started (performance.now() counts from then).
  #drawnAt = Number.NEGATIVE_INFINITY;
  #drawn = false;

  constructor(stream: ProgressStream, label: string, total: number | undefined) {
    this.#stream = stream;
    this.#label = label;
    this.#total = total;
    this.#enabled = stream.isTTY === true;
  }

  /** Adds bytes done and redraws when the last draw is 100 ms old. */
  add(bytes: number): void {
    this.set(this.#bytes + bytes);
  }

  /** Sets the bytes done so far (the engine's events carry the running total). */
  set(bytes: number): void {
    this.#bytes = bytes;
    const now = performance.now();
    if (this.#enabled && now - this.#drawnAt >= 100) {
      this.#drawnAt = now;
      this.#draw(now);
    }
  }

  /** Draws the final line and moves to the next one (or clears it when `clear`). */
  finish(clear = false): void {
    if (!this.#enabled || !this.#drawn) return;
    if (clear) this.#stream.write('\r\x1b[2K');
    else {
      this.#draw(performance.now());
      this.#stream.write('\n');
    }
  }

  #draw(now: number): void {
    const line = progressLine(this.#label, this.#bytes, this.#total, now - this.#started);
    const width = this.#stream.columns ?? 100;
    this.#stream.write(`\r\x1b[2K${line.slice(0, Math.max(10, width - 1))}`);
    this.#drawn = true;
  }
}
