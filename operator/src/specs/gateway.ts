// The gateway of a Mesh: a Deployment of stateless `node meshwork.ts gateway` pods, the Service
// that is the Mesh's one address, and a PodDisruptionBudget. The gateway finds partitions
// through the slot map in etcd, so it needs only the etcd endpoints, and a certificate when it
// serves HTTPS. Variables it shares with a partition are the contract's PartitionEnv names.
import type { V1Deployment, V1EnvVar, V1PodDisruptionBudget, V1Service, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import {
  GatewayEnv,
  dataplaneHttpPort,
  dataplaneHttpPortName,
  dataplaneNodeOptions,
  defaultTerminationMessagePath,
  PartitionEnv,
} from '@meshwork/contract';
import type { Mesh } from '../api/v1alpha1.ts';
import { dataplaneContainerChecks, defaultImage } from './common.ts';
import {
  gatewayComponent,
  gatewaySelectorLabels,
  managedAnnotationsAnnotation,
  meshLabel,
  meshNames,
  meshOwnedMetadata,
} from './mesh-common.ts';

/** Where a gateway pod mounts the TLS Secret (`tls.crt`, `tls.key`). */
export const gatewayTlsMountPath = '/etc/meshwork/tls';

/** Options of the gateway builders that come from the operator, not the Mesh. */
export interface GatewayOptions {
  /** Image for Meshes that do not name one. */
  defaultImage?: string;
}

/** Whether the gateway serves HTTPS (the Mesh names a TLS Secret). */
export function gatewayServesTls(mesh: Mesh): boolean {
  return mesh.spec.gateway.tls !== undefined;
}

/** The gateway container's environment. */
export function gatewayEnvironment(mesh: Mesh): V1EnvVar[] {
  const tls = gatewayServesTls(mesh);
  return [
    { name: PartitionEnv.podName, valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: PartitionEnv.podIp, valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
    { name: PartitionEnv.nodeName, valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
    // Like a partition member, a gateway pod listens on its own pod IP.
    { name: PartitionEnv.listen, value: `$(${PartitionEnv.podIp}):${dataplaneHttpPort}` },
    { name: PartitionEnv.etcdEndpoints, value: mesh.spec.stores.etcd.endpoints.join(',') },
    { name: GatewayEnv.plainHttp, value: tls ? 'false' : 'true' },
    ...(tls ? [{ name: GatewayEnv.tlsDir, value: gatewayTlsMountPath }] : []),
    { name: PartitionEnv.terminationMessagePath, value: defaultTerminationMessagePath },
    { name: PartitionEnv.nodeOptions, value: dataplaneNodeOptions },
    ...(mesh.spec.telemetry?.otlpEndpoint ? [{ name: GatewayEnv.otlpEndpoint, value: mesh.spec.telemetry.otlpEndpoint }] : []),
  ];
}

/** Builds the Deployment of the Mesh's gateway pods. */
export function buildGatewayDeployment(mesh: Mesh, options: GatewayOptions = {}): V1Deployment {
  const { gateway } = mesh.spec;
  const tls = gateway.tls;
  const sizing = { cpu: String(gateway.resources.cpu), memory: String(gateway.resources.memory) };
  const volumes: V1Volume[] = tls ? [{ name: 'tls', secret: { secretName: tls.secretName, defaultMode: 0o440 } }] : [];
  // Mounted whole (not by subPath), so that a renewed certificate reaches the running pods.
  const volumeMounts: V1VolumeMount[] = tls ? [{ name: 'tls', mountPath: gatewayTlsMountPath, readOnly: true }] : [];
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meshOwnedMetadata(mesh, meshNames.gatewayDeployment(mesh), gatewayComponent),
    spec: {
      replicas: gateway.replicas,
      selector: { matchLabels: gatewaySelectorLabels(mesh) },
      // A new pod is ready before an old one goes: the Mesh's address never loses capacity to a rollout.
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: { labels: { ...gatewaySelectorLabels(mesh), [meshLabel]: mesh.metadata.name } },
        spec: {
          terminationGracePeriodSeconds: 30,
          enableServiceLinks: false,
          securityContext: { runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, fsGroup: 10001 },
          topologySpreadConstraints: [
            {
              maxSkew: 1,
              topologyKey: 'kubernetes.io/hostname',
              whenUnsatisfiable: 'ScheduleAnyway',
              labelSelector: { matchLabels: gatewaySelectorLabels(mesh) },
            },
          ],
          containers: [
            {
              name: 'gateway',
              image: mesh.spec.image || options.defaultImage || defaultImage,
              // The image's entry point is `node meshwork.ts <role>`.
              args: ['gateway'],
              ports: [{ name: dataplaneHttpPortName, containerPort: dataplaneHttpPort, protocol: 'TCP' }],
              env: gatewayEnvironment(mesh),
              resources: { requests: sizing, limits: sizing },
              ...dataplaneContainerChecks(tls ? 'HTTPS' : 'HTTP'),
              volumeMounts,
            },
          ],
          volumes,
        },
      },
    },
  };
}

/** Builds the Service in front of the gateway pods: the Mesh's one address (443 with TLS, 80 without). */
export function buildGatewayService(mesh: Mesh): V1Service {
  const { service } = mesh.spec.gateway;
  const tls = gatewayServesTls(mesh);
  const annotations = service.annotations ?? {};
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      ...meshOwnedMetadata(mesh, meshNames.gatewayService(mesh), gatewayComponent),
      annotations: { ...annotations, [managedAnnotationsAnnotation]: Object.keys(annotations).sort().join(',') },
    },
    spec: {
      type: service.type,
      selector: gatewaySelectorLabels(mesh),
      ports: [{ name: tls ? 'https' : 'http', port: tls ? 443 : 80, targetPort: dataplaneHttpPortName, protocol: 'TCP' }],
    },
  };
}

/** Builds the PodDisruptionBudget that lets voluntary disruptions take one gateway pod at a time. */
export function buildGatewayPodDisruptionBudget(mesh: Mesh): V1PodDisruptionBudget {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: meshOwnedMetadata(mesh, meshNames.gatewayPodDisruptionBudget(mesh), gatewayComponent),
    spec: { maxUnavailable: 1, selector: { matchLabels: gatewaySelectorLabels(mesh) } },
  };
}
