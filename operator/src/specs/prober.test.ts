// The Mesh's prober Deployment: one pod with spec.prober, none without; its environment,
// resolved as a kubelet resolves it, parses with the prober's own schema.
import type { V1Pod } from '@kubernetes/client-node';
import { ProberEnv, proberEnvSchema } from '@meshwork/contract';
import { describe, expect, it } from 'vitest';
import { containerEnv, type PodFacts, type ReferenceResolver } from '../../../e2e/node-agent/container-env.ts';
import { sampleMesh } from '../api/fixtures.ts';
import type { Mesh } from '../api/v1alpha1.ts';
import { buildProberDeployment, proberTarget } from './prober.ts';

const facts: PodFacts = { podIP: '198.18.0.7', hostIP: '198.18.0.1', nodeName: 'node-a' };
const secrets: ReferenceResolver = {
  configMapKey: async () => Promise.resolve(undefined),
  secretKey: async (name, key) => Promise.resolve(name === 'probe-account' && key === 'token' ? 'mwu.probe' : undefined),
  configMap: async () => Promise.resolve(undefined),
  secret: async () => Promise.resolve(undefined),
};

const withProber = (prober: Partial<NonNullable<Mesh['spec']['prober']>> = {}, gateway: Partial<Mesh['spec']['gateway']> = {}): Mesh =>
  sampleMesh('m', {
    prober: { accountTokenSecretRef: { name: 'probe-account' }, intervalSeconds: 30, ...prober },
    gateway: { ...sampleMesh().spec.gateway, ...gateway },
  });

describe('buildProberDeployment', () => {
  it.each([
    { case: 'without spec.prober', mesh: sampleMesh('m'), replicas: 0 },
    { case: 'with spec.prober', mesh: withProber(), replicas: 1 },
  ])('runs $replicas pod(s) $case, labelled for the PodMonitor', ({ mesh, replicas }) => {
    const deployment = buildProberDeployment(mesh);
    expect(deployment.metadata).toMatchObject({ name: 'm-prober', namespace: mesh.metadata.namespace });
    expect(deployment.spec!.replicas).toBe(replicas);
    const template = deployment.spec!.template;
    expect(template.metadata!.labels).toMatchObject({
      'app.kubernetes.io/name': 'meshwork',
      'app.kubernetes.io/component': 'prober',
      'meshwork.io/mesh': 'm',
    });
    expect(deployment.spec!.selector.matchLabels).toEqual(
      Object.fromEntries(Object.entries(template.metadata!.labels!).filter(([k]) => k !== 'meshwork.io/mesh')),
    );
    const container = template.spec!.containers[0]!;
    expect(container.args).toEqual(['prober']);
    expect(container.ports).toEqual([expect.objectContaining({ name: 'http' })]);
  });

  it.each([
    { case: 'plain HTTP', mesh: withProber(), target: 'http://m-gateway.meshwork.svc:80' },
    { case: 'HTTPS', mesh: withProber({}, { tls: { secretName: 'edge' } }), target: 'https://m-gateway.meshwork.svc:443' },
    { case: 'a public name', mesh: withProber({ target: 'https://mesh.example.com' }), target: 'https://mesh.example.com' },
  ])('reaches the gateway at its Service or the given target ($case)', ({ mesh, target }) => {
    expect(proberTarget({ ...mesh, metadata: { ...mesh.metadata, namespace: 'meshwork' } })).toBe(target);
  });

  it("gives the pod an environment the prober's schema accepts", async () => {
    const mesh = withProber({ intervalSeconds: 15 });
    const template = buildProberDeployment(mesh).spec!.template;
    const pod: V1Pod = {
      metadata: { ...template.metadata, name: 'm-prober-abc', namespace: mesh.metadata.namespace },
      spec: { ...template.spec!, nodeName: facts.nodeName },
    };
    const env = await containerEnv(pod, pod.spec!.containers[0]!, facts, secrets);
    const parsed = proberEnvSchema.parse(env);
    expect(parsed[ProberEnv.listen]).toEqual({ host: facts.podIP, port: 8080 });
    expect(parsed[ProberEnv.accountToken]).toBe('mwu.probe');
    expect(parsed[ProberEnv.intervalSeconds]).toBe(15);
    expect(parsed[ProberEnv.target]).toBe(proberTarget(mesh));
  });
});
