// An informer that survives: client-node's ListWatch relists by itself on 410 Gone, but
// on any other error (API server down, connection reset, 5xx, 403) it reports the error
// and stops for good. This wrapper restarts it with exponential backoff, resuming from its
// last resourceVersion (or relisting when that has expired), and tells when it has synced.
import { ADD, DELETE, ERROR, UPDATE, makeInformer, type Informer, type KubernetesObject, type ObjectCache } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { KubeApiError, resourcePath, type KubeClient, type ResourceRef } from '../kube/client.ts';
import { backoffDelay } from './workqueue.ts';

export type ObjectHandler<T> = (obj: T, event: 'add' | 'update' | 'delete') => void;

export interface ResilientInformerOptions {
  client: KubeClient;
  /** The collection to watch (a namespace or all of them). */
  ref: ResourceRef;
  labelSelector?: string;
  log: Logger;
  /** Called on each restart, for metrics. */
  restarted?: () => void;
  baseDelayMs?: number;
  maxDelayMs?: number;
}

interface Stripped {
  metadata?: { managedFields?: unknown };
}

/** Drops managedFields: the operator never reads them and they are most of an object's size. */
function stripManagedFields(obj: unknown): void {
  const meta = (obj as Stripped).metadata;
  if (meta) delete meta.managedFields;
}

/** A list-watch cache of one resource that restarts itself after errors. */
export class ResilientInformer<T extends KubernetesObject> {
  readonly #inner: Informer<T> & ObjectCache<T>;
  readonly #options: ResilientInformerOptions;
  readonly #handlers: ObjectHandler<T>[] = [];
  #failures = 0;
  #listed = false;
  #stopped = false;
  #restartTimer: NodeJS.Timeout | undefined;

  constructor(options: ResilientInformerOptions) {
    this.#options = options;
    const { client, ref, labelSelector } = options;
    const path = resourcePath({ ...ref, name: undefined });
    const list = async (): Promise<{ metadata: { resourceVersion: string }; items: T[] }> => {
      const result = await client.list<T>(ref, labelSelector ? { labelSelector } : {});
      for (const item of result.items) stripManagedFields(item);
      this.#listed = true;
      this.#failures = 0;
      return result;
    };
    this.#inner = makeInformer<T>(client.kubeConfig, path, list, labelSelector);
    // Registered first, so the cached object is already stripped when handlers see it.
    this.#inner.on(ADD, stripManagedFields);
    this.#inner.on(UPDATE, stripManagedFields);
    for (const event of [ADD, UPDATE, DELETE] as const) {
      this.#inner.on(event, (obj) => {
        this.#failures = 0;
        for (const handler of this.#handlers) handler(obj, event);
      });
    }
    this.#inner.on(ERROR, (err?: unknown) => this.#scheduleRestart(err));
  }

  /** True once the first list has filled the cache. */
  get synced(): boolean {
    return this.#listed;
  }

  /** Calls `handler` for every add, update and delete. */
  onChange(handler: ObjectHandler<T>): void {
    this.#handlers.push(handler);
  }

  /** Starts listing and watching; resolves after the first list attempt. */
  async start(): Promise<void> {
    this.#stopped = false;
    await this.#inner.start();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#restartTimer);
    await this.#inner.stop();
  }

  /** The cached object, if any. */
  get(name: string, namespace?: string): T | undefined {
    return this.#inner.get(name, namespace);
  }

  /** Cached objects of a namespace, or of all namespaces. */
  list(namespace?: string): readonly T[] {
    return this.#inner.list(namespace);
  }

  #scheduleRestart(err: unknown): void {
    if (this.#stopped) return;
    this.#failures++;
    const delayMs = backoffDelay(this.#failures, this.#options.baseDelayMs ?? 500, this.#options.maxDelayMs ?? 30_000);
    const status = err instanceof KubeApiError ? err.status : (err as { statusCode?: number } | undefined)?.statusCode;
    this.#options.log.warn(
      { resource: this.#options.ref.resource, err, status, delayMs, failures: this.#failures },
      `Informer for ${this.#options.ref.resource} failed; scheduled a restart`,
    );
    clearTimeout(this.#restartTimer);
    this.#restartTimer = setTimeout(() => {
      this.#options.restarted?.();
      this.#inner.start().catch((restartErr: unknown) => this.#scheduleRestart(restartErr));
    }, delayMs);
    this.#restartTimer.unref();
  }
}
