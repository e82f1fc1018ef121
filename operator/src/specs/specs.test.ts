import { describe, expect, it } from 'vitest';
import { samplePartition } from '../api/fixtures.ts';
import { formatSlots } from '../api/v1alpha1.ts';
import { buildConfigMap, configHash } from './configmap.ts';
import { buildPodDisruptionBudget } from './poddisruptionbudget.ts';
import { buildClientService, buildHeadlessService } from './services.ts';
import { buildStatefulSet, configHashAnnotation } from './statefulset.ts';
import { unsuitableNodeLabel } from './common.ts';

describe('buildStatefulSet', () => {
  it.each([
    { case: 'defaults', spec: {}, replicas: 3, volumes: 4, cpu: '2', memory: '8Gi', partition: 0, image: 'meshwork/meshwork:0.1.0' },
    { case: 'scaled to zero', spec: { replicas: 0 }, replicas: 0, volumes: 4, cpu: '2', memory: '8Gi', partition: 0, image: 'meshwork/meshwork:0.1.0' },
    {
      case: 'one small volume, numeric cpu, own image, held rollout',
      spec: { storage: { volumes: 1, size: '1Gi', storageClassName: 'fast' }, resources: { cpu: 4, memory: '16Gi' }, image: 'r/m:2', rollout: { partition: 2 } },
      replicas: 3, volumes: 1, cpu: '4', memory: '16Gi', partition: 2, image: 'r/m:2',
    },
  ])('sizes and wires the members ($case)', ({ spec, replicas, volumes, cpu, memory, partition, image }) => {
    const sts = buildStatefulSet(samplePartition('p0', spec));
    const pod = sts.spec!.template.spec!;
    const container = pod.containers[0]!;
    expect(sts.spec!.replicas).toBe(replicas);
    expect(sts.spec!.serviceName).toBe('p0-peers');
    expect(sts.spec!.updateStrategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { partition } });
    expect(sts.spec!.volumeClaimTemplates).toHaveLength(volumes);
    expect(container.volumeMounts!.map((m) => m.name)).toEqual([...sts.spec!.volumeClaimTemplates!.map((v) => v.metadata!.name), 'admin-token']);
    expect(sts.spec!.template.spec!.volumes).toEqual([{ name: 'admin-token', secret: { secretName: 'p0-admin', defaultMode: 0o440 } }]);
    expect(container.env!.find((e) => e.name === 'MESHWORK_LISTEN')!.value).toBe('$(MESHWORK_POD_IP):8080');
    expect(container.resources).toEqual({ requests: { cpu, memory }, limits: { cpu, memory } });
    expect(container.image).toBe(image);
    expect(container.command).toBeUndefined();
    expect(container.args).toEqual(['partition']);
    expect(container.livenessProbe!.httpGet!.path).toBe('/livez');
    expect(container.readinessProbe!.httpGet!.path).toBe('/readyz');
    expect(container.terminationMessagePath).toBe('/dev/termination-log');
    expect(pod.topologySpreadConstraints![0]).toMatchObject({ topologyKey: 'kubernetes.io/hostname', maxSkew: 1 });
    expect(sts.spec!.selector.matchLabels).toEqual(pod.topologySpreadConstraints![0]!.labelSelector!.matchLabels);
  });

  it('keeps members off nodes the watchdog marked unsuitable for this partition, by one fixed rule', () => {
    const partition = samplePartition('p0', {}, 'tenant-a');
    const terms = buildStatefulSet(partition).spec!.template.spec!.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms;
    expect(terms).toEqual([{ matchExpressions: [{ key: 'unsuitable.meshwork.io/tenant-a.p0', operator: 'DoesNotExist' }] }]);
    expect(unsuitableNodeLabel(partition)).toBe('unsuitable.meshwork.io/tenant-a.p0');
  });

  it.each([
    ['a'.repeat(63), 'p0'],
    ['tenant', 'x'.repeat(63)],
  ])('shortens the unsuitable label of long names (%s/%s) to a valid, distinct label name', (namespace, name) => {
    const label = unsuitableNodeLabel(samplePartition(name, {}, namespace));
    const labelName = label.split('/')[1]!;
    expect(labelName.length).toBeLessThanOrEqual(63);
    expect(labelName).toMatch(/^[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?$/);
    expect(unsuitableNodeLabel(samplePartition(`${name.slice(0, -1)}q`, {}, namespace))).not.toBe(label);
  });

  it('names the storage class only when one is given', () => {
    expect(buildStatefulSet(samplePartition()).spec!.volumeClaimTemplates![0]!.spec!.storageClassName).toBeUndefined();
    const withClass = samplePartition('p0', { storage: { volumes: 2, size: '5Gi', storageClassName: 'fast' } });
    expect(buildStatefulSet(withClass).spec!.volumeClaimTemplates![1]!.spec).toMatchObject({ storageClassName: 'fast', resources: { requests: { storage: '5Gi' } } });
  });

  it('uses the operator default image when the partition names none', () => {
    expect(buildStatefulSet(samplePartition(), { defaultImage: 'meshwork/meshwork:9' }).spec!.template.spec!.containers[0]!.image).toBe('meshwork/meshwork:9');
  });

  it('takes S3 credentials from the named Secret, never from the ConfigMap', () => {
    const env = buildStatefulSet(samplePartition()).spec!.template.spec!.containers[0]!.env!;
    expect(env.find((e) => e.name === 'MESHWORK_S3_SECRET_KEY')!.valueFrom!.secretKeyRef).toEqual({ name: 's3-credentials', key: 'secretAccessKey' });
    expect(Object.keys(buildConfigMap(samplePartition()).data!).some((k) => k.includes('SECRET'))).toBe(false);
  });

  it('stamps the configuration digest on the pod template so a change rolls the pods', () => {
    const before = buildStatefulSet(samplePartition()).spec!.template.metadata!.annotations![configHashAnnotation];
    const after = buildStatefulSet(samplePartition('p0', { slots: [{ start: 0, end: 2047 }] })).spec!.template.metadata!.annotations![configHashAnnotation];
    expect(before).toBe(configHash(samplePartition()));
    expect(after).not.toBe(before);
  });
});

describe('owned objects', () => {
  const partition = samplePartition('p1');
  it.each([
    { kind: 'ConfigMap', object: buildConfigMap(partition), name: 'p1-config' },
    { kind: 'Service', object: buildHeadlessService(partition), name: 'p1-peers' },
    { kind: 'Service', object: buildClientService(partition), name: 'p1' },
    { kind: 'StatefulSet', object: buildStatefulSet(partition), name: 'p1' },
    { kind: 'PodDisruptionBudget', object: buildPodDisruptionBudget(partition), name: 'p1' },
  ])('$kind $name is owned by its MeshPartition and labelled as managed', ({ kind, object, name }) => {
    expect(object.kind).toBe(kind);
    expect(object.metadata).toMatchObject({ name, namespace: 'mesh', labels: { 'app.kubernetes.io/managed-by': 'meshwork-operator', 'meshwork.io/partition': 'p1' } });
    expect(object.metadata!.ownerReferences).toEqual([
      { apiVersion: 'meshwork.io/v1alpha1', kind: 'MeshPartition', name: 'p1', uid: partition.metadata.uid, controller: true, blockOwnerDeletion: true },
    ]);
  });

  it('publishes every member on the peer Service and only ready ones on the client Service', () => {
    expect(buildHeadlessService(partition).spec).toMatchObject({ clusterIP: 'None', publishNotReadyAddresses: true });
    expect(buildClientService(partition).spec!.clusterIP).toBe('None');
    expect(buildClientService(partition).spec!.publishNotReadyAddresses).toBeUndefined();
  });

  it('lets at most one member be disrupted', () => {
    expect(buildPodDisruptionBudget(partition).spec).toEqual({ maxUnavailable: 1, selector: { matchLabels: buildStatefulSet(partition).spec!.selector.matchLabels } });
  });
});

describe('partition configuration', () => {
  it.each([
    { slots: [{ start: 0, end: 1023 }], text: '0-1023' },
    { slots: [{ start: 2048, end: 2100 }, { start: 0, end: 1023 }], text: '0-1023,2048-2100' },
    { slots: [{ start: 7, end: 7 }], text: '7' },
  ])('writes slots $text', ({ slots, text }) => {
    expect(formatSlots(slots)).toBe(text);
    expect(buildConfigMap(samplePartition('p0', { slots })).data!.MESHWORK_SLOTS).toBe(text);
  });

  it('lists the stores and one data directory per volume', () => {
    expect(buildConfigMap(samplePartition('p0', { storage: { volumes: 2, size: '1Gi' } })).data).toMatchObject({
      MESHWORK_PARTITION: 'p0',
      MESHWORK_ETCD_ENDPOINTS: 'http://etcd-0:2379,http://etcd-1:2379',
      MESHWORK_S3_ENDPOINT: 'http://minio:9000',
      MESHWORK_S3_BUCKET: 'blocks',
      MESHWORK_DATA_DIRS: '/var/lib/meshwork/data-0,/var/lib/meshwork/data-1',
    });
  });
});
