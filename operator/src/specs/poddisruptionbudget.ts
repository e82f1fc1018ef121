// Voluntary disruptions (drains, upgrades) take at most one member of a partition at a time.
import type { V1PodDisruptionBudget } from '@kubernetes/client-node';
import type { MeshPartition } from '../api/v1alpha1.ts';
import { names, ownedMetadata, selectorLabels } from './common.ts';

/** Builds the PodDisruptionBudget that allows one unavailable member. */
export function buildPodDisruptionBudget(partition: MeshPartition): V1PodDisruptionBudget {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: ownedMetadata(partition, names.podDisruptionBudget(partition)),
    spec: {
      maxUnavailable: 1,
      selector: { matchLabels: selectorLabels(partition) },
    },
  };
}
