// The partition's two Services: a headless one that gives each member a stable DNS name
// (peers find each other before they are ready), and a client one for ready members.
import type { V1Service } from '@kubernetes/client-node';
import type { MeshPartition } from '../api/v1alpha1.ts';
import { httpPort, names, ownedMetadata, selectorLabels } from './common.ts';

const ports = [{ name: 'http', port: httpPort, targetPort: 'http', protocol: 'TCP' }];

/** Builds the headless Service that governs the StatefulSet. */
export function buildHeadlessService(partition: MeshPartition): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: ownedMetadata(partition, names.headlessService(partition)),
    spec: {
      clusterIP: 'None',
      publishNotReadyAddresses: true,
      selector: selectorLabels(partition),
      ports,
    },
  };
}

/** Builds the ClusterIP Service through which the gateway reaches ready members. */
export function buildClientService(partition: MeshPartition): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: ownedMetadata(partition, names.clientService(partition)),
    spec: {
      type: 'ClusterIP',
      selector: selectorLabels(partition),
      ports,
    },
  };
}
