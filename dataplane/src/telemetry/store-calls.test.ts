import { describe, expect, it } from 'vitest';
import { DataplaneMetrics } from './metrics.ts';
import { instrumentAsyncMethods, storeCallRecorder } from './store-calls.ts';
import { noTracing } from './tracing.ts';

/** A store-like class with private state, async and sync methods. */
class Store {
  readonly #prefix: string;
  calls = 0;

  constructor(prefix: string) {
    this.#prefix = prefix;
  }

  async read(key: string): Promise<string> {
    this.calls++;
    return Promise.resolve(`${this.#prefix}${key}`);
  }

  async fail(): Promise<void> {
    return Promise.reject(new Error('unavailable'));
  }

  async cached(): Promise<string> {
    return this.read('cached');
  }

  name(): string {
    return this.#prefix;
  }
}

async function countOf(metrics: DataplaneMetrics, labels: Record<string, string>): Promise<number> {
  const metric = await metrics.storeOperationDuration.get();
  const sample = metric.values.find(
    (v) =>
      v.metricName === 'meshwork_store_operation_duration_seconds_count' &&
      Object.entries(labels).every(([k, l]) => (v.labels as Record<string, unknown>)[k] === l),
  );
  return sample?.value ?? 0;
}

describe('instrumentAsyncMethods', () => {
  it('times every async method by name and outcome, keeping private state and sync methods', async () => {
    const metrics = new DataplaneMetrics('test');
    const store = instrumentAsyncMethods(new Store('p/'), 'etcd', storeCallRecorder(metrics, noTracing), {
      prefix: 'kv.',
      skip: ['cached'],
    });
    expect(await store.read('a')).toBe('p/a');
    await expect(store.fail()).rejects.toThrow('unavailable');
    expect(await store.cached()).toBe('p/cached');
    expect(store.name()).toBe('p/');
    expect(store.calls).toBe(2);
    expect(await countOf(metrics, { store: 'etcd', operation: 'kv.read', outcome: 'ok' })).toBe(2);
    expect(await countOf(metrics, { store: 'etcd', operation: 'kv.fail', outcome: 'error' })).toBe(1);
    expect(await countOf(metrics, { operation: 'kv.cached' })).toBe(0);
    expect(await countOf(metrics, { operation: 'kv.name' })).toBe(0);
  });

  it('counts an answer the caller classifies as failed as an error', async () => {
    const metrics = new DataplaneMetrics('test');
    const call = storeCallRecorder(metrics, noTracing);
    expect(
      await call(
        's3',
        'HeadObject',
        () => Promise.resolve(503),
        (status) => status >= 500,
      ),
    ).toBe(503);
    expect(await countOf(metrics, { store: 's3', operation: 'HeadObject', outcome: 'error' })).toBe(1);
  });
});
