// Wires the Mesh reconciler: informers for Meshes and everything they own (MeshPartitions,
// the gateway's Deployment, Service and PodDisruptionBudget), a work queue keyed by
// `namespace/name`, and the mapping from an owned object's event to its Mesh's key.
import type { KubernetesObject, V1Deployment } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { appLabels, managedByOperator } from '@meshwork/contract';
import { apiVersion, meshKind, meshPartitionPlural, meshPlural, type Mesh, type MeshPartition } from '../api/v1alpha1.ts';
import type { ResilientInformer } from '../controller/informer.ts';
import { controllerOwnerKey, enqueueChanges, informerFactory, reconcileQueue } from '../controller/wiring.ts';
import type { WorkQueue } from '../controller/workqueue.ts';
import type { KubeClient } from '../kube/client.ts';
import { EventRecorder } from '../meshpartition/events.ts';
import type { OperatorMetrics } from '../metrics.ts';
import { MeshMoveDriver } from './move-driver.ts';
import { MeshOwnerKeys } from './owner-keys.ts';
import { MeshReconciler } from './reconcile.ts';

export interface MeshControllerOptions {
  client: KubeClient;
  metrics: OperatorMetrics;
  log: Logger;
  /** Only this namespace; all namespaces when empty. */
  watchNamespace: string;
  concurrency: number;
  identity: string;
  defaultImage?: string;
}

const controllerName = 'mesh';

/** The `namespace/name` key of the Mesh that controls `obj`, if any. */
export function meshOwnerKey(obj: KubernetesObject): string | undefined {
  return controllerOwnerKey(obj, meshKind);
}

/** Informers, work queue and reconciler of Meshes. */
export class MeshController {
  readonly queue: WorkQueue;
  readonly reconciler: MeshReconciler;
  readonly #ownerKeys: MeshOwnerKeys;
  readonly #moves: MeshMoveDriver;
  readonly #informers: ResilientInformer<KubernetesObject>[] = [];

  constructor(options: MeshControllerOptions) {
    const { client, metrics, log, watchNamespace } = options;
    const namespace = watchNamespace || undefined;
    const managed = `${appLabels.managedBy}=${managedByOperator}`;
    const informer = informerFactory({ client, metrics, log, namespace, informers: this.#informers });
    const meshes = informer<Mesh & KubernetesObject>({ apiVersion, resource: meshPlural });
    // Every MeshPartition, not only those the operator labelled: one of a layout's names made by hand is a conflict to report.
    const partitions = informer<MeshPartition & KubernetesObject>({ apiVersion, resource: meshPartitionPlural });
    const deployments = informer<V1Deployment>({ apiVersion: 'apps/v1', resource: 'deployments' }, managed);
    const services = informer({ apiVersion: 'v1', resource: 'services' }, managed);
    const podDisruptionBudgets = informer({ apiVersion: 'policy/v1', resource: 'poddisruptionbudgets' }, managed);
    const events = new EventRecorder(client, options.identity, log, (reason) => metrics.events.inc({ reason }));

    this.queue = reconcileQueue({
      controllerName,
      concurrency: options.concurrency,
      metrics,
      reconcile: (key) => this.reconciler.reconcile(key),
      failed: (key, err, delayMs) => log.warn({ err, mesh: key, delayMs }, `Reconcile of Mesh ${key} failed; scheduled a retry`),
    });
    enqueueChanges(
      this.queue,
      meshes,
      [partitions, deployments, services, podDisruptionBudgets] as ResilientInformer<KubernetesObject>[],
      meshOwnerKey,
    );

    this.#ownerKeys = new MeshOwnerKeys({ log, enqueue: (key) => this.queue.add(key) });
    this.#moves = new MeshMoveDriver({ log, enqueue: (key) => this.queue.add(key) });
    this.reconciler = new MeshReconciler({
      client,
      log,
      events,
      ownerKeys: this.#ownerKeys,
      moves: this.#moves,
      enqueue: (key) => this.queue.add(key),
      defaultImage: options.defaultImage,
      coverage: (ns, mesh, covered) => {
        if (covered === undefined) metrics.meshSlotsCovered.remove({ mesh_namespace: ns, mesh });
        else metrics.meshSlotsCovered.set({ mesh_namespace: ns, mesh }, covered);
      },
      rollout: (ns, mesh, state, haltReason) => {
        if (state === undefined) {
          metrics.meshRolloutHalted.remove({ mesh_namespace: ns, mesh });
          return;
        }
        metrics.meshRolloutHalted.set(
          { mesh_namespace: ns, mesh },
          state === 'Halted' || state === 'RollingBack' || state === 'RolledBack' ? 1 : 0,
        );
        if (haltReason) metrics.meshRolloutHalts.inc({ mesh_namespace: ns, mesh, reason: haltReason });
      },
      caches: { meshes, partitions, deployments, services, podDisruptionBudgets },
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
    this.#ownerKeys.start();
    this.queue.start();
  }

  /** Stops reconciling, lets running reconciles finish, and stops the informers. */
  async stop(): Promise<void> {
    await this.queue.shutdown();
    this.#ownerKeys.stop();
    this.#moves.stop();
    await Promise.all(this.#informers.map((i) => i.stop()));
  }
}
