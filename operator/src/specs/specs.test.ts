import { describe, expect, it } from 'vitest';
import { configHashAnnotation } from '@meshwork/contract';
import { samplePartition } from '../api/fixtures.ts';
import { parsePartitionConfig } from '../../../dataplane/src/config.ts';
import { buildConfigMap, configHash } from './configmap.ts';
import { buildPodDisruptionBudget } from './poddisruptionbudget.ts';
import { buildClientService, buildHeadlessService } from './services.ts';
import { buildStatefulSet } from './statefulset.ts';
import { slotsText, unsuitableNodeLabel } from './common.ts';

describe('buildStatefulSet', () => {
  it.each([
    { case: 'defaults', spec: {}, replicas: 3, volumes: 4, cpu: '2', memory: '8Gi', partition: 0, image: 'meshwork/meshwork:0.1.0' },
    {
      case: 'scaled to zero',
      spec: { replicas: 0 },
      replicas: 0,
      volumes: 4,
      cpu: '2',
      memory: '8Gi',
      partition: 0,
      image: 'meshwork/meshwork:0.1.0',
    },
    {
      case: 'one small volume, numeric cpu, own image, held rollout',
      spec: {
        storage: { volumes: 1, size: '1Gi', storageClassName: 'fast' },
        resources: { cpu: 4, memory: '16Gi' },
        image: 'r/m:2',
        rollout: { partition: 2 },
      },
      replicas: 3,
      volumes: 1,
      cpu: '4',
      memory: '16Gi',
      partition: 2,
      image: 'r/m:2',
    },
  ])('sizes and wires the members ($case)', ({ spec, replicas, volumes, cpu, memory, partition, image }) => {
    const sts = buildStatefulSet(samplePartition('p0', spec));
    const pod = sts.spec!.template.spec!;
    const container = pod.containers[0]!;
    expect(sts.spec!.replicas).toBe(replicas);
    expect(sts.spec!.serviceName).toBe('p0-peers');
    expect(sts.spec!.updateStrategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { partition } });
    expect(sts.spec!.volumeClaimTemplates).toHaveLength(volumes);
    expect(container.volumeMounts!.map((m) => m.name)).toEqual([
      ...sts.spec!.volumeClaimTemplates!.map((v) => v.metadata!.name),
      'admin-token',
    ]);
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
    const terms =
      buildStatefulSet(partition).spec!.template.spec!.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!
        .nodeSelectorTerms;
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
    expect(buildStatefulSet(withClass).spec!.volumeClaimTemplates![1]!.spec).toMatchObject({
      storageClassName: 'fast',
      resources: { requests: { storage: '5Gi' } },
    });
  });

  it('uses the operator default image when the partition names none', () => {
    expect(buildStatefulSet(samplePartition(), { defaultImage: 'meshwork/meshwork:9' }).spec!.template.spec!.containers[0]!.image).toBe(
      'meshwork/meshwork:9',
    );
  });

  it('takes S3 credentials from the named Secret, never from the ConfigMap', () => {
    const env = buildStatefulSet(samplePartition()).spec!.template.spec!.containers[0]!.env!;
    expect(env.find((e) => e.name === 'MESHWORK_S3_SECRET_KEY')!.valueFrom!.secretKeyRef).toEqual({
      name: 's3-credentials',
      key: 'secretAccessKey',
    });
    expect(Object.keys(buildConfigMap(samplePartition()).data!).some((k) => k.includes('SECRET'))).toBe(false);
  });

  it('stamps the configuration digest on the pod template so a change rolls the pods', () => {
    const before = buildStatefulSet(samplePartition()).spec!.template.metadata!.annotations![configHashAnnotation];
    const after = buildStatefulSet(samplePartition('p0', { slots: [{ start: 0, end: 2047 }] })).spec!.template.metadata!.annotations![
      configHashAnnotation
    ];
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
    expect(object.metadata).toMatchObject({
      name,
      namespace: 'mesh',
      labels: { 'app.kubernetes.io/managed-by': 'meshwork-operator', 'meshwork.io/partition': 'p1' },
    });
    expect(object.metadata!.ownerReferences).toEqual([
      {
        apiVersion: 'meshwork.io/v1alpha1',
        kind: 'MeshPartition',
        name: 'p1',
        uid: partition.metadata.uid,
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
  });

  it('publishes every member on the peer Service and only ready ones on the client Service', () => {
    expect(buildHeadlessService(partition).spec).toMatchObject({ clusterIP: 'None', publishNotReadyAddresses: true });
    expect(buildClientService(partition).spec!.clusterIP).toBe('None');
    expect(buildClientService(partition).spec!.publishNotReadyAddresses).toBeUndefined();
  });

  it('lets at most one member be disrupted', () => {
    expect(buildPodDisruptionBudget(partition).spec).toEqual({
      maxUnavailable: 1,
      selector: { matchLabels: buildStatefulSet(partition).spec!.selector.matchLabels },
    });
  });
});

describe('partition configuration', () => {
  it.each([
    { slots: [{ start: 0, end: 1023 }], text: '0-1023' },
    {
      slots: [
        { start: 2048, end: 2100 },
        { start: 0, end: 1023 },
      ],
      text: '0-1023,2048-2100',
    },
    { slots: [{ start: 7, end: 7 }], text: '7' },
  ])('writes slots $text', ({ slots, text }) => {
    expect(slotsText(slots)).toBe(text);
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

describe('throttling configuration', () => {
  const defaults = samplePartition().spec.throttling;
  it.each([
    {
      case: 'the defaults',
      throttling: defaults,
      env: {
        MESHWORK_THROTTLE_USER_RPS: '100',
        MESHWORK_THROTTLE_USER_BURST: '200',
        MESHWORK_THROTTLE_DEVICE_RPS: '50',
        MESHWORK_THROTTLE_DEVICE_BURST: '100',
        MESHWORK_THROTTLE_USER_BYTES_PER_SECOND: '64Mi',
        MESHWORK_THROTTLE_DEVICE_BYTES_PER_SECOND: '32Mi',
        MESHWORK_THROTTLE_DEVICE_LONG_POLLS: '4',
        MESHWORK_THROTTLE_MAX_ENTRY_BYTES: '16Gi',
        MESHWORK_THROTTLE_EVENT_LOOP_LAG_MS: '100',
        MESHWORK_THROTTLE_CONCURRENCY_MIN: '4',
        MESHWORK_THROTTLE_CONCURRENCY_MAX: '512',
      },
    },
    {
      case: 'byte sizes written as plain numbers',
      throttling: { ...defaults, userBytesPerSecond: 1048576, maxEntrySize: 4294967296 },
      env: { MESHWORK_THROTTLE_USER_BYTES_PER_SECOND: '1048576', MESHWORK_THROTTLE_MAX_ENTRY_BYTES: '4294967296' },
    },
    {
      case: 'tight static bounds',
      throttling: { ...defaults, userRequestsPerSecond: 5, userBurst: 10, deviceRequestsPerSecond: 2, deviceBurst: 3, deviceLongPolls: 1 },
      env: {
        MESHWORK_THROTTLE_USER_RPS: '5',
        MESHWORK_THROTTLE_USER_BURST: '10',
        MESHWORK_THROTTLE_DEVICE_RPS: '2',
        MESHWORK_THROTTLE_DEVICE_BURST: '3',
        MESHWORK_THROTTLE_DEVICE_LONG_POLLS: '1',
      },
    },
    {
      case: 'a pinned concurrency limit and a lenient lag threshold',
      throttling: { ...defaults, concurrency: { min: 64, max: 64 }, eventLoopLagMilliseconds: 500 },
      env: { MESHWORK_THROTTLE_CONCURRENCY_MIN: '64', MESHWORK_THROTTLE_CONCURRENCY_MAX: '64', MESHWORK_THROTTLE_EVENT_LOOP_LAG_MS: '500' },
    },
  ])('maps $case into the ConfigMap', ({ throttling, env }) => {
    expect(buildConfigMap(samplePartition('p0', { throttling })).data).toMatchObject(env);
  });

  it.each([
    { case: 'the defaults', throttling: defaults, bytes: { user: 64 * 2 ** 20, device: 32 * 2 ** 20, entry: 16 * 2 ** 30 } },
    {
      case: 'decimal quantities',
      throttling: { ...defaults, userBytesPerSecond: '100M', deviceBytesPerSecond: '1.5Mi', maxEntrySize: '1e9' },
      bytes: { user: 1e8, device: 1.5 * 2 ** 20, entry: 1e9 },
    },
  ])('writes what the data plane reads back as the same limits: $case', ({ throttling, bytes }) => {
    const env = buildConfigMap(samplePartition('p0', { throttling })).data!;
    const config = parsePartitionConfig(
      { ...env, MESHWORK_S3_ACCESS_KEY: 'a', MESHWORK_S3_SECRET_KEY: 'b' },
      () => 'a-token-of-sixteen-characters',
    );
    expect(config.throttle).toEqual({
      userRequestsPerSecond: throttling.userRequestsPerSecond,
      userBurst: throttling.userBurst,
      deviceRequestsPerSecond: throttling.deviceRequestsPerSecond,
      deviceBurst: throttling.deviceBurst,
      userBytesPerSecond: bytes.user,
      deviceBytesPerSecond: bytes.device,
      deviceLongPolls: throttling.deviceLongPolls,
      maxEntryBytes: bytes.entry,
      eventLoopLagMs: throttling.eventLoopLagMilliseconds,
      concurrency: throttling.concurrency,
    });
  });

  it('rolls the pods when a bound changes', () => {
    expect(configHash(samplePartition('p0', { throttling: { ...defaults, deviceBurst: 101 } }))).not.toBe(configHash(samplePartition()));
  });
});
