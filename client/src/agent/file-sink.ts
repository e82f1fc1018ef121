// Where a download from the cloud goes: the bytes are copied out of the socket's chunks into two
// buffers of the sink's own and written to the file from those, a buffer at a time.
import { Writable } from 'node:stream';

/** What the sink needs of the file: appending writes (a FileHandle opened for writing). */
export interface AppendTarget {
  writev(buffers: Uint8Array[]): Promise<{ bytesWritten: number }>;
}

/** Bytes of one of the sink's two buffers. */
export const fileSinkBufferBytes = 1024 * 1024;

/** Appends `buffers` to the file, all of them (a short write goes on where it stopped); answers the bytes written. */
export async function writeAll(target: AppendTarget, buffers: readonly Uint8Array[]): Promise<number> {
  const total = buffers.reduce((n, b) => n + b.length, 0);
  let left = buffers.filter((b) => b.length > 0);
  let done = 0;
  while (left.length > 0) {
    let { bytesWritten } = await target.writev(left);
    if (bytesWritten <= 0) throw new Error(`the file took none of ${total - done} bytes`);
    done += bytesWritten;
    const rest: Uint8Array[] = [];
    for (const b of left) {
      if (bytesWritten >= b.length) bytesWritten -= b.length;
      else {
        rest.push(bytesWritten === 0 ? b : b.subarray(bytesWritten));
        bytesWritten = 0;
      }
    }
    left = rest;
  }
  return done;
}

/**
 * A Writable that appends what it is given to `target`. Each chunk is copied into one of two
 * buffers of `bufferBytes` and taken as written at once; a full buffer goes to the file while
 * the other fills, and a chunk waits only when both are on their way. A socket's chunks are
 * therefore never held while the disk works: they die young, in the collection that follows,
 * instead of living on into the old generation with their memory outside V8's heap, which the
 * C allocator then keeps (a receiving agent's RSS grew by some 70 MiB over a 2 GiB file that
 * way), and the file gets one call per buffer rather than one per 64 KiB chunk. `written` says
 * how many bytes reached the file, after each write and at the end.
 */
export function fileSink(target: AppendTarget, written: (bytes: number) => void, bufferBytes: number = fileSinkBufferBytes): Writable {
  const buffers = [Buffer.allocUnsafeSlow(bufferBytes), Buffer.allocUnsafeSlow(bufferBytes)];
  // The write of each buffer on its way, if any.
  const writing: (Promise<void> | undefined)[] = [undefined, undefined];
  let current = 0;
  let filled = 0;
  let failure: Error | undefined;

  // The file's writes, one after the other (appends to one file must not overlap).
  let tail: Promise<void> = Promise.resolve();
  const flush = (): void => {
    const index = current;
    const bytes = buffers[index]!.subarray(0, filled);
    tail = writing[index] = tail
      .then(() => (failure === undefined ? writeAll(target, [bytes]).then(written) : undefined))
      .catch((err: unknown) => {
        failure ??= err instanceof Error ? err : new Error(String(err));
      })
      .finally(() => {
        // Nothing fills this buffer again before this ran: filling it waits for this very promise.
        writing[index] = undefined;
      });
    current = 1 - current;
    filled = 0;
  };

  const check = (): void => {
    if (failure !== undefined) throw failure;
  };
  const copy = async (chunk: Uint8Array): Promise<void> => {
    for (let offset = 0; offset < chunk.length;) {
      check();
      // The buffer to fill may still be on its way to the file: wait for it.
      await writing[current];
      check();
      const n = Math.min(bufferBytes - filled, chunk.length - offset);
      buffers[current]!.set(chunk.subarray(offset, offset + n), filled);
      filled += n;
      offset += n;
      if (filled === bufferBytes) flush();
    }
  };

  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      // Most chunks fit in the buffer being filled: taken at once, without a promise.
      if (failure === undefined && writing[current] === undefined && chunk.length < bufferBytes - filled) {
        buffers[current]!.set(chunk, filled);
        filled += chunk.length;
        done();
        return;
      }
      copy(chunk).then(() => done(), done);
    },
    final(done) {
      (async () => {
        // The buffer being filled is never on its way (filling it waited for that).
        if (failure === undefined && filled > 0) flush();
        await tail;
        check();
      })().then(() => done(), done);
    },
  });
}
