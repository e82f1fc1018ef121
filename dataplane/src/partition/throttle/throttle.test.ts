import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { ThrottleConfig } from '../../config.ts';
import { ApiError } from '@meshwork/contract';
import { isExemptPath, isLongPollRequest } from './gate.ts';
import { Throttle } from './throttle.ts';

const config: ThrottleConfig = {
  userRequestsPerSecond: 10,
  userBurst: 20,
  deviceRequestsPerSecond: 5,
  deviceBurst: 8,
  userBytesPerSecond: 1 << 20,
  deviceBytesPerSecond: 1 << 20,
  deviceLongPolls: 2,
  maxEntryBytes: 1 << 30,
  eventLoopLagMs: 100,
  concurrency: { min: 4, max: 64 },
};

async function throttledCount(registry: Registry, reason: string): Promise<number> {
  const metric = await registry.getSingleMetric('meshwork_throttled_requests_total')!.get();
  return metric.values.find((v) => v.labels.reason === reason)?.value ?? Number.NaN;
}

describe('Throttle', () => {
  it('registers its metrics in the registry it is given, every reason at zero', async () => {
    const registry = new Registry();
    new Throttle(config, { registry, now: () => 0 });
    const text = await registry.metrics();
    for (const reason of [
      'user_rate',
      'device_rate',
      'user_bytes',
      'device_bytes',
      'long_polls',
      'entry_size',
      'concurrency',
      'event_loop_lag',
    ]) {
      expect(text).toContain(`meshwork_throttled_requests_total{reason="${reason}"} 0`);
    }
    expect(text).toContain('meshwork_concurrency_limit 32');
    expect(text).toContain('meshwork_concurrency_inflight 0');
  });

  it('reports the limit in force', async () => {
    const registry = new Registry();
    const throttle = new Throttle({ ...config, concurrency: { min: 2, max: 6 } }, { registry, now: () => 0 });
    throttle.concurrency.tryAcquire(0);
    expect(await registry.metrics()).toMatch(/meshwork_concurrency_limit 6\n[\s\S]*meshwork_concurrency_inflight 1\n/);
  });

  it('bounds long polls per device with 429 too_many_long_polls and Retry-After, and counts them', async () => {
    const registry = new Registry();
    const throttle = new Throttle(config, { registry });
    const releases = [throttle.acquireLongPoll('d1'), throttle.acquireLongPoll('d1')];
    let refused: unknown;
    try {
      throttle.acquireLongPoll('d1');
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(ApiError);
    expect(refused).toMatchObject({
      status: 429,
      code: 'too_many_long_polls',
      headers: { 'Retry-After': '1' },
      details: { reason: 'long_polls' },
    });
    expect(await throttledCount(registry, 'long_polls')).toBe(1);
    expect(() => throttle.acquireLongPoll('d2')).not.toThrow();
    releases[0]!();
    expect(() => throttle.acquireLongPoll('d1')).not.toThrow();
  });

  it('offers the long-poll bound as an acquire/release-by-client hook', () => {
    const throttle = new Throttle(config, { registry: new Registry() });
    const hook = throttle.longPollAdmission;
    hook.acquire('d1');
    hook.acquire('d1');
    expect(() => hook.acquire('d1')).toThrow(expect.objectContaining({ status: 429, code: 'too_many_long_polls' }));
    expect(throttle.longPolls.openFor('d1')).toBe(2);
    hook.release('d1');
    expect(throttle.longPolls.openFor('d1')).toBe(1);
    hook.acquire('d1');
    hook.release('d1');
    hook.release('d1');
    hook.release('d1');
    expect(throttle.longPolls.openFor('d1')).toBe(0);
    expect(throttle.longPolls.devices).toBe(0);
  });

  it.each([
    { bytes: 0, refused: false },
    { bytes: 1 << 30, refused: false },
    { bytes: (1 << 30) + 1, refused: true },
  ])('refuses an entry of $bytes bytes: $refused', async ({ bytes, refused }) => {
    const registry = new Registry();
    const throttle = new Throttle(config, { registry });
    if (!refused) {
      expect(() => throttle.checkEntrySize(bytes)).not.toThrow();
      return;
    }
    expect(() => throttle.checkEntrySize(bytes)).toThrow(
      expect.objectContaining({ status: 413, code: 'entry_too_large', message: 'the entry is 1 GiB; an entry may be at most 1 GiB' }),
    );
    expect(await throttledCount(registry, 'entry_size')).toBe(1);
  });

  it('summarises refusals in one log line, and stays quiet when there were none', () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    });
    const throttle = new Throttle(config, { registry: new Registry(), logger: pino(sink) });
    throttle.summarise();
    for (let i = 0; i < 3; i++) throttle.count('concurrency');
    throttle.count('user_rate');
    throttle.summarise();
    throttle.summarise();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 40,
      msg: 'Throttled requests',
      refused: { concurrency: 3, user_rate: 1 },
      concurrencyLimit: 32,
      inflight: 0,
    });
  });
});

describe('which requests the throttle treats specially', () => {
  it.each([
    ['/livez', true],
    ['/readyz', true],
    ['/healthz/deep', true],
    ['/metrics', true],
    ['/Metrics/', true],
    ['/v1/slots', false],
    ['/v1/me', false],
    ['/livez/x', false],
  ])('%s is exempt: %s', (path, exempt) => {
    expect(isExemptPath(path)).toBe(exempt);
  });

  it.each([
    ['GET', '/v1/notifications?wait=30', true],
    ['GET', '/v1/objects/o1/changes?cursor=5&wait=25', true],
    ['GET', '/v1/objects/o1/changes?cursor=5&wait=0', false],
    ['GET', '/v1/objects/o1/changes?cursor=5', false],
    ['GET', '/v1/objects/o1/changes', false],
    ['GET', '/v1/me?wait=30', false],
    ['POST', '/v1/notifications?wait=30', false],
    ['GET', '/v1/objects/o1/entries?wait=30', false],
  ])('%s %s is a long poll: %s', (method, url, longPoll) => {
    expect(isLongPollRequest(method, url)).toBe(longPoll);
  });
});
