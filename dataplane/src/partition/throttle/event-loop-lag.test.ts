import { describe, expect, it } from 'vitest';
import { EventLoopLagMonitor, intervalLagMs } from './event-loop-lag.ts';

describe('intervalLagMs', () => {
  it.each([
    { case: 'an idle loop', medianNs: 10.2e6, samples: 50, overrun: 0.3, lag: 0.2 },
    { case: 'a busy loop', medianNs: 40e6, samples: 12, overrun: 2, lag: 30 },
    { case: 'a loop blocked the whole interval', medianNs: Number.NaN, samples: 0, overrun: 700, lag: 700 },
    { case: 'a clock that ran early', medianNs: 9e6, samples: 50, overrun: -1, lag: 0 },
  ])('is $lag ms for $case', ({ medianNs, samples, overrun, lag }) => {
    expect(intervalLagMs(medianNs, samples, 10, overrun)).toBeCloseTo(lag);
  });
});

describe('EventLoopLagMonitor', () => {
  it.each([
    { lags: [0, 0], shedding: false },
    { lags: [100, 100], shedding: false },
    { lags: [101, 101], shedding: true },
    { lags: [10, 2000], shedding: false },
    { lags: [2000, 10], shedding: false },
    { lags: [150, 2000], shedding: true },
    { lags: [150, 150, 20], shedding: false },
  ])('with a threshold of 100 ms, after intervals lagging $lags ms, sheds: $shedding', ({ lags, shedding }) => {
    const monitor = new EventLoopLagMonitor(100);
    for (const lag of lags) monitor.record(lag);
    expect(monitor.shedding).toBe(shedding);
  });

  it('sheds while a real loop stays saturated', async () => {
    const monitor = new EventLoopLagMonitor(30, { intervalMs: 100 });
    monitor.start();
    try {
      expect(monitor.shedding).toBe(false);
      // Work in 60 ms slices: every timer runs about 60 ms late, interval after interval.
      const deadline = performance.now() + 3000;
      await new Promise<void>((resolve) => {
        const spin = (): void => {
          const until = performance.now() + 60;
          while (performance.now() < until);
          if (monitor.shedding || performance.now() > deadline) resolve();
          else setImmediate(spin);
        };
        spin();
      });
      expect(monitor.shedding).toBe(true);
      expect(monitor.lagMs).toBeGreaterThan(30);
    } finally {
      monitor.stop();
    }
    expect(monitor.shedding).toBe(false);
  });
});

describe('EventLoopLagMonitor utilization', () => {
  it('is 1 before any interval, then the mean of the last four intervals', () => {
    const monitor = new EventLoopLagMonitor(100);
    expect(monitor.utilization).toBe(1);
    for (const u of [1, 1, 1, 1, 0.2, 0.2]) monitor.recordUtilization(u);
    expect(monitor.utilization).toBeCloseTo(0.6);
  });
});
