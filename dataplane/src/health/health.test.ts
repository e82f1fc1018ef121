import { describe, expect, it } from 'vitest';
import { EventLoopMonitor } from './event-loop.ts';
import { ProcessHealth, type CheckResult } from './health.ts';
import { StoreReachability } from './store-reachability.ts';
import { VolumeChecks, type CheckableVolume } from './volume-checks.ts';
import { VolumeFaultError } from './volumes.ts';

/** A volume whose checks the test settles by hand, counting how many were started. */
class ControlledVolume implements CheckableVolume {
  readonly path: string;
  readonly identity = { id: 'vol-id', createdAt: '2026-01-01T00:00:00.000Z', canarySha256: '0'.repeat(64) };
  started = 0;
  #settle: ((err?: Error) => void) | undefined;

  constructor(path: string) {
    this.path = path;
  }

  check(): Promise<void> {
    this.started++;
    return new Promise((resolve, reject) => {
      this.#settle = (err) => (err ? reject(err) : resolve());
    });
  }

  pass(): void {
    this.#settle?.();
  }

  fail(reason: string): void {
    this.#settle?.(new VolumeFaultError(this.path, reason));
  }
}

function busyWait(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // Holds the event loop, as a synchronous hot spot in a handler would.
  }
}

describe('VolumeChecks', () => {
  it('runs one check per volume however many callers ask at once', async () => {
    const volume = new ControlledVolume('/data-0');
    const checks = new VolumeChecks([volume], { hangLimitMs: 60_000 });
    const asked = [checks.checkAll(5000), checks.checkAll(5000), checks.checkAll(5000)];
    volume.pass();
    const results = await Promise.all(asked);
    expect(volume.started).toBe(1);
    expect(results.map((r) => r[0]!.ok)).toEqual([true, true, true]);
  });

  it('reports a failed check as a fault with its reason', async () => {
    const volume = new ControlledVolume('/data-0');
    const checks = new VolumeChecks([volume], { hangLimitMs: 60_000 });
    const asked = checks.checkAll(5000);
    volume.fail('writing the probe failed: EROFS');
    const [result] = await asked;
    expect(result).toMatchObject({ ok: false, error: 'writing the probe failed: EROFS' });
    expect(result!.fault?.message).toBe('volume fault: /data-0: writing the probe failed: EROFS');
  });

  it('calls a slow check failing but not faulty, and a hung one faulty', async () => {
    const volume = new ControlledVolume('/data-0');
    const [slow] = await new VolumeChecks([volume], { hangLimitMs: 60_000 }).checkAll(20);
    expect(slow).toMatchObject({ ok: false, error: 'no answer within 20 ms' });
    expect(slow!.fault).toBeUndefined();
    const [hung] = await new VolumeChecks([volume], { hangLimitMs: 0 }).checkAll(20);
    expect(hung!.fault?.reason).toMatch(/^I\/O has not completed for \d+ s$/);
  });
});

describe('ProcessHealth', () => {
  function build(options: { etcd?: () => Promise<void>; volume?: ControlledVolume; role?: CheckResult[] } = {}) {
    let etcdTrips = 0;
    const stores = new StoreReachability(
      [
        {
          name: 'etcd',
          roundTrip: () => {
            etcdTrips++;
            return options.etcd?.() ?? Promise.resolve();
          },
        },
        { name: 's3', roundTrip: () => Promise.resolve() },
      ],
      { intervalMs: 60_000, timeoutMs: 1000, staleAfterMs: 60_000 },
    );
    const volume = options.volume ?? new ControlledVolume('/data-0');
    const health = new ProcessHealth({
      eventLoop: new EventLoopMonitor({ limitMs: 1000 }),
      stores,
      volumes: new VolumeChecks([volume], { hangLimitMs: 60_000 }),
      roleReadiness: () => options.role ?? [{ name: 'slots', ok: true }],
    });
    return { health, stores, volume, etcdTrips: () => etcdTrips };
  }

  it('shares one deep check among concurrent callers and caches it briefly', async () => {
    const { health, volume, etcdTrips } = build();
    const first = health.deep();
    const second = health.deep();
    volume.pass();
    const [a, b] = await Promise.all([first, second]);
    expect(a).toBe(b);
    expect(await health.deep()).toBe(a);
    expect(etcdTrips()).toBe(1);
    expect(volume.started).toBe(1);
    expect(a.ok).toBe(true);
    expect(a.checks.map((c) => c.name)).toEqual(['volume:/data-0', 'etcd', 's3']);
    expect(a.checks[0]).toMatchObject({ volumeId: 'vol-id', volumeCreatedAt: '2026-01-01T00:00:00.000Z' });
  });

  it('fails a deep check on a store error without calling it a volume fault', async () => {
    const { health, volume } = build({ etcd: () => Promise.reject(new Error('connection refused')) });
    const report = health.deep();
    volume.pass();
    const { ok, checks, faults } = await report;
    expect(ok).toBe(false);
    expect(checks.find((c) => c.name === 'etcd')).toMatchObject({ ok: false, error: 'connection refused' });
    expect(faults).toEqual([]);
  });

  it('carries a volume fault out of the deep check', async () => {
    const { health, volume } = build();
    const report = health.deep();
    volume.fail('checksum mismatch');
    const { ok, faults } = await report;
    expect(ok).toBe(false);
    expect(faults.map((f) => f.message)).toEqual(['volume fault: /data-0: checksum mismatch']);
  });

  it.each([
    ['stores never reached', (h: ReturnType<typeof build>) => void h, ['etcd', 's3']],
    ['draining', (h: ReturnType<typeof build>) => (h.stores.markAllReachable(), h.health.startDraining()), ['draining']],
    ['all well', (h: ReturnType<typeof build>) => h.stores.markAllReachable(), []],
  ])('is not ready when %s', (_what, arrange, failing) => {
    const built = build();
    arrange(built);
    const report = built.health.readiness();
    expect(report.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(failing);
    expect(report.ok).toBe(failing.length === 0);
  });

  it('is not ready when the role says so', () => {
    const built = build({ role: [{ name: 'slots', ok: false, error: 'the slot lease was lost' }] });
    built.stores.markAllReachable();
    const report = built.health.readiness();
    expect(report.ok).toBe(false);
    expect(report.checks).toContainEqual({ name: 'slots', ok: false, error: 'the slot lease was lost' });
  });
});

describe('EventLoopMonitor', () => {
  it('fails after the event loop was held longer than the limit', () => {
    const monitor = new EventLoopMonitor({ limitMs: 100, tickMs: 20 });
    monitor.start();
    try {
      expect(monitor.status().ok).toBe(true);
      busyWait(200);
      const status = monitor.status();
      expect(status.ok).toBe(false);
      expect(status.maxDelayMs).toBeGreaterThan(100);
      expect(status.limitMs).toBe(100);
    } finally {
      monitor.stop();
    }
  });
});
