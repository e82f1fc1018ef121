// The watchdog's view of the cluster, cut down to what it reads (so thousands of cached
// pods, nodes, Leases and claims stay small), and the gathering of one member's signals
// from those objects. Pure: the caches are passed in.
import type { KubernetesObject, V1Lease, V1Node, V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import { outOfServiceAnnotation, unsuitableNodeLabelPrefix } from '@meshwork/contract';
import type { MeshPartition } from '../api/v1alpha1.ts';
import { names } from '../specs/common.ts';
import { timestampSlackMs, type DeepCheck, type MemberSignals } from './ladder.ts';
import type { OwnerRecordSighting } from './owner-leases.ts';

/** The taint that tells Kubernetes a node is shut down, so its pods and volumes are released. */
export const outOfServiceTaint = { key: 'node.kubernetes.io/out-of-service', value: 'nodeshutdown', effect: 'NoExecute' } as const;
/** The annotation the scheduler sets on a claim of a WaitForFirstConsumer class: the node its volume lives on. */
export const selectedNodeAnnotation = 'volume.kubernetes.io/selected-node';
/** Longest termination message kept in the cache; the watchdog reads only its start. */
const messageLimit = 256;

function ms(value: Date | string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const t = value instanceof Date ? value.getTime() : Date.parse(value);
  return Number.isNaN(t) ? undefined : t;
}

/** A member pod cut down to what membership and the watchdog read. */
export function slimMemberPod(pod: V1Pod): V1Pod {
  const conditions = (pod.status?.conditions ?? [])
    .filter((c) => c.type === 'Ready' || c.type === 'PodScheduled')
    .map((c) => ({
      type: c.type,
      status: c.status,
      ...(c.reason ? { reason: c.reason } : {}),
      // Why the scheduler found no node: the watchdog reports it, and recreates volumes only when they are the cause.
      ...(c.type === 'PodScheduled' && c.status === 'False' && c.message ? { message: c.message.slice(0, messageLimit * 4) } : {}),
    }));
  const container = pod.status?.containerStatuses?.[0];
  const terminated = container?.lastState?.terminated;
  return {
    metadata: {
      name: pod.metadata?.name,
      namespace: pod.metadata?.namespace,
      uid: pod.metadata?.uid,
      resourceVersion: pod.metadata?.resourceVersion,
      labels: pod.metadata?.labels,
      creationTimestamp: pod.metadata?.creationTimestamp,
      ...(pod.metadata?.deletionTimestamp ? { deletionTimestamp: pod.metadata.deletionTimestamp } : {}),
    },
    spec: { containers: [], ...(pod.spec?.nodeName ? { nodeName: pod.spec.nodeName } : {}) },
    status: {
      phase: pod.status?.phase,
      ...(pod.status?.podIP ? { podIP: pod.status.podIP } : {}),
      ...(conditions.length > 0 ? { conditions } : {}),
      ...(container
        ? {
            containerStatuses: [
              {
                name: container.name,
                image: '',
                imageID: '',
                ready: container.ready,
                restartCount: container.restartCount,
                state: container.state?.waiting?.reason ? { waiting: { reason: container.state.waiting.reason } } : {},
                lastState: terminated
                  ? {
                      terminated: {
                        exitCode: terminated.exitCode,
                        ...(terminated.message ? { message: terminated.message.slice(0, messageLimit) } : {}),
                        ...(terminated.finishedAt ? { finishedAt: terminated.finishedAt } : {}),
                      },
                    }
                  : {},
              },
            ],
          }
        : {}),
    },
  };
}

/** A node cut down to its Ready condition, the watchdog's labels, annotation and taints. */
export function slimNode(node: V1Node): V1Node {
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  const labels = Object.fromEntries(Object.entries(node.metadata?.labels ?? {}).filter(([k]) => k.startsWith(unsuitableNodeLabelPrefix)));
  const annotation = node.metadata?.annotations?.[outOfServiceAnnotation];
  return {
    metadata: {
      name: node.metadata?.name,
      uid: node.metadata?.uid,
      resourceVersion: node.metadata?.resourceVersion,
      labels,
      ...(annotation ? { annotations: { [outOfServiceAnnotation]: annotation } } : {}),
    },
    spec: node.spec?.taints?.length ? { taints: node.spec.taints } : {},
    status: ready ? { conditions: [{ type: 'Ready', status: ready.status, lastTransitionTime: ready.lastTransitionTime }] } : {},
  };
}

/** A node Lease cut down to its renewal. */
export function slimLease(lease: V1Lease): V1Lease {
  return {
    metadata: { name: lease.metadata?.name, namespace: lease.metadata?.namespace, resourceVersion: lease.metadata?.resourceVersion },
    spec: { renewTime: lease.spec?.renewTime, leaseDurationSeconds: lease.spec?.leaseDurationSeconds },
  };
}

/** A claim cut down to where its volume lives. */
export function slimClaim(pvc: V1PersistentVolumeClaim): V1PersistentVolumeClaim {
  const selected = pvc.metadata?.annotations?.[selectedNodeAnnotation];
  return {
    metadata: {
      name: pvc.metadata?.name,
      namespace: pvc.metadata?.namespace,
      uid: pvc.metadata?.uid,
      resourceVersion: pvc.metadata?.resourceVersion,
      ...(selected ? { annotations: { [selectedNodeAnnotation]: selected } } : {}),
      ...(pvc.metadata?.deletionTimestamp ? { deletionTimestamp: pvc.metadata.deletionTimestamp } : {}),
    },
    spec: pvc.spec?.volumeName ? { volumeName: pvc.spec.volumeName } : {},
  };
}

/** Whether the node's Ready condition is True. */
export function nodeReady(node: V1Node | undefined): boolean {
  return node?.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
}

/** The names of a member's claims: `<template>-<pod>`, one per volume. */
export function memberClaimNames(partition: MeshPartition, pod: string): string[] {
  return Array.from({ length: partition.spec.storage.volumes }, (_, i) => `${names.volume(i)}-${pod}`);
}

/** Read access to the caches the watchdog gathers from. */
export interface SignalSources {
  node(name: string): V1Node | undefined;
  lease(name: string): V1Lease | undefined;
  claim(namespace: string, name: string): V1PersistentVolumeClaim | undefined;
  deepCheck(pod: V1Pod): DeepCheck;
  /** What was last seen of the replica's owner record in the slot map; undefined when unknown. */
  ownerRecord?(replica: string): OwnerRecordSighting | undefined;
}

/**
 * The pod's owner lease, from the last sighting of its replica's record: only a record this
 * pod's process wrote speaks for it (the same address, written after the pod was created).
 */
export function ownerLeaseOf(pod: V1Pod, sighting: OwnerRecordSighting | undefined, podCreated: number): MemberSignals['ownerLease'] {
  if (!sighting) return undefined;
  if (!sighting.present && Number.isNaN(sighting.registeredAt)) {
    // No record since the operator first read the slot map (it started after the record went,
    // or the process never registered): a pod older than that read holds no lease now.
    const since = sighting.goneAt ?? Infinity;
    return since > podCreated + timestampSlackMs ? { live: false, registeredAt: NaN, goneAt: since } : undefined;
  }
  const ip = pod.status?.podIP;
  let host: string | undefined;
  try {
    host = new URL(sighting.url).hostname;
  } catch {
    host = undefined;
  }
  if (ip && host && host !== ip && host !== `[${ip}]`) return undefined;
  if (sighting.registeredAt < podCreated - timestampSlackMs) return undefined;
  if (sighting.present) return { live: true, registeredAt: sighting.registeredAt };
  return { live: false, registeredAt: sighting.registeredAt, goneAt: sighting.goneAt ?? 0 };
}

/** Whether `node` is lost: silent past `nodeLostMs` and not Ready. */
export function nodeLost(node: V1Node | undefined, lease: V1Lease | undefined, now: number, nodeLostMs: number): boolean {
  if (!node || nodeReady(node)) return false;
  const renewed = ms(lease?.spec?.renewTime) ?? ms(node.status?.conditions?.[0]?.lastTransitionTime);
  return renewed !== undefined && now - renewed >= nodeLostMs;
}

/** Gathers one member pod's signals. */
export function memberSignals(
  partition: MeshPartition,
  pod: V1Pod,
  sources: SignalSources,
  unsuitableLabel: string,
  now: number,
  nodeLostMs: number,
): MemberSignals {
  const container = pod.status?.containerStatuses?.[0];
  const terminated = container?.lastState?.terminated;
  const nodeName = pod.spec?.nodeName;
  const signals: MemberSignals = {
    podCreated: ms(pod.metadata?.creationTimestamp) ?? now,
    scheduled: Boolean(nodeName),
    ready: pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
    terminating: Boolean(pod.metadata?.deletionTimestamp),
    deepCheck: sources.deepCheck(pod),
  };
  if (terminated) {
    signals.lastTermination = {
      exitCode: terminated.exitCode,
      ...(terminated.message ? { message: terminated.message } : {}),
      finishedAt: ms(terminated.finishedAt) ?? now,
    };
  }
  if (container?.state?.waiting?.reason) signals.waitingReason = container.state.waiting.reason;
  const ownerLease = ownerLeaseOf(pod, sources.ownerRecord?.(pod.metadata?.name ?? ''), signals.podCreated);
  if (ownerLease) signals.ownerLease = ownerLease;
  const unschedulable = pod.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
  if (!nodeName && unschedulable?.message) signals.schedulerMessage = unschedulable.message;
  if (nodeName) {
    const node = sources.node(nodeName);
    if (node) {
      const lease = sources.lease(nodeName);
      const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
      const renewed = ms(lease?.spec?.renewTime);
      signals.node = {
        ready: ready?.status === 'True',
        ...(renewed !== undefined ? { leaseRenewed: renewed } : {}),
        ...(lease?.spec?.leaseDurationSeconds ? { leaseDurationMs: lease.spec.leaseDurationSeconds * 1000 } : {}),
        ...(ready?.status !== 'True' && ready?.lastTransitionTime ? { notReadySince: ms(ready.lastTransitionTime)! } : {}),
      };
    }
  } else if (!pod.metadata?.deletionTimestamp) {
    // An unscheduled pod whose volume lives on a node it cannot run on will never start.
    for (const claimName of memberClaimNames(partition, pod.metadata?.name ?? '')) {
      const claim = sources.claim(partition.metadata.namespace, claimName);
      const home = claim?.metadata?.annotations?.[selectedNodeAnnotation];
      if (!home || claim?.metadata?.deletionTimestamp) continue;
      const node = sources.node(home);
      if (!node || nodeLost(node, sources.lease(home), now, nodeLostMs)) {
        signals.pinnedTo = { node: home, why: 'lost' };
        break;
      }
      if (node.metadata?.labels?.[unsuitableLabel] !== undefined) {
        signals.pinnedTo = { node: home, why: 'unsuitable' };
        break;
      }
    }
  }
  return signals;
}

/** `namespace/name` of any object. */
export function objectKey(obj: KubernetesObject): string {
  return `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
}
