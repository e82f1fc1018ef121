import { describe, expect, it } from 'vitest';
import { WorkQueue, backoffDelay } from './workqueue.ts';

/** A promise with its resolver, to hold a handler until the test lets it go. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = (): void => undefined;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Lets queued microtasks and handler continuations run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

describe('WorkQueue', () => {
  it('merges adds of a key that is still waiting', async () => {
    const seen: string[] = [];
    const queue = new WorkQueue({
      concurrency: 1,
      handler: (key) => {
        seen.push(key);
        return Promise.resolve();
      },
    });
    queue.add('a');
    queue.add('b');
    queue.add('a');
    expect(queue.depth).toBe(2);
    queue.start();
    await settle();
    expect(seen).toEqual(['a', 'b']);
  });

  it('never runs one key twice at once, and runs it again after an add during its run', async () => {
    const gate = deferred();
    let concurrent = 0;
    let maxConcurrent = 0;
    let runs = 0;
    const queue = new WorkQueue({
      concurrency: 4,
      handler: async () => {
        runs++;
        concurrent++;
        maxConcurrent = Math.max(maxConcurrent, concurrent);
        if (runs === 1) await gate.promise;
        concurrent--;
      },
    });
    queue.start();
    queue.add('a');
    await settle();
    queue.add('a');
    queue.add('a');
    await settle();
    expect(runs).toBe(1);
    gate.resolve();
    await settle();
    expect(runs).toBe(2);
    expect(maxConcurrent).toBe(1);
  });

  it.each([1, 2, 3])('caps concurrency at %i', async (concurrency) => {
    const gate = deferred();
    const queue = new WorkQueue({ concurrency, handler: () => gate.promise });
    queue.start();
    for (const key of ['a', 'b', 'c', 'd', 'e']) queue.add(key);
    await settle();
    expect(queue.active).toBe(concurrency);
    expect(queue.depth).toBe(5 - concurrency);
    gate.resolve();
    await settle();
    expect(queue.active).toBe(0);
  });

  it('retries a failed key with growing delays and reports each failure', async () => {
    const delays: number[] = [];
    const queue = new WorkQueue({
      concurrency: 1,
      baseDelayMs: 60_000,
      handler: () => Promise.reject(new Error('boom')),
      hooks: { failed: (_key, _err, delayMs) => delays.push(delayMs) },
    });
    queue.start();
    queue.add('a');
    await settle();
    queue.add('a');
    await settle();
    expect(delays).toEqual([60_000, 120_000]);
    await queue.shutdown();
  });

  it('takes high-priority keys first, and promotes a waiting key added again with high priority', async () => {
    const seen: string[] = [];
    const queue = new WorkQueue({
      concurrency: 1,
      handler: (key) => {
        seen.push(key);
        return Promise.resolve();
      },
    });
    queue.add('status-1');
    queue.add('status-2');
    queue.add('new-1', 'high');
    queue.add('status-3');
    queue.add('status-2', 'high');
    expect(queue.depth).toBe(4);
    queue.start();
    await settle();
    expect(seen).toEqual(['new-1', 'status-2', 'status-1', 'status-3']);
  });

  it('waits for running handlers on shutdown', async () => {
    const gate = deferred();
    let finished = false;
    const queue = new WorkQueue({
      concurrency: 1,
      handler: async () => {
        await gate.promise;
        finished = true;
      },
    });
    queue.start();
    queue.add('a');
    await settle();
    const stopped = queue.shutdown();
    gate.resolve();
    await stopped;
    expect(finished).toBe(true);
  });
});

describe('backoffDelay', () => {
  it.each([
    { failures: 1, expected: 5 },
    { failures: 2, expected: 10 },
    { failures: 5, expected: 80 },
    { failures: 30, expected: 1000 },
  ])('after $failures failures waits $expected ms', ({ failures, expected }) => {
    expect(backoffDelay(failures, 5, 1000)).toBe(expected);
  });
});
