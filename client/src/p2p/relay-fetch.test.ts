// Fetching blocks through a relay several at once (ADR 65): how many are in flight, what a
// failing holder leaves, and that nothing is written once the fetch has failed.
import { describe, expect, it } from 'vitest';
import type { WantedBlock } from './peer-client.ts';
import { fetchThroughRelay, relayRetryDelayMs, relayStreamsPerHolder } from './relay-fetch.ts';

const blocks: WantedBlock[] = Array.from({ length: 10 }, (_, i) => ({ sha256: String(i).repeat(64), size: 1, offset: i }));

/** A holder whose answers the test releases one by one, counting what is in flight. */
function holder(fail: (b: WantedBlock) => 'deliver' | 'refuse' | 'throw' = () => 'deliver') {
  const pending: (() => void)[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const asked: number[] = [];
  return {
    asked,
    get maxInFlight() {
      return maxInFlight;
    },
    get waiting() {
      return pending.length;
    },
    fetch: (b: WantedBlock): Promise<Uint8Array | undefined> => {
      asked.push(b.offset);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      return new Promise((resolve, reject) =>
        pending.push(() => {
          inFlight--;
          const outcome = fail(b);
          if (outcome === 'throw') reject(new Error('aborted'));
          else resolve(outcome === 'deliver' ? Uint8Array.of(b.offset) : undefined);
        }),
      );
    },
    /** Answers the oldest request; resolves after the microtasks that follow it. */
    async release(): Promise<void> {
      pending.shift()?.();
      await new Promise((resolve) => setImmediate(resolve));
    },
  };
}

async function drain(h: ReturnType<typeof holder>, done: { settled: boolean }): Promise<void> {
  while (!done.settled) await h.release();
}

describe('fetchThroughRelay', () => {
  it('keeps 4 requests in flight, never more, and delivers every block once', async () => {
    const h = holder();
    const written: number[] = [];
    const done = { settled: false };
    const fetching = fetchThroughRelay({ blocks, fetch: h.fetch, write: (b) => Promise.resolve(void written.push(b.offset)) }).finally(
      () => (done.settled = true),
    );
    await new Promise((resolve) => setImmediate(resolve));
    expect(h.waiting).toBe(relayStreamsPerHolder);
    await drain(h, done);
    expect(await fetching).toEqual([]);
    expect(h.maxInFlight).toBe(4);
    expect(written.sort((a, b) => a - b)).toEqual(blocks.map((b) => b.offset));
  });

  it.each([1, 2, 8])('takes %d streams when asked', async (streams) => {
    const h = holder();
    const done = { settled: false };
    const fetching = fetchThroughRelay({ blocks, streams, fetch: h.fetch, write: () => Promise.resolve() }).finally(
      () => (done.settled = true),
    );
    await drain(h, done);
    await fetching;
    expect(h.maxInFlight).toBe(Math.min(streams, blocks.length));
  });

  it('stops asking once the holder fails a block, and answers what it did not deliver', async () => {
    const h = holder((b) => (b.offset === 1 ? 'refuse' : 'deliver'));
    const written: number[] = [];
    const done = { settled: false };
    const fetching = fetchThroughRelay({ blocks, fetch: h.fetch, write: (b) => Promise.resolve(void written.push(b.offset)) }).finally(
      () => (done.settled = true),
    );
    await drain(h, done);
    const left = await fetching;
    // Answers come in order: 0 (its worker asks 4), then 1 fails; 2, 3 and 4 in flight finish, nothing more is asked.
    expect(h.asked.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4]);
    expect(written.sort((a, b) => a - b)).toEqual([0, 2, 3, 4]);
    expect(left.map((b) => b.offset).sort((a, b) => a - b)).toEqual([1, 5, 6, 7, 8, 9]);
  });

  it('rejects after the requests in flight have settled when a write fails, and asks for nothing more', async () => {
    const h = holder();
    const written: number[] = [];
    const done = { settled: false };
    const fetching = fetchThroughRelay({
      blocks,
      fetch: h.fetch,
      write: (b) => (b.offset === 0 ? Promise.reject(new Error('disk full')) : Promise.resolve(void written.push(b.offset))),
    });
    const outcome = fetching.then(
      () => 'resolved',
      (err: Error) => err.message,
    );
    void outcome.finally(() => (done.settled = true));
    await drain(h, done);
    expect(await outcome).toBe('disk full');
    expect(h.asked.sort((a, b) => a - b)).toEqual([0, 1, 2, 3]);
    expect(written.sort((a, b) => a - b)).toEqual([1, 2, 3]);
  });

  it('rejects when a fetch throws (an abort)', async () => {
    const h = holder((b) => (b.offset === 2 ? 'throw' : 'deliver'));
    const done = { settled: false };
    const outcome = fetchThroughRelay({ blocks, fetch: h.fetch, write: () => Promise.resolve() }).then(
      () => 'resolved',
      (err: Error) => err.message,
    );
    void outcome.finally(() => (done.settled = true));
    await drain(h, done);
    expect(await outcome).toBe('aborted');
  });
});

describe('relayRetryDelayMs', () => {
  it.each<[string, number, string | undefined, number | undefined, number, number | undefined]>([
    ['the fetcher over its byte rate: wait as told', 429, 'throttled', 2000, 1, 2000],
    ['a 429 without Retry-After: a second', 429, undefined, undefined, 1, 1000],
    ["the holder's relay busy", 503, 'relay_busy', 1000, 2, 1000],
    ['still slowed down at the last attempt: give up', 429, 'throttled', 1000, 5, undefined],
    ['told to wait longer than 10 s: give up', 503, 'relay_busy', 11_000, 1, undefined],
    ['the holder offline: give up at once', 503, 'device_offline', 5000, 1, undefined],
    ['the grant refused', 403, 'forbidden', undefined, 1, undefined],
    ['no such block', 404, 'not_found', undefined, 1, undefined],
  ])('%s', (_, status, code, retryAfterMs, attempt, expected) => {
    expect(relayRetryDelayMs(status, code, retryAfterMs, attempt)).toBe(expected);
  });
});
