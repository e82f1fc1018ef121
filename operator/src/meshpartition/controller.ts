// Wires the MeshPartition reconciler: informers for MeshPartitions and everything they
// own, a work queue keyed by `namespace/name`, and the mapping from an owned object's
// event to its owner's key.
import type { KubernetesObject, V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { appLabels, managedByOperator, partitionLabel } from '@meshwork/contract';
import { apiVersion, meshPartitionKind, meshPartitionPlural, type MeshPartition } from '../api/v1alpha1.ts';
import type { ResilientInformer } from '../controller/informer.ts';
import { controllerOwnerKey, enqueueChanges, informerFactory, reconcileQueue } from '../controller/wiring.ts';
import type { WorkQueue } from '../controller/workqueue.ts';
import type { KubeClient } from '../kube/client.ts';
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
  const owned = controllerOwnerKey(obj, meshPartitionKind);
  if (owned) return owned;
  // Pods are owned by the StatefulSet; the partition label names the MeshPartition.
  const namespace = obj.metadata?.namespace;
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
    const informer = informerFactory({ client, metrics, log, namespace, informers: this.#informers });
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

    this.queue = reconcileQueue({
      controllerName,
      concurrency: options.concurrency,
      metrics,
      reconcile: (key) => this.reconciler.reconcile(key),
      failed: (key, err, delayMs) =>
        log.warn({ err, meshpartition: key, delayMs }, `Reconcile of MeshPartition ${key} failed; scheduled a retry`),
    });
    enqueueChanges(
      this.queue,
      partitions,
      [statefulSets, services, configMaps, podDisruptionBudgets, pods] as ResilientInformer<KubernetesObject>[],
      ownerKey,
    );

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
