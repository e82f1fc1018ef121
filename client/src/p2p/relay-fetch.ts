// Fetching a file's blocks through one holder's relay, several at once (ADR 65). One request at a
// time left the relay idle for a round trip through the service between blocks; a few in flight
// keep it busy while memory stays bounded: each of `streams` workers holds at most one block.
// The I/O is the caller's (`fetch`, `write`), so the scheduling is tested without servers.
import type { WantedBlock } from './peer-client.ts';

/** Attempts at one block while the service says to slow down (429, 503 relay_busy), before the holder is given up. */
export const relaySlowDownAttempts = 5;

/** The longest Retry-After a relayed block request waits out; a longer one gives the holder up. */
export const relayMaxRetryAfterMs = 10_000;

/**
 * How long to wait before asking a relayed block again after the answer `status` with error
 * `code` and `retryAfterMs` (attempt `attempt`, 1-based); undefined: give the holder up. Only
 * "slow down" answers are waited out: the fetcher over its byte rate (`429`), the holder's relay
 * busy (`503 relay_busy`). An offline holder (`503 device_offline`), a refusal or a bad block
 * moves on at once.
 */
export function relayRetryDelayMs(
  status: number,
  code: string | undefined,
  retryAfterMs: number | undefined,
  attempt: number,
): number | undefined {
  const slowDown = status === 429 || (status === 503 && code === 'relay_busy');
  if (!slowDown || attempt >= relaySlowDownAttempts) return undefined;
  const wait = retryAfterMs ?? 1000;
  return wait > relayMaxRetryAfterMs ? undefined : wait;
}

/** Blocks asked through one holder's relay at once: enough to keep it busy across round trips, few enough that at most 16 MiB of blocks (4 MiB each) are held. */
export const relayStreamsPerHolder = 4;

export interface FetchThroughRelayOptions {
  blocks: readonly WantedBlock[];
  /** Fetches one block and checks it: its bytes, or undefined when the holder did not deliver it (the rest is then left). Throws only to end the whole fetch (an abort). */
  fetch(block: WantedBlock): Promise<Uint8Array | undefined>;
  /** Writes a delivered block into place; a failure ends the whole fetch. */
  write(block: WantedBlock, data: Uint8Array): Promise<void>;
  /** Requests in flight at most; default `relayStreamsPerHolder`. */
  streams?: number;
}

/**
 * Fetches the blocks, `streams` at once, until the holder fails one: the blocks in flight then
 * finish and the rest are not asked. Answers the blocks not delivered. Rejects (once every
 * request in flight has settled, so nothing writes afterwards) when `fetch` or `write` throws.
 */
export async function fetchThroughRelay(options: FetchThroughRelayOptions): Promise<WantedBlock[]> {
  const queue = [...options.blocks];
  const undelivered: WantedBlock[] = [];
  let stop = false;
  const worker = async (): Promise<void> => {
    for (let b = queue.shift(); b !== undefined; b = queue.shift()) {
      if (stop) {
        undelivered.push(b);
        continue;
      }
      try {
        const data = await options.fetch(b);
        if (data === undefined) {
          stop = true;
          undelivered.push(b);
          continue;
        }
        await options.write(b, data);
      } catch (err) {
        stop = true;
        undelivered.push(b);
        throw err;
      }
    }
  };
  const outcomes = await Promise.allSettled(Array.from({ length: Math.max(1, options.streams ?? relayStreamsPerHolder) }, worker));
  for (const o of outcomes) if (o.status === 'rejected') throw o.reason;
  return undelivered;
}
