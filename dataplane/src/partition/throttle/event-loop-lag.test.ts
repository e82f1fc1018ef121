import { describe, expect, it, vi } from 'vitest';
import { EventLoopLagMonitor, intervalLagMs } from './event-loop-lag.ts';

describe('intervalLagMs', () => {
  it.each([
    { case: 'an idle loop', meanNs: 10.2e6, samples: 50, overrun: 0.3, lag: 0.3 },
    { case: 'a busy loop', meanNs: 40e6, samples: 12, overrun: 2, lag: 30 },
    { case: 'a loop blocked the whole interval', meanNs: Number.NaN, samples: 0, overrun: 700, lag: 700 },
    { case: 'a clock that ran early', meanNs: 9e6, samples: 50, overrun: -1, lag: 0 },
  ])('is $lag ms for $case', ({ meanNs, samples, overrun, lag }) => {
    expect(intervalLagMs(meanNs, samples, 10, overrun)).toBeCloseTo(lag);
  });
});

describe('EventLoopLagMonitor', () => {
  it.each([
    { lag: 0, shedding: false },
    { lag: 100, shedding: false },
    { lag: 100.5, shedding: true },
    { lag: 2000, shedding: true },
  ])('sheds at $lag ms of lag with a threshold of 100 ms: $shedding', ({ lag, shedding }) => {
    const monitor = new EventLoopLagMonitor(100);
    monitor.record(lag);
    expect(monitor.shedding).toBe(shedding);
  });

  it('measures a real blocked loop', async () => {
    const monitor = new EventLoopLagMonitor(50, { intervalMs: 100 });
    monitor.start();
    try {
      expect(monitor.shedding).toBe(false);
      // Block the loop for longer than the interval; the monitor's timer then runs late.
      const until = performance.now() + 300;
      while (performance.now() < until);
      await vi.waitFor(() => expect(monitor.shedding).toBe(true), { timeout: 2000, interval: 5 });
      expect(monitor.lagMs).toBeGreaterThan(150);
    } finally {
      monitor.stop();
    }
    expect(monitor.shedding).toBe(false);
  });
});
