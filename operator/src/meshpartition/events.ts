// Kubernetes Events about MeshPartitions and their pods, so `kubectl describe` shows what the operator did.
import type { Logger } from 'pino';
import { apiVersion, meshPartitionKind, type MeshPartition } from '../api/v1alpha1.ts';
import type { KubeClient } from '../kube/client.ts';

/** Records Events on MeshPartitions and the pods the watchdog acts on. */
export class EventRecorder {
  readonly #client: KubeClient;
  readonly #instance: string;
  readonly #log: Logger;
  readonly #counted: (reason: string) => void;

  constructor(client: KubeClient, instance: string, log: Logger, counted: (reason: string) => void = () => undefined) {
    this.#client = client;
    this.#instance = instance;
    this.#log = log;
    this.#counted = counted;
  }

  /**
   * Records one Event. An Event is advisory: a failure to record it is logged and does not
   * fail the reconcile that caused it.
   */
  async record(partition: MeshPartition, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const { name, namespace, uid, resourceVersion } = partition.metadata;
    await this.recordOn({ apiVersion, kind: meshPartitionKind, name, namespace, uid, resourceVersion }, type, reason, message);
  }

  /** Records one Event about any object (a member pod, for the watchdog). */
  async recordOn(
    involvedObject: { apiVersion: string; kind: string; name: string; namespace: string; uid?: string; resourceVersion?: string },
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): Promise<void> {
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    const { name, namespace } = involvedObject;
    try {
      await this.#client.create(
        { apiVersion: 'v1', resource: 'events', namespace },
        {
          apiVersion: 'v1',
          kind: 'Event',
          metadata: { generateName: `${name}.`, namespace },
          involvedObject,
          reason,
          message,
          type,
          source: { component: 'meshwork-operator' },
          reportingComponent: 'meshwork.io/operator',
          reportingInstance: this.#instance,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      );
      this.#counted(reason);
    } catch (err) {
      this.#log.warn({ err, object: `${involvedObject.kind} ${namespace}/${name}`, reason }, 'Could not record an event');
    }
  }
}
