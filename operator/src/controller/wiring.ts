// The wiring every reconciler of the operator shares: informers that count their restarts,
// a work queue whose handler records reconcile metrics, and the mapping of an object's
// events to the key of the resource to reconcile. The Mesh and MeshPartition controllers
// differ only in which informers they open and which reconciler the queue calls.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { apiVersion } from '../api/v1alpha1.ts';
import type { KubeClient, ResourceRef } from '../kube/client.ts';
import type { OperatorMetrics } from '../metrics.ts';
import { ResilientInformer } from './informer.ts';
import { WorkQueue, type HandlerResult } from './workqueue.ts';

/** Opens one informer of `ref` (in the watched namespace) and remembers it for start, stop and sync. */
export type InformerFactory = <T extends KubernetesObject>(
  ref: ResourceRef,
  labelSelector?: string,
  transform?: (obj: T) => T,
) => ResilientInformer<T>;

/** An informer factory whose informers count restarts in `metrics` and are pushed to `informers`. */
export function informerFactory(options: {
  client: KubeClient;
  metrics: OperatorMetrics;
  log: Logger;
  /** Only this namespace; all namespaces when undefined. */
  namespace: string | undefined;
  informers: ResilientInformer<KubernetesObject>[];
}): InformerFactory {
  const { client, metrics, log, namespace, informers } = options;
  return <T extends KubernetesObject>(ref: ResourceRef, labelSelector?: string, transform?: (obj: T) => T) => {
    const made = new ResilientInformer<T>({
      client,
      ref: { ...ref, namespace },
      labelSelector,
      transform,
      log,
      restarted: () => metrics.informerRestarts.inc({ resource: ref.resource }),
    });
    informers.push(made as unknown as ResilientInformer<KubernetesObject>);
    return made;
  };
}

/** A work queue that runs `reconcile` per key and records the controller's reconcile and queue metrics. */
export function reconcileQueue(options: {
  controllerName: string;
  concurrency: number;
  metrics: OperatorMetrics;
  reconcile: (key: string) => Promise<HandlerResult>;
  /** Reports a failed reconcile; the queue retries the key after `delayMs`. */
  failed: (key: string, err: unknown, delayMs: number) => void;
}): WorkQueue {
  const { controllerName, metrics, reconcile } = options;
  return new WorkQueue({
    concurrency: options.concurrency,
    handler: async (key) => {
      const end = metrics.reconcileTime.startTimer({ controller: controllerName });
      try {
        const result = await reconcile(key);
        metrics.reconcileTotal.inc({ controller: controllerName, result: result.requeueAfterMs === undefined ? 'success' : 'requeue' });
        return result;
      } catch (err) {
        metrics.reconcileTotal.inc({ controller: controllerName, result: 'error' });
        metrics.reconcileErrors.inc({ controller: controllerName });
        throw err;
      } finally {
        end();
      }
    },
    hooks: {
      depth: (depth) => metrics.workqueueDepth.set({ name: controllerName }, depth),
      added: () => metrics.workqueueAdds.inc({ name: controllerName }),
      waited: (seconds) => metrics.workqueueQueueDuration.observe({ name: controllerName }, seconds),
      retried: () => metrics.workqueueRetries.inc({ name: controllerName }),
      failed: options.failed,
    },
  });
}

/** A reconciled resource as its informer reports it: its generation and the one its status observed. */
interface Generational extends KubernetesObject {
  metadata: { namespace?: string; name?: string; generation?: number };
  status?: { observedGeneration?: number };
}

/**
 * Queues a resource's own changes (high priority when its generation is not yet observed) and
 * the changes of the objects it owns under the key `ownerKey` finds for them.
 */
export function enqueueChanges<T extends Generational>(
  queue: WorkQueue,
  primary: ResilientInformer<T>,
  owned: ResilientInformer<KubernetesObject>[],
  ownerKey: (obj: KubernetesObject) => string | undefined,
): void {
  primary.onChange((obj, event) => {
    // A generation not yet observed is work to do; anything else only refreshes status.
    const fresh = event === 'add' || obj.status?.observedGeneration !== obj.metadata.generation;
    queue.add(`${obj.metadata.namespace}/${obj.metadata.name}`, fresh ? 'high' : 'low');
  });
  for (const informer of owned) {
    informer.onChange((obj) => {
      const key = ownerKey(obj);
      if (key) queue.add(key);
    });
  }
}

/** The `namespace/name` key of the Meshwork resource of `kind` that controls `obj`, if any. */
export function controllerOwnerKey(obj: KubernetesObject, kind: string): string | undefined {
  const namespace = obj.metadata?.namespace;
  const owner = obj.metadata?.ownerReferences?.find((o) => o.controller && o.kind === kind && o.apiVersion === apiVersion);
  return namespace && owner ? `${namespace}/${owner.name}` : undefined;
}
