// The gateway pod's environment, resolved as a kubelet resolves it (downward-API fields, $(VAR)
// expansion), reads back as what the Mesh asked for with the contract's own parsers of the
// variables the gateway shares with a partition: the listen address and the etcd endpoints.
import type { V1Pod } from '@kubernetes/client-node';
import {
  dataplaneHttpPort,
  dataplaneNodeOptions,
  GatewayEnv,
  gatewayEnvSchema,
  listenAddress,
  PartitionEnv,
  partitionEnvSchema,
} from '@meshwork/contract';
import { describe, expect, it } from 'vitest';
import { containerEnv, type PodFacts, type ReferenceResolver } from '../../../e2e/node-agent/container-env.ts';
import { sampleMesh } from '../api/fixtures.ts';
import type { Mesh } from '../api/v1alpha1.ts';
import { buildGatewayDeployment, gatewayTlsMountPath } from './gateway.ts';

const facts: PodFacts = { podIP: '198.18.0.9', hostIP: '198.18.0.1', nodeName: 'node-c' };

// The gateway's container refers to no ConfigMap or Secret by key.
const nothing: ReferenceResolver = {
  configMapKey: async () => Promise.resolve(undefined),
  secretKey: async () => Promise.resolve(undefined),
  configMap: async () => Promise.resolve(undefined),
  secret: async () => Promise.resolve(undefined),
};

async function gatewayEnv(mesh: Mesh): Promise<{ env: Record<string, string>; pod: V1Pod }> {
  const template = buildGatewayDeployment(mesh).spec!.template;
  const pod: V1Pod = {
    metadata: { ...template.metadata, name: 'm-gateway-5d8f-abcde', namespace: mesh.metadata.namespace },
    spec: { ...template.spec!, nodeName: facts.nodeName },
  };
  return { env: await containerEnv(pod, pod.spec!.containers[0]!, facts, nothing), pod };
}

describe("the gateway pod's environment", () => {
  it.each([
    { case: 'plain HTTP', tls: undefined, plain: 'true' },
    { case: 'HTTPS', tls: { secretName: 'edge-cert' }, plain: 'false' },
  ])('listens on the pod IP and reaches the Mesh etcd ($case)', async ({ tls, plain }) => {
    const mesh = sampleMesh('m', { gateway: { ...sampleMesh().spec.gateway, ...(tls ? { tls } : {}) } });
    const { env, pod } = await gatewayEnv(mesh);
    expect(listenAddress.parse(env[PartitionEnv.listen])).toEqual({ host: facts.podIP, port: dataplaneHttpPort });
    expect(partitionEnvSchema.shape[PartitionEnv.etcdEndpoints].parse(env[PartitionEnv.etcdEndpoints])).toEqual(
      mesh.spec.stores.etcd.endpoints,
    );
    expect(env[PartitionEnv.podName]).toBe(pod.metadata!.name);
    expect(env[PartitionEnv.nodeOptions]).toBe(dataplaneNodeOptions);
    expect(env[GatewayEnv.plainHttp]).toBe(plain);
    // The gateway's own parser takes the whole environment as the pod gets it.
    const parsed = gatewayEnvSchema.parse(env);
    expect(parsed[GatewayEnv.plainHttp]).toBe(plain === 'true');
    expect(parsed[GatewayEnv.listen]).toEqual({ host: facts.podIP, port: dataplaneHttpPort });
    // With TLS, the directory the gateway reads tls.crt and tls.key from is where the Secret is mounted.
    const mounts = pod.spec!.containers[0]!.volumeMounts ?? [];
    const secretVolumes = (pod.spec!.volumes ?? []).filter((v) => v.secret?.secretName === tls?.secretName);
    if (tls) {
      expect(env[GatewayEnv.tlsDir]).toBe(gatewayTlsMountPath);
      expect(mounts.find((m) => m.mountPath === env[GatewayEnv.tlsDir])?.name).toBe(secretVolumes[0]?.name);
    } else {
      expect(env[GatewayEnv.tlsDir]).toBeUndefined();
      expect(mounts).toEqual([]);
    }
  });

  it('exports traces where spec.telemetry says, and only then', async () => {
    expect((await gatewayEnv(sampleMesh())).env[GatewayEnv.otlpEndpoint]).toBeUndefined();
    const { env } = await gatewayEnv(sampleMesh('m', { telemetry: { otlpEndpoint: 'http://jaeger.observability:4318' } }));
    expect(gatewayEnvSchema.shape[GatewayEnv.otlpEndpoint].parse(env[GatewayEnv.otlpEndpoint])).toBe('http://jaeger.observability:4318');
  });
});
