// Store operations as telemetry sees them: each etcd or S3 call is timed into
// meshwork_store_operation_duration_seconds and, inside a traced request, is a child span.
import type { DataplaneMetrics, StoreName, StoreOutcome } from './metrics.ts';
import type { SpanAttributes, Tracing } from './tracing.ts';

/**
 * Runs one store operation, timed and traced. `failed` classifies an answer that resolved but
 * is a failure all the same (an S3 5xx).
 */
export type StoreCall = <T>(store: StoreName, operation: string, run: () => Promise<T>, failed?: (result: T) => boolean) => Promise<T>;

const storeAttributes: Record<StoreName, (operation: string) => SpanAttributes> = {
  etcd: (operation) => ({ 'db.system.name': 'etcd', 'db.operation.name': operation }),
  s3: (operation) => ({ 'rpc.system': 'aws-api', 'rpc.service': 'S3', 'rpc.method': operation }),
};

/** Builds the StoreCall of a process from its metrics and tracing. */
export function storeCallRecorder(metrics: DataplaneMetrics, tracing: Tracing): StoreCall {
  return async <T>(store: StoreName, operation: string, run: () => Promise<T>, failed?: (result: T) => boolean): Promise<T> => {
    const started = performance.now();
    let outcome: StoreOutcome = 'error';
    try {
      const result = await tracing.inSpan(`${store} ${operation}`, storeAttributes[store](operation), run);
      if (failed === undefined || !failed(result)) outcome = 'ok';
      return result;
    } finally {
      metrics.observeStoreOperation(store, operation, outcome, (performance.now() - started) / 1000);
    }
  };
}

/**
 * Makes every async method of `target` (those declared `async` on its class) a StoreCall named
 * `prefix + method`, except those listed in `skip`. The instance keeps its type; its private
 * state is untouched because the original methods still run with `this` = target.
 */
export function instrumentAsyncMethods<T extends object>(
  target: T,
  store: StoreName,
  call: StoreCall,
  options: { prefix?: string; skip?: readonly string[] } = {},
): T {
  const prototype = Object.getPrototypeOf(target) as Record<string, unknown>;
  for (const name of Object.getOwnPropertyNames(prototype)) {
    const original = prototype[name];
    if (typeof original !== 'function' || original.constructor.name !== 'AsyncFunction' || options.skip?.includes(name)) continue;
    const method = original as (...args: unknown[]) => Promise<unknown>;
    const operation = `${options.prefix ?? ''}${name}`;
    Object.defineProperty(target, name, {
      value: (...args: unknown[]) => call(store, operation, () => method.apply(target, args)),
      configurable: true,
      writable: true,
    });
  }
  return target;
}
