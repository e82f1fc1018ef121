// Wires the MeshPartition reconciler: informers for MeshPartitions and everything they
// own, a work queue keyed by `namespace/name`, and the mapping from an owned object's
// event to its owner's key.
import type { KubernetesObject, V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { appLabels, managedByOperator, partitionLabel } from '@meshwork/contract';
import { apiVersion, meshPartitionKind, meshPartitionPlural, type MeshPartition } from '../api/v1alpha1.ts';
import { ResilientInformer } from '../controller/informer.ts';
import { WorkQueue } from '../controller/workqueue.ts';
import type { KubeClient, ResourceRef } from '../kube/client.ts';
import type { OperatorMetrics } from '../metrics.ts';
import { EventRecorder } from './events.ts';
import { MeshPartitionReconciler } from './reconcile.ts';
import { slimMemberPod } from '../watchdog/signals.ts';
import { Watchdog } from '../watchdog/watchdog.ts';

export interface MeshPartitionControllerOptions {
  client: KubeClient;
  metrics: OperatorMetrics;
  log: Logger;
  /** Only this namespace; all namespaces when empty. */
  watchNamespace: string;
  concurrency: number;
  identity: string;
  defaultImage?: string;
  /** Cluster-wide bound of the watchdog: above this share of unhealthy members it repairs nothing. */
  maxUnhealthyPercent?: number;
}

const controllerName = 'meshpartition';

/** The `namespace/name` key of the MeshPartition that controls `obj`, if any. */
export function ownerKey(obj: KubernetesObject): string | undefined {
  const namespace = obj.metadata?.namespace;
  const owner = obj.metadata?.ownerReferences?.find((o) => o.controller && o.kind === meshPartitionKind && o.apiVersion === apiVersion);
  if (namespace && owner) return `${namespace}/${owner.name}`;
  // Pods are owned by the StatefulSet; the partition label names the MeshPartition.
  const partition = obj.metadata?.labels?.[partitionLabel];
  return namespace && partition ? `${namespace}/${partition}` : undefined;
}

/** Informers, work queue and reconciler of MeshPartitions. */
export class MeshPartitionController {
  readonly queue: WorkQueue;
  readonly reconciler: MeshPartitionReconciler;
  readonly watchdog: Watchdog;
  readonly #informers: ResilientInformer<KubernetesObject>[] = [];

  constructor(options: MeshPartitionControllerOptions) {
    const { client, metrics, log, watchNamespace } = options;
    const namespace = watchNamespace || undefined;
    const managed = `${appLabels.managedBy}=${managedByOperator}`;
    const informer = <T extends KubernetesObject>(
      ref: ResourceRef,
      labelSelector?: string,
      transform?: (obj: T) => T,
    ): ResilientInformer<T> => {
      const made = new ResilientInformer<T>({
        client,
        ref: { ...ref, namespace },
        labelSelector,
        transform,
        log,
        restarted: () => metrics.informerRestarts.inc({ resource: ref.resource }),
      });
      this.#informers.push(made as unknown as ResilientInformer<KubernetesObject>);
      return made;
    };
    const partitions = informer<MeshPartition & KubernetesObject>({ apiVersion, resource: meshPartitionPlural });
    const statefulSets = informer<V1StatefulSet>({ apiVersion: 'apps/v1', resource: 'statefulsets' }, managed);
    const services = informer({ apiVersion: 'v1', resource: 'services' }, managed);
    const configMaps = informer({ apiVersion: 'v1', resource: 'configmaps' }, managed);
    const podDisruptionBudgets = informer({ apiVersion: 'policy/v1', resource: 'poddisruptionbudgets' }, managed);
    const pods = informer<V1Pod>({ apiVersion: 'v1', resource: 'pods' }, managed, slimMemberPod);
    const events = new EventRecorder(client, options.identity, log, (reason) => metrics.events.inc({ reason }));
    this.watchdog = new Watchdog(
      {
        client,
        log,
        metrics,
        events,
        maxUnhealthyPercent: options.maxUnhealthyPercent ?? 50,
        partitionKeys: () => partitions.list().map((p) => `${p.metadata.namespace}/${p.metadata.name}`),
        memberPods: () => pods.list(),
        partition: (key) => {
          const [ns, name] = key.split('/') as [string, string];
          return partitions.get(name, ns);
        },
        enqueue: (key) => this.queue.add(key),
      },
      namespace,
    );
    this.#informers.push(...this.watchdog.informers);

    this.queue = new WorkQueue({
      concurrency: options.concurrency,
      handler: async (key) => {
        const end = metrics.reconcileTime.startTimer({ controller: controllerName });
        try {
          const result = await this.reconciler.reconcile(key);
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
        failed: (key, err, delayMs) =>
          log.warn({ err, meshpartition: key, delayMs }, `Reconcile of MeshPartition ${key} failed; scheduled a retry`),
      },
    });

    partitions.onChange((obj, event) => {
      // A generation not yet observed is work to do; anything else only refreshes status.
      const fresh = event === 'add' || obj.status?.observedGeneration !== obj.metadata.generation;
      this.queue.add(`${obj.metadata.namespace}/${obj.metadata.name}`, fresh ? 'high' : 'low');
    });
    for (const owned of [statefulSets, services, configMaps, podDisruptionBudgets, pods] as ResilientInformer<KubernetesObject>[]) {
      owned.onChange((obj) => {
        const key = ownerKey(obj);
        if (key) this.queue.add(key);
      });
    }

    this.reconciler = new MeshPartitionReconciler({
      client,
      log,
      defaultImage: options.defaultImage,
      events,
      watchdog: this.watchdog,
      caches: {
        partitions: partitions,
        statefulSets,
        services,
        configMaps,
        podDisruptionBudgets,
        pods,
      },
    });
  }

  /** True once every informer has listed. */
  get synced(): boolean {
    return this.#informers.every((i) => i.synced);
  }

  /** Starts the informers (followers run them too, so a new leader starts warm). */
  async startInformers(): Promise<void> {
    await Promise.all(this.#informers.map((i) => i.start()));
  }

  /** Starts reconciling; only the leader calls this. */
  startWorkers(): void {
    this.queue.start();
    this.watchdog.startActing();
  }

  /** Stops reconciling, lets running reconciles finish, and stops the informers. */
  async stop(): Promise<void> {
    this.watchdog.stop();
    await this.queue.shutdown();
    await Promise.all(this.#informers.map((i) => i.stop()));
  }
}
