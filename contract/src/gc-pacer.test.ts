import { describe, expect, it } from 'vitest';
import { GcPacer, gcPaceBytes, gcReduceEveryMs, processGcPacer, type Collector } from './gc-pacer.ts';

function recording(): { calls: { type: string; flavor?: string }[]; collect: Collector } {
  const calls: { type: string; flavor?: string }[] = [];
  return { calls, collect: (options) => void calls.push(options) };
}

describe('GcPacer', () => {
  it('asks for one young-generation collection per paceBytes streamed, not before', () => {
    const { calls, collect } = recording();
    const pacer = new GcPacer(collect, 100);
    pacer.streamed(60);
    pacer.streamed(39);
    expect(calls).toEqual([]);
    pacer.streamed(1);
    expect(calls).toEqual([{ type: 'minor' }]);
    // The count starts again after a collection; a chunk larger than the pace collects once.
    pacer.streamed(99);
    expect(calls).toHaveLength(1);
    pacer.streamed(250);
    expect(calls).toHaveLength(2);
    pacer.streamed(100);
    expect(calls).toHaveLength(3);
    expect(pacer.collections).toBe(3);
    expect(pacer.active).toBe(true);
  });

  it('asks for a full collection when a pool of paceBytes or more is let go, not for less', () => {
    const { calls, collect } = recording();
    const pacer = new GcPacer(collect, 100);
    pacer.dropped(99);
    pacer.dropped(0);
    expect(calls).toEqual([]);
    pacer.dropped(100);
    expect(calls).toEqual([{ type: 'major' }]);
    expect(pacer.collections).toBe(1);
  });

  it('asks for a memory-reducing collection when work settles, at most once per reduceEveryMs', () => {
    const { calls, collect } = recording();
    const pacer = new GcPacer(collect, 100, 5000);
    expect(pacer.reduceDueInMs(1000)).toBe(0);
    expect(pacer.settled(1000)).toBe(true);
    expect(calls).toEqual([{ type: 'major', flavor: 'last-resort' }]);
    expect(pacer.reduceDueInMs(1001)).toBe(4999);
    expect(pacer.settled(1001)).toBe(false);
    expect(pacer.settled(5999)).toBe(false);
    expect(calls).toHaveLength(1);
    expect(pacer.settled(6000)).toBe(true);
    expect(calls).toHaveLength(2);
    expect(pacer.collections).toBe(2);
    // With no spacing, every settle collects.
    const every = recording();
    const eager = new GcPacer(every.collect, 100, 0);
    eager.settled(1);
    eager.settled(1);
    expect(every.calls).toHaveLength(2);
  });

  it('does nothing without a collector', () => {
    const pacer = new GcPacer(undefined, 10);
    pacer.streamed(1000);
    pacer.dropped(1000);
    expect(pacer.settled()).toBe(false);
    expect(pacer.active).toBe(false);
    expect(pacer.collections).toBe(0);
  });

  it('refuses a pace that is not a positive number of bytes', () => {
    for (const pace of [0, -1, Number.NaN]) expect(() => new GcPacer(undefined, pace)).toThrow(RangeError);
    for (const every of [-1, Number.NaN]) expect(() => new GcPacer(undefined, 100, every)).toThrow(RangeError);
  });

  it('paces by 8 MiB, over globalThis.gc in this process', () => {
    expect(gcPaceBytes).toBe(8 * 1024 * 1024);
    expect(processGcPacer.paceBytes).toBe(gcPaceBytes);
    expect(processGcPacer.reduceEveryMs).toBe(gcReduceEveryMs);
    expect(processGcPacer.active).toBe(typeof (globalThis as { gc?: unknown }).gc === 'function');
  });
});
