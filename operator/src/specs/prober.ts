// The prober of a Mesh (ADR 40): a Deployment of one `node meshwork.ts prober` pod that runs a
// user's journey through the gateway as the probe account of `spec.prober`. A Mesh without
// `spec.prober` keeps the Deployment at zero replicas, so that removing the field stops the
// prober without the reconciler having to delete anything.
import type { V1Deployment, V1EnvVar } from '@kubernetes/client-node';
import {
  appLabels,
  appName,
  dataplaneHttpPort,
  dataplaneHttpPortName,
  dataplaneNodeOptions,
  PartitionEnv,
  ProberEnv,
} from '@meshwork/contract';
import type { Mesh } from '../api/v1alpha1.ts';
import { dataplaneContainerChecks, defaultImage } from './common.ts';
import { gatewayServesTls } from './gateway.ts';
import { meshLabel, meshNames, meshOwnedMetadata, proberComponent } from './mesh-common.ts';

/** Labels that select a Mesh's prober pod (stable: a Deployment's selector is immutable). */
export function proberSelectorLabels(mesh: Mesh): Record<string, string> {
  return { [appLabels.name]: appName, [appLabels.component]: proberComponent, [appLabels.instance]: mesh.metadata.name };
}

/** The URL the prober reaches the gateway at: `spec.prober.target`, or the gateway Service in the cluster. */
export function proberTarget(mesh: Mesh): string {
  const target = mesh.spec.prober?.target;
  if (target) return target;
  const tls = gatewayServesTls(mesh);
  return `${tls ? 'https' : 'http'}://${meshNames.gatewayService(mesh)}.${mesh.metadata.namespace}.svc:${tls ? 443 : 80}`;
}

/** The prober container's environment. */
export function proberEnvironment(mesh: Mesh): V1EnvVar[] {
  const prober = mesh.spec.prober;
  return [
    { name: PartitionEnv.podIp, valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
    { name: ProberEnv.listen, value: `$(${PartitionEnv.podIp}):${dataplaneHttpPort}` },
    { name: ProberEnv.target, value: proberTarget(mesh) },
    {
      name: ProberEnv.accountToken,
      // Optional: a Mesh without a prober keeps a Deployment of zero pods that names no Secret.
      valueFrom: {
        secretKeyRef: {
          name: prober?.accountTokenSecretRef.name ?? `${mesh.metadata.name}-prober`,
          key: 'token',
          optional: prober === undefined,
        },
      },
    },
    { name: ProberEnv.intervalSeconds, value: String(prober?.intervalSeconds ?? 30) },
    { name: PartitionEnv.nodeOptions, value: dataplaneNodeOptions },
  ];
}

/** Builds the Deployment of the Mesh's prober: one pod with `spec.prober`, none without. */
export function buildProberDeployment(mesh: Mesh, options: { defaultImage?: string } = {}): V1Deployment {
  const sizing = { cpu: '100m', memory: '128Mi' };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meshOwnedMetadata(mesh, meshNames.proberDeployment(mesh), proberComponent),
    spec: {
      replicas: mesh.spec.prober === undefined ? 0 : 1,
      selector: { matchLabels: proberSelectorLabels(mesh) },
      template: {
        metadata: { labels: { ...proberSelectorLabels(mesh), [meshLabel]: mesh.metadata.name } },
        spec: {
          terminationGracePeriodSeconds: 10,
          enableServiceLinks: false,
          securityContext: { runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001 },
          containers: [
            {
              name: 'prober',
              image: mesh.spec.image || options.defaultImage || defaultImage,
              args: ['prober'],
              ports: [{ name: dataplaneHttpPortName, containerPort: dataplaneHttpPort, protocol: 'TCP' }],
              env: proberEnvironment(mesh),
              resources: { requests: sizing, limits: sizing },
              ...dataplaneContainerChecks('HTTP'),
            },
          ],
        },
      },
    },
  };
}
