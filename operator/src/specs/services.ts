// The partition's two Services, both headless: the peer Service gives each member a stable
// DNS name (peers find each other before they are ready); the client Service lists only
// ready members, and the gateway balances across them itself (see ADR 13).
import type { V1Service } from '@kubernetes/client-node';
import { dataplaneHttpPort, dataplaneHttpPortName } from '@meshwork/contract';
import type { MeshPartition } from '../api/v1alpha1.ts';
import { names, ownedMetadata, selectorLabels } from './common.ts';

const ports = [{ name: dataplaneHttpPortName, port: dataplaneHttpPort, targetPort: dataplaneHttpPortName, protocol: 'TCP' }];

/** A headless Service named `name` over the partition's members. */
function headlessService(partition: MeshPartition, name: string, publishNotReadyAddresses: boolean): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: ownedMetadata(partition, name),
    spec: {
      clusterIP: 'None',
      ...(publishNotReadyAddresses ? { publishNotReadyAddresses: true } : {}),
      selector: selectorLabels(partition),
      ports,
    },
  };
}

/** Builds the headless Service that governs the StatefulSet. */
export function buildHeadlessService(partition: MeshPartition): V1Service {
  return headlessService(partition, names.headlessService(partition), true);
}

/** Builds the Service whose DNS name resolves to the partition's ready members, for the gateway. */
export function buildClientService(partition: MeshPartition): V1Service {
  return headlessService(partition, names.clientService(partition), false);
}
