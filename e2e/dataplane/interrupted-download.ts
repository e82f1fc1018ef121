// A download cut in the middle: the sink, `after` bytes in, runs `interrupt` (a gateway killed,
// say) and takes nothing more until it resolves, so the cut lands inside the body whatever the
// socket had buffered. Used by the tests of a gateway restarting under a client.
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import type { DeviceClient } from '@meshwork/client';
import { downloadToStream } from '@meshwork/client/node';

export interface InterruptedDownload {
  /** What downloadToStream answered it delivered. */
  bytes: number;
  /** What the sink received, and its sha256. */
  received: number;
  sha256: string;
  /** Whether `interrupt` ran (the body was at least `after` bytes long). */
  interrupted: boolean;
}

export async function downloadInterrupted(
  device: DeviceClient,
  objectId: string,
  path: string,
  after: number,
  interrupt: () => Promise<void>,
): Promise<InterruptedDownload> {
  const hash = createHash('sha256');
  let received = 0;
  let interrupted: Promise<void> | undefined;
  const sink = new Writable({
    highWaterMark: 64 * 1024,
    write(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      received += chunk.length;
      if (interrupted === undefined && received >= after) {
        interrupted = interrupt();
        interrupted.then(() => done(), done);
        return;
      }
      done();
    },
  });
  const got = await downloadToStream(device, objectId, path, sink);
  return { bytes: got.bytes, received, sha256: hash.digest('hex'), interrupted: interrupted !== undefined };
}
