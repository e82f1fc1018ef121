// The objects a Mesh builds, as tables: its MeshPartitions (a range of the layout each, the
// rest from the Mesh) and its gateway's Deployment, Service and PodDisruptionBudget.
import { describe, expect, it } from 'vitest';
import { sampleMesh } from '../api/fixtures.ts';
import { defaultedMeshPartitionSpec, throttlingDefaults, watchdogSpecDefaults } from '../api/v1alpha1.ts';
import { buildGatewayDeployment, buildGatewayPodDisruptionBudget, buildGatewayService, gatewayEnvironment } from './gateway.ts';
import { buildMeshPartition, meshPartitionTemplate, partitionTemplateOf } from './meshpartition.ts';
import { containsDesired } from '../meshpartition/compare.ts';

const owner = {
  apiVersion: 'meshwork.io/v1alpha1',
  kind: 'Mesh',
  name: 'm',
  uid: '00000000-0000-4000-8000-00000000000a',
  controller: true,
  blockOwnerDeletion: true,
};

describe('buildMeshPartition', () => {
  it.each([
    {
      case: 'defaults',
      spec: {},
      expected: { replicas: 3, adminTokenSecretRef: { name: 'm-admin' }, resources: { cpu: '2', memory: '8Gi' } },
      image: undefined,
    },
    {
      case: 'the Mesh sizes, image, admin Secret, throttling and watchdog',
      spec: {
        replicasPerPartition: 5,
        image: 'r/m:2',
        adminTokenSecretRef: { name: 'shared-admin' },
        resources: { cpu: '1', memory: '2Gi' },
        storage: { volumes: 2, size: '10Gi', storageClassName: 'local' },
        throttling: { ...throttlingDefaults, userBurst: 7 },
        watchdog: { ...watchdogSpecDefaults, mode: 'Observe' as const },
        telemetry: { otlpEndpoint: 'http://jaeger:4318' },
      },
      expected: {
        replicas: 5,
        adminTokenSecretRef: { name: 'shared-admin' },
        resources: { cpu: '1', memory: '2Gi' },
        storage: { volumes: 2, size: '10Gi', storageClassName: 'local' },
        throttling: { userBurst: 7 },
        watchdog: { mode: 'Observe' },
        telemetry: { otlpEndpoint: 'http://jaeger:4318' },
      },
      image: 'r/m:2',
    },
  ])('passes the Mesh to the partition ($case)', ({ spec, expected, image }) => {
    const mesh = sampleMesh('m', spec);
    const partition = buildMeshPartition(mesh, 'm-p1', { first: 2048, last: 4095 });
    expect(partition.metadata).toMatchObject({
      name: 'm-p1',
      namespace: 'mesh',
      ownerReferences: [owner],
      labels: { 'meshwork.io/mesh': 'm', 'app.kubernetes.io/managed-by': 'meshwork-operator' },
    });
    expect(partition.spec.slots).toEqual([{ start: 2048, end: 4095 }]);
    expect(partition.spec.stores).toEqual(mesh.spec.stores);
    expect(partition.spec).toMatchObject(expected);
    expect(partition.spec.image).toBe(image);
    // What the API server would store is what the Mesh asked for: the defaults add nothing new.
    expect(defaultedMeshPartitionSpec(partition.spec)).toEqual(partition.spec);
  });
});

describe('buildMeshPartition during a rollout', () => {
  it('takes the given template, names its revision and holds members back', () => {
    const mesh = sampleMesh('m', { image: 'r/m:3' });
    const older = { ...meshPartitionTemplate(sampleMesh('m', { image: 'r/m:2' })) };
    const partition = buildMeshPartition(mesh, 'm-p0', { first: 0, last: 4095 }, { template: older, revision: 'r2', hold: 2 });
    expect(partition.spec.image).toBe('r/m:2');
    expect(partition.spec.rollout).toEqual({ partition: 2 });
    expect(partition.metadata.annotations).toEqual({ 'meshwork.io/template-revision': 'r2' });
    expect(partitionTemplateOf(defaultedMeshPartitionSpec(partition.spec))).toEqual(older);
  });

  it('holds no more members than the partition has', () => {
    const partition = buildMeshPartition(
      sampleMesh('m', { replicasPerPartition: 2 }),
      'm-p0',
      { first: 0, last: 4095 },
      {
        template: meshPartitionTemplate(sampleMesh('m')),
        revision: 'r',
        hold: 5,
      },
    );
    expect(partition.spec.rollout).toEqual({ partition: 2 });
  });
});

describe('buildGatewayDeployment', () => {
  it.each([
    { case: 'plain HTTP', gateway: {}, scheme: 'HTTP', plain: 'true', tlsDir: undefined, volumes: [] },
    {
      case: 'HTTPS from a Secret',
      gateway: { tls: { secretName: 'edge-cert' } },
      scheme: 'HTTPS',
      plain: 'false',
      tlsDir: '/etc/meshwork/tls',
      volumes: [{ name: 'tls', secret: { secretName: 'edge-cert', defaultMode: 0o440 } }],
    },
  ])('runs `node meshwork.ts gateway` on the etcd of the Mesh ($case)', ({ gateway, scheme, plain, tlsDir, volumes }) => {
    const mesh = sampleMesh('m', { gateway: { ...sampleMesh().spec.gateway, ...gateway } });
    const deployment = buildGatewayDeployment(mesh);
    const pod = deployment.spec!.template.spec!;
    const container = pod.containers[0]!;
    const env = Object.fromEntries(container.env!.map((e) => [e.name, e.value]));
    expect(deployment.metadata).toMatchObject({ name: 'm-gateway', ownerReferences: [owner] });
    expect(deployment.spec!.replicas).toBe(2);
    expect(deployment.spec!.selector.matchLabels).toEqual({
      'app.kubernetes.io/name': 'meshwork',
      'app.kubernetes.io/component': 'gateway',
      'app.kubernetes.io/instance': 'm',
    });
    expect(deployment.spec!.template.metadata!.labels).not.toHaveProperty(['app.kubernetes.io/managed-by']);
    expect(container.args).toEqual(['gateway']);
    expect(container.image).toBe('meshwork/meshwork:0.1.0');
    expect(env.MESHWORK_ETCD_ENDPOINTS).toBe('http://etcd-0:2379,http://etcd-1:2379');
    expect(env.MESHWORK_LISTEN).toBe('$(MESHWORK_POD_IP):8080');
    expect(env.MESHWORK_GATEWAY_PLAIN_HTTP).toBe(plain);
    expect(env.MESHWORK_GATEWAY_TLS_DIR).toBe(tlsDir);
    expect(container.readinessProbe!.httpGet).toEqual({ path: '/readyz', port: 'http', scheme });
    expect(container.livenessProbe!.httpGet).toEqual({ path: '/livez', port: 'http', scheme });
    expect(container.resources).toEqual({ requests: { cpu: '1', memory: '1Gi' }, limits: { cpu: '1', memory: '1Gi' } });
    expect(pod.volumes).toEqual(volumes);
    expect(container.volumeMounts!.map((m) => m.mountPath)).toEqual(tlsDir ? [tlsDir] : []);
    // The pod IP the listen address names is defined before it is referred to.
    const names = container.env!.map((e) => e.name);
    expect(names.indexOf('MESHWORK_POD_IP')).toBeLessThan(names.indexOf('MESHWORK_LISTEN'));
  });

  it.each([
    { image: '', defaultImage: undefined, expected: 'meshwork/meshwork:0.1.0' },
    { image: '', defaultImage: 'op/image:3', expected: 'op/image:3' },
    { image: 'mesh/image:4', defaultImage: 'op/image:3', expected: 'mesh/image:4' },
  ])('runs image $expected (Mesh "$image", operator $defaultImage)', ({ image, defaultImage, expected }) => {
    expect(buildGatewayDeployment(sampleMesh('m', { image }), { defaultImage }).spec!.template.spec!.containers[0]!.image).toBe(expected);
  });

  it('never leaves the Mesh without a ready gateway pod during a rollout', () => {
    expect(buildGatewayDeployment(sampleMesh()).spec!.strategy).toEqual({
      type: 'RollingUpdate',
      rollingUpdate: { maxSurge: 1, maxUnavailable: 0 },
    });
  });
});

describe('buildGatewayService', () => {
  it.each([
    {
      case: 'defaults',
      gateway: {},
      type: 'ClusterIP',
      port: { name: 'http', port: 80 },
      annotations: { 'meshwork.io/managed-annotations': '' },
    },
    {
      case: 'a load balancer with annotations and TLS',
      gateway: {
        service: { type: 'LoadBalancer' as const, annotations: { 'lb.example.com/internal': 'true' } },
        tls: { secretName: 'cert' },
      },
      type: 'LoadBalancer',
      port: { name: 'https', port: 443 },
      annotations: { 'lb.example.com/internal': 'true', 'meshwork.io/managed-annotations': 'lb.example.com/internal' },
    },
    {
      case: 'a node port',
      gateway: { service: { type: 'NodePort' as const } },
      type: 'NodePort',
      port: { name: 'http', port: 80 },
      annotations: { 'meshwork.io/managed-annotations': '' },
    },
  ])('exposes the gateway pods ($case)', ({ gateway, type, port, annotations }) => {
    const mesh = sampleMesh('m', { gateway: { ...sampleMesh().spec.gateway, ...gateway } });
    const service = buildGatewayService(mesh);
    expect(service.metadata).toMatchObject({ name: 'm-gateway', ownerReferences: [owner] });
    expect(service.metadata!.annotations).toEqual(annotations);
    expect(service.spec!.type).toBe(type);
    expect(service.spec!.selector).toEqual(buildGatewayDeployment(mesh).spec!.selector.matchLabels);
    expect(service.spec!.ports).toEqual([{ ...port, targetPort: 'http', protocol: 'TCP' }]);
  });
});

describe('buildGatewayPodDisruptionBudget', () => {
  it('lets one gateway pod go at a time', () => {
    const mesh = sampleMesh();
    const pdb = buildGatewayPodDisruptionBudget(mesh);
    expect(pdb.metadata).toMatchObject({ name: 'm-gateway', ownerReferences: [owner] });
    expect(pdb.spec).toEqual({ maxUnavailable: 1, selector: { matchLabels: buildGatewayDeployment(mesh).spec!.selector.matchLabels } });
  });
});

describe('gatewayEnvironment', () => {
  it('names no variable twice', () => {
    const names = gatewayEnvironment(sampleMesh('m', { gateway: { ...sampleMesh().spec.gateway, tls: { secretName: 'c' } } })).map(
      (e) => e.name,
    );
    expect(new Set(names).size).toBe(names.length);
  });
});

describe('the gateway Service under the drift check', () => {
  it('differs from the live Service when an annotation is removed from the Mesh, so that it is applied again', () => {
    const gateway = sampleMesh().spec.gateway;
    const withTwo = sampleMesh('m', { gateway: { ...gateway, service: { type: 'ClusterIP', annotations: { a: '1', b: '2' } } } });
    const withOne = sampleMesh('m', { gateway: { ...gateway, service: { type: 'ClusterIP', annotations: { a: '1' } } } });
    const live = buildGatewayService(withTwo);
    expect(containsDesired(buildGatewayService(withTwo), live)).toBe(true);
    expect(containsDesired(buildGatewayService(withOne), live)).toBe(false);
  });
});
