// An informer that survives. It lists, then watches from the list's resourceVersion with
// bookmarks; when the server ends a watch (timeoutSeconds) it watches again from the last
// version it saw; on 410 Gone (that version is no longer in etcd's history) it relists and
// reports the objects that changed or vanished meanwhile; on any other failure (API server
// down, connection reset, 5xx, 403) it retries with exponential backoff. A watch that
// silently stops delivering is the classic failure of Node operators, so no error ends it.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { MeshworkError } from '@meshwork/contract';
import { KubeApiError, type KubeClient, type ResourceRef, type WatchEvent } from '../kube/client.ts';
import { backoffDelay } from './workqueue.ts';

export type ObjectEvent = 'add' | 'update' | 'delete';
export type ObjectHandler<T> = (obj: T, event: ObjectEvent) => void;

export interface ResilientInformerOptions<T> {
  client: KubeClient;
  /** The collection to watch (a namespace or all of them). */
  ref: ResourceRef;
  labelSelector?: string;
  log: Logger;
  /** Called after each failure that makes it start over, for metrics. */
  restarted?: () => void;
  /** Called when its resourceVersion expired (410 Gone) and it lists again. */
  relisted?: () => void;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** How long the server keeps one watch open; randomised upwards by up to half, to spread reconnects. */
  watchTimeoutSeconds?: number;
  /** Slims an object before it is cached and handed to handlers (keep only what the reconciler reads). */
  transform?: (obj: T) => T;
}

/** Drops managedFields: the operator never reads them and they are most of an object's size. */
function stripManagedFields<T extends KubernetesObject>(obj: T): T {
  if (obj.metadata) delete obj.metadata.managedFields;
  return obj;
}

function keyOf(obj: KubernetesObject): string {
  return `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
}

/** The watch's resourceVersion is too old (410): the informer lists again. */
class GoneError extends MeshworkError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('resource_version_gone', message, options);
  }
}

/** A list-watch cache of one resource that restarts itself after errors. */
export class ResilientInformer<T extends KubernetesObject> {
  readonly #options: ResilientInformerOptions<T>;
  readonly #handlers: ObjectHandler<T>[] = [];
  readonly #objects = new Map<string, T>();
  #resourceVersion = '';
  #listed = false;
  #abort: AbortController | undefined;
  #loop: Promise<void> | undefined;

  constructor(options: ResilientInformerOptions<T>) {
    this.#options = options;
  }

  /** True once the first list has filled the cache. */
  get synced(): boolean {
    return this.#listed;
  }

  /** Calls `handler` for every add, update and delete. */
  onChange(handler: ObjectHandler<T>): void {
    this.#handlers.push(handler);
  }

  /** Starts listing and watching; resolves after the first list attempt, successful or not. */
  async start(): Promise<void> {
    if (this.#loop) return;
    const abort = new AbortController();
    this.#abort = abort;
    let firstAttempt!: () => void;
    const attempted = new Promise<void>((resolve) => (firstAttempt = resolve));
    this.#loop = this.#run(abort.signal, firstAttempt);
    await attempted;
  }

  /** Stops watching; the cache keeps its content. */
  async stop(): Promise<void> {
    this.#abort?.abort();
    await this.#loop;
    this.#loop = undefined;
  }

  /** The cached object, if any. */
  get(name: string, namespace?: string): T | undefined {
    return this.#objects.get(`${namespace ?? ''}/${name}`);
  }

  /** Cached objects of a namespace, or of all namespaces. */
  list(namespace?: string): readonly T[] {
    const all = [...this.#objects.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata?.namespace === namespace);
  }

  #slim(obj: T): T {
    const stripped = stripManagedFields(obj);
    return this.#options.transform ? this.#options.transform(stripped) : stripped;
  }

  #emit(obj: T, event: ObjectEvent): void {
    for (const handler of this.#handlers) handler(obj, event);
  }

  async #list(): Promise<void> {
    const { client, ref, labelSelector } = this.#options;
    const result = await client.list<T>(ref, labelSelector ? { labelSelector } : {});
    const seen = new Set<string>();
    for (const raw of result.items) {
      const item = this.#slim(raw);
      const key = keyOf(item);
      seen.add(key);
      const before = this.#objects.get(key);
      this.#objects.set(key, item);
      if (!before) this.#emit(item, 'add');
      else if (before.metadata?.resourceVersion !== item.metadata?.resourceVersion) this.#emit(item, 'update');
    }
    // Deleted while we were not watching.
    for (const [key, obj] of this.#objects) {
      if (seen.has(key)) continue;
      this.#objects.delete(key);
      this.#emit(obj, 'delete');
    }
    this.#resourceVersion = result.metadata.resourceVersion;
    this.#listed = true;
  }

  #apply(event: WatchEvent<T>): void {
    if (event.type === 'ERROR') {
      const status = event.object as unknown as { code?: number; message?: string };
      if (status.code === 410) throw new GoneError(status.message ?? 'resourceVersion too old');
      throw new KubeApiError('watch', this.#options.ref.resource, status.code ?? 0, 'WatchError', status.message ?? 'error event');
    }
    if (event.object.metadata?.resourceVersion) this.#resourceVersion = event.object.metadata.resourceVersion;
    if (event.type === 'BOOKMARK') return;
    const obj = this.#slim(event.object);
    const key = keyOf(obj);
    if (event.type === 'DELETED') {
      this.#objects.delete(key);
      this.#emit(obj, 'delete');
      return;
    }
    const known = this.#objects.has(key);
    this.#objects.set(key, obj);
    this.#emit(obj, known ? 'update' : 'add');
  }

  async #run(signal: AbortSignal, firstAttempt: () => void): Promise<void> {
    const { client, ref, labelSelector, log } = this.#options;
    const baseTimeout = this.#options.watchTimeoutSeconds ?? 300;
    let failures = 0;
    while (!signal.aborted) {
      try {
        if (!this.#resourceVersion) {
          try {
            await this.#list();
          } finally {
            firstAttempt();
          }
        }
        const query: Record<string, string> = {
          resourceVersion: this.#resourceVersion,
          allowWatchBookmarks: 'true',
          timeoutSeconds: String(baseTimeout + Math.floor(Math.random() * (baseTimeout / 2))),
          ...(labelSelector ? { labelSelector } : {}),
        };
        await client.watch<T>(
          ref,
          query,
          (event) => {
            this.#apply(event);
            failures = 0;
          },
          signal,
        );
        failures = 0;
      } catch (err) {
        if (signal.aborted) break;
        if (err instanceof GoneError || (err instanceof KubeApiError && err.status === 410)) {
          log.info({ resource: ref.resource }, `Started relisting ${ref.resource}: its resourceVersion expired`);
          this.#resourceVersion = '';
          this.#options.relisted?.();
          continue;
        }
        failures++;
        this.#options.restarted?.();
        const delayMs = backoffDelay(failures, this.#options.baseDelayMs ?? 500, this.#options.maxDelayMs ?? 30_000);
        log.warn({ resource: ref.resource, err, delayMs, failures }, `Informer for ${ref.resource} failed; scheduled a restart`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delayMs);
          signal.addEventListener(
            'abort',
            () => {
              clearTimeout(timer);
              resolve();
            },
            { once: true },
          );
        });
      }
    }
  }
}
