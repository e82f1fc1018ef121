import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { ProbeOutcome } from './prober.ts';
import { DeepProber } from './prober.ts';

const pod = (uid = 'u1', ip: string | null = '127.9.0.2'): V1Pod => ({
  metadata: { name: 'p0-0', namespace: 'mesh', uid },
  spec: { containers: [] },
  status: ip ? { podIP: ip } : {},
});

/** A prober whose probes are settled by the test, one by one. */
function harness(targets: () => V1Pod[]) {
  let now = 0;
  const pending: ((o: ProbeOutcome) => void)[] = [];
  const changed: string[] = [];
  const prober = new DeepProber({
    targets: () => targets().map((p) => ({ pod: p, partitionKey: 'mesh/p0', port: 8080, periodMs: 2000, timeoutMs: 1000 })),
    changed: (key) => changed.push(key),
    probe: () => new Promise<ProbeOutcome>((resolve) => pending.push(resolve)),
    now: () => now,
  });
  const settle = async (outcome: ProbeOutcome): Promise<void> => {
    pending.shift()!(outcome);
    await Promise.resolve();
    await Promise.resolve();
  };
  return { prober, pending, changed, settle, advance: (ms: number) => (now += ms) };
}

describe('DeepProber', () => {
  it('keeps one probe in flight per member and probes once per period', () => {
    const h = harness(() => [pod()]);
    h.advance(5000);
    h.prober.tick();
    h.prober.tick();
    expect(h.pending).toHaveLength(1);
  });

  it('reports failing after two failed probes in a row, and passing after one success', async () => {
    const h = harness(() => [pod()]);
    const step = async (outcome: ProbeOutcome) => {
      h.advance(2000);
      h.prober.tick();
      await h.settle(outcome);
      return h.prober.result(pod());
    };
    expect(h.prober.result(pod())).toBe('unknown');
    expect(await step('ok')).toBe('ok');
    expect(await step('failing')).toBe('ok');
    expect(await step('failing')).toBe('failing');
    expect(await step('ok')).toBe('ok');
    expect(await step('unavailable')).toBe('unavailable');
    expect(h.changed).toEqual(['mesh/p0', 'mesh/p0', 'mesh/p0', 'mesh/p0']);
  });

  it('forgets a member whose pod was replaced, and waits for its IP', async () => {
    let current = pod('u1');
    const h = harness(() => [current]);
    h.advance(2000);
    h.prober.tick();
    await h.settle('ok');
    current = pod('u2', null);
    expect(h.prober.result(current)).toBe('unknown');
    h.advance(2000);
    h.prober.tick();
    expect(h.pending).toHaveLength(0);
  });
});
