import { describe, expect, it } from 'vitest';
import { AdaptiveConcurrencyLimit, type AdaptiveLimitOptions, type Ticket } from './adaptive-limit.ts';

const base: AdaptiveLimitOptions = {
  min: 4,
  max: 256,
  initial: 32,
  tolerance: 1.5,
  windowMs: 100,
  minWindowSamples: 20,
  probeIntervalMs: 30_000,
  random: () => 0.5,
};

/**
 * Runs `rounds` rounds from `start`: each admits up to `concurrency` requests at once and
 * finishes them all `rtt` ms later. Returns the time after the last round.
 */
function drive(limiter: AdaptiveConcurrencyLimit, start: number, rounds: number, concurrency: number, rtt: number): number {
  let t = start;
  for (let r = 0; r < rounds; r++) {
    const tickets: Ticket[] = [];
    for (let i = 0; i < concurrency; i++) {
      const ticket = limiter.tryAcquire(t);
      if (ticket) tickets.push(ticket);
    }
    t += rtt;
    for (const ticket of tickets) limiter.release(ticket, t, true);
  }
  return t;
}

describe('AdaptiveConcurrencyLimit', () => {
  it('admits up to the limit and refuses the next at once', () => {
    const limiter = new AdaptiveConcurrencyLimit({ ...base, initial: 8 }, 0);
    const tickets = Array.from({ length: 8 }, () => limiter.tryAcquire(0));
    expect(tickets.every((t) => t !== undefined)).toBe(true);
    expect(limiter.tryAcquire(0)).toBeUndefined();
    limiter.release(tickets[0]!, 1, false);
    expect(limiter.tryAcquire(1)).toBeDefined();
    expect(limiter.inflight).toBe(8);
  });

  it('grows by the square root of the limit per busy window while latency stays at no load', () => {
    const limiter = new AdaptiveConcurrencyLimit(base, 0);
    // One window: 32 at a time, 1 ms each, 100 ms long.
    drive(limiter, 0, 100, 32, 1);
    expect(limiter.noLoadRtt).toBe(1);
    expect(limiter.limit).toBe(Math.floor(32 + Math.sqrt(32)));
  });

  it('keeps its limit while the process uses less than half of it', () => {
    const limiter = new AdaptiveConcurrencyLimit(base, 0);
    drive(limiter, 0, 1000, 10, 1);
    expect(limiter.limit).toBe(32);
  });

  it.each([
    { ratio: 1.5, gradient: 1 },
    { ratio: 2, gradient: 0.75 },
    { ratio: 3, gradient: 0.5 },
    { ratio: 10, gradient: 0.5 },
  ])('scales the limit by $gradient (plus √limit) when latency rises to $ratio × no load', ({ ratio, gradient }) => {
    const limiter = new AdaptiveConcurrencyLimit(base, 0);
    const t = drive(limiter, 0, 100, 32, 1);
    const before = 32 + Math.sqrt(32);
    expect(limiter.limit).toBe(Math.floor(before));
    drive(limiter, t, Math.ceil(100 / ratio), 40, ratio);
    expect(limiter.noLoadRtt).toBe(1);
    expect(limiter.limit).toBe(Math.floor(before * gradient + Math.sqrt(before)));
  });

  it.each([
    { case: 'reaches max under low latency', rtt: 1, bound: 40 },
    { case: 'reaches min under high latency', rtt: 50, bound: 10 },
  ])('stays within its bounds and $case', ({ rtt, bound }) => {
    const limiter = new AdaptiveConcurrencyLimit({ ...base, min: 10, max: 40 }, 0);
    let t = drive(limiter, 0, 100, 32, 1);
    const seen: number[] = [];
    for (let round = 0; round < 200; round++) {
      t = drive(limiter, t, 1, 64, rtt);
      seen.push(limiter.limit);
    }
    expect(Math.min(...seen)).toBeGreaterThanOrEqual(10);
    expect(Math.max(...seen)).toBeLessThanOrEqual(40);
    expect(seen).toContain(bound);
  });

  it('measures no-load latency afresh by probing at min concurrency, then restores the limit', () => {
    const limiter = new AdaptiveConcurrencyLimit({ ...base, probeSamples: 10 }, 0);
    drive(limiter, 0, 100, 32, 1);
    const limit = limiter.limit;
    expect(limiter.noLoadRtt).toBe(1);
    // The work got slower for good (a slower store): 3 ms at any concurrency up to the limit.
    const t = 30_000;
    const probe = Array.from({ length: 10 }, () => limiter.tryAcquire(t));
    expect(limiter.probing).toBe(true);
    expect(limiter.limit).toBe(4);
    expect(probe.filter((p) => p !== undefined)).toHaveLength(4);
    for (const ticket of probe) if (ticket) limiter.release(ticket, t + 3, true);
    expect(limiter.probing).toBe(true);
    drive(limiter, t + 3, 2, 4, 3);
    expect(limiter.probing).toBe(false);
    expect(limiter.noLoadRtt).toBe(3);
    expect(limiter.limit).toBeGreaterThanOrEqual(limit - 1);
  });

  it('gives up a probe that gathers too few samples and keeps the no-load latency', () => {
    const limiter = new AdaptiveConcurrencyLimit({ ...base, probeTimeoutMs: 1000 }, 0);
    drive(limiter, 0, 100, 32, 1);
    const ticket = limiter.tryAcquire(30_000)!;
    expect(limiter.probing).toBe(true);
    limiter.release(ticket, 31_500, true);
    expect(limiter.probing).toBe(false);
    expect(limiter.noLoadRtt).toBe(1);
  });

  it('takes a window that never exceeded min concurrency as a fresh no-load measurement', () => {
    const limiter = new AdaptiveConcurrencyLimit(base, 0);
    const t = drive(limiter, 0, 100, 32, 1);
    drive(limiter, t, 100, 2, 2);
    expect(limiter.noLoadRtt).toBe(2);
    expect(limiter.probing).toBe(false);
  });

  it.each([8, 16, 48])('settles near the knee of a server that saturates at concurrency %d', (knee) => {
    // A server whose latency is 1 ms up to `knee` requests at once and grows in proportion
    // beyond: throughput is flat past the knee, only queueing grows.
    const limiter = new AdaptiveConcurrencyLimit({ ...base, initial: 4 }, 0);
    const running: { ticket: Ticket; done: number }[] = [];
    const limits: number[] = [];
    let served = 0;
    for (let t = 0; t < 60_000; t += 0.25) {
      for (let i = running.length - 1; i >= 0; i--) {
        if (running[i]!.done <= t) {
          limiter.release(running[i]!.ticket, t, true);
          running.splice(i, 1);
          served++;
        }
      }
      // Demand far above capacity: fill every free place.
      for (let ticket = limiter.tryAcquire(t); ticket; ticket = limiter.tryAcquire(t)) {
        running.push({ ticket, done: t + Math.max(1, (running.length + 1) / knee) });
      }
      if (t >= 30_000 && t % 100 === 0) limits.push(limiter.limit);
    }
    const mean = limits.reduce((a, b) => a + b, 0) / limits.length;
    expect(mean).toBeGreaterThanOrEqual(knee);
    expect(mean).toBeLessThanOrEqual(2.5 * knee);
    // At least 90 % of the throughput an ideal limit of `knee` would give (knee per ms).
    expect(served / 60_000).toBeGreaterThan(0.9 * knee);
  });

  it('keeps its limit when a lightly used window is slow: the limit was not what made it slow', () => {
    const limiter = new AdaptiveConcurrencyLimit(base, 0);
    // Busy windows, then quiet ones; then ten at a time (under half the limit), ten times
    // slower: a slow store or a collection.
    const t = drive(limiter, drive(limiter, 0, 100, 32, 1), 200, 10, 1);
    const limit = limiter.limit;
    drive(limiter, t, 100, 10, 10);
    expect(limiter.noLoadRtt).toBe(1);
    expect(limiter.limit).toBe(limit);
  });

  it('brings a limit that a burst shrank back up to its initial value in quiet windows, and no further', () => {
    const limiter = new AdaptiveConcurrencyLimit(base, 0);
    let t = drive(limiter, 0, 100, 4, 1);
    expect(limiter.limit).toBe(32);
    // A burst that fills the limit at ten times the latency: it shrinks, as under overload.
    t = drive(limiter, t, 10, 40, 10);
    expect(limiter.limit).toBeLessThan(32);
    // Then quiet again: two at a time, at no-load latency.
    const seen: number[] = [];
    for (let i = 0; i < 50; i++) {
      t = drive(limiter, t, 50, 2, 1);
      seen.push(limiter.limit);
    }
    expect(seen.at(-1)).toBe(32);
    expect(Math.max(...seen)).toBe(32);
  });

  it('lets a window of a handful of samples decide nothing', () => {
    const limiter = new AdaptiveConcurrencyLimit({ ...base, initial: 8, max: 8, maxWindowMs: 1000 }, 0);
    // Busy windows at no load, then one at a time until a window has just closed.
    let t = drive(limiter, drive(limiter, 0, 100, 8, 1), 100, 1, 1);
    expect(limiter.limit).toBe(8);
    // Four slow requests at half the limit, and the window closes on its age.
    const tickets = Array.from({ length: 4 }, () => limiter.tryAcquire(t)!);
    t += 1500;
    for (const ticket of tickets) limiter.release(ticket, t, true);
    expect(limiter.limit).toBe(8);
  });

  it('serves a light, bursty load with mixed latencies and pauses without refusing it', () => {
    // The capacity bench's shape at 10,000 devices: about 170 requests a second, a third of
    // them four times slower than the rest (commits beside reads), and a 100 ms pause every
    // 2 s (a collection, a wave of answered long polls) during which nothing finishes.
    const limiter = new AdaptiveConcurrencyLimit({ ...base, initial: 32 }, 0);
    let seed = 1;
    const random = (): number => (seed = (seed * 48271) % 2147483647) / 2147483647;
    const running: { ticket: Ticket; done: number }[] = [];
    let refused = 0;
    let offered = 0;
    const limits: number[] = [];
    for (let t = 0; t < 120_000; t += 1) {
      const paused = t % 2000 < 100;
      for (let i = running.length - 1; i >= 0; i--) {
        if (!paused && running[i]!.done <= t) {
          limiter.release(running[i]!.ticket, t, true);
          running.splice(i, 1);
        }
      }
      if (random() < 0.17) {
        offered++;
        const ticket = limiter.tryAcquire(t);
        if (ticket) running.push({ ticket, done: t + (random() < 0.33 ? 8 : 2) });
        else refused++;
      }
      if (t % 100 === 0) limits.push(limiter.limit);
    }
    expect(offered).toBeGreaterThan(19_000);
    expect(refused).toBe(0);
    // Each pause shrinks the limit (it cannot tell a pause from overload), and the quiet
    // windows after it bring it back.
    expect(Math.min(...limits)).toBeLessThan(32);
    expect(limits.at(-1)).toBe(32);
  });

  it.each([
    { utilization: 0.3, grows: true },
    { utilization: 0.89, grows: true },
    { utilization: 0.9, grows: false },
    { utilization: 1, grows: false },
  ])(
    'with the event loop busy $utilization of the time, a full window three times slower grows the limit: $grows',
    ({ utilization, grows }) => {
      let busy = 1;
      const limiter = new AdaptiveConcurrencyLimit({ ...base, utilization: () => busy }, 0);
      const t = drive(limiter, 0, 100, 32, 1);
      const before = limiter.limit;
      busy = utilization;
      // Every place taken, three times the no-load latency: waits on a store with the thread
      // idle, or this process's own queue with the thread busy.
      drive(limiter, t, 34, 40, 3);
      if (grows) expect(limiter.limit).toBe(Math.floor(before + Math.sqrt(before)));
      else expect(limiter.limit).toBeLessThan(before);
    },
  );
});
