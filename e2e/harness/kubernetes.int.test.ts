// The harness's control plane is real: controllers, scheduler, garbage collector,
// CEL validation and RBAC all act, through client-node as the operator will use it.
import { randomBytes } from 'node:crypto';
import {
  ApiException,
  ApiextensionsV1Api,
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  RbacAuthorizationV1Api,
  StorageV1Api,
  V1MicroTime,
  type V1Node,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mintServiceAccountKubeconfig } from './controlplane.ts';
import { adminKubeConfig } from './stack.ts';
import { waitFor } from './wait.ts';

const stack = inject('stack');
const suffix = randomBytes(3).toString('hex');
const kc = adminKubeConfig(stack);
const core = kc.makeApiClient(CoreV1Api);
const apps = kc.makeApiClient(AppsV1Api);

/** The HTTP status of a failed client-node call, or undefined if it did not fail that way. */
async function statusOf(call: Promise<unknown>): Promise<{ code: number; body: string } | undefined> {
  try {
    await call;
    return undefined;
  } catch (err) {
    if (err instanceof ApiException) return { code: err.code, body: String(err.body) };
    throw err;
  }
}

async function createNamespace(prefix: string): Promise<string> {
  const name = `${prefix}-${suffix}`;
  await core.createNamespace({ body: { metadata: { name } } });
  return name;
}

describe('a StatefulSet on the local control plane', () => {
  const nodeName = `harness-node-${suffix}`;
  const storageClass = `harness-local-${suffix}`;
  const pvNames = [0, 1].map((i) => `harness-pv-${suffix}-${i}`);
  let namespace = '';

  beforeAll(async () => {
    namespace = await createNamespace('harness-sts');
    const node: V1Node = {
      metadata: { name: nodeName, labels: { 'kubernetes.io/hostname': nodeName } },
      status: {
        capacity: { cpu: '2', memory: '8Gi', pods: '110' },
        allocatable: { cpu: '2', memory: '8Gi', pods: '110' },
        conditions: [
          {
            type: 'Ready',
            status: 'True',
            reason: 'KubeletReady',
            message: 'registered by the harness test',
            lastHeartbeatTime: new Date(),
            lastTransitionTime: new Date(),
          },
        ],
      },
    };
    await core.createNode({ body: node });
    // A node Lease keeps the node lifecycle controller from declaring the node lost mid-test.
    await kc.makeApiClient(CoordinationV1Api).createNamespacedLease({
      namespace: 'kube-node-lease',
      body: { metadata: { name: nodeName }, spec: { holderIdentity: nodeName, leaseDurationSeconds: 40, renewTime: new V1MicroTime() } },
    });
    await kc.makeApiClient(StorageV1Api).createStorageClass({
      body: { metadata: { name: storageClass }, provisioner: 'kubernetes.io/no-provisioner', volumeBindingMode: 'WaitForFirstConsumer' },
    });
    for (const name of pvNames) {
      await core.createPersistentVolume({
        body: {
          metadata: { name },
          spec: {
            capacity: { storage: '1Gi' },
            accessModes: ['ReadWriteOnce'],
            storageClassName: storageClass,
            persistentVolumeReclaimPolicy: 'Retain',
            local: { path: `/var/lib/meshwork-harness/${name}` },
            nodeAffinity: {
              required: {
                nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [nodeName] }] }],
              },
            },
          },
        },
      });
    }
  });

  afterAll(async () => {
    // No kubelet confirms deletions here, so pods go with a zero grace period.
    await core.deleteCollectionNamespacedPod({ namespace, gracePeriodSeconds: 0 }).catch(() => undefined);
    await core.deleteNode({ name: nodeName }).catch(() => undefined);
    for (const name of pvNames) await core.deletePersistentVolume({ name }).catch(() => undefined);
    await kc
      .makeApiClient(StorageV1Api)
      .deleteStorageClass({ name: storageClass })
      .catch(() => undefined);
    await core.deleteNamespace({ name: namespace }).catch(() => undefined);
  });

  it('gets Pods and PVCs from the controller manager, and the scheduler binds them to the registered Node', async () => {
    await apps.createNamespacedStatefulSet({
      namespace,
      body: {
        metadata: { name: 'web' },
        spec: {
          replicas: 2,
          serviceName: 'web',
          podManagementPolicy: 'Parallel',
          selector: { matchLabels: { app: 'web' } },
          template: {
            metadata: { labels: { app: 'web' } },
            spec: { containers: [{ name: 'web', image: 'meshwork/harness:test', command: ['true'] }] },
          },
          volumeClaimTemplates: [
            {
              metadata: { name: 'data' },
              spec: { accessModes: ['ReadWriteOnce'], storageClassName: storageClass, resources: { requests: { storage: '1Gi' } } },
            },
          ],
        },
      },
    });

    const pods = await waitFor(
      async () => {
        const list = await core.listNamespacedPod({ namespace, labelSelector: 'app=web' });
        return list.items.length === 2 && list.items.every((p) => p.spec?.nodeName === nodeName) ? list.items : undefined;
      },
      { description: 'both pods to be created and bound to the node', timeoutMs: 90_000 },
    );
    expect(pods.map((p) => p.metadata?.name).sort()).toEqual(['web-0', 'web-1']);
    for (const pod of pods) {
      expect(pod.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'StatefulSet', name: 'web', controller: true });
    }

    const claims = await waitFor(
      async () => {
        const list = await core.listNamespacedPersistentVolumeClaim({ namespace });
        return list.items.length === 2 && list.items.every((c) => c.status?.phase === 'Bound') ? list.items : undefined;
      },
      { description: 'both claims to be bound', timeoutMs: 60_000 },
    );
    expect(claims.map((c) => c.metadata?.name).sort()).toEqual(['data-web-0', 'data-web-1']);
    expect(claims.map((c) => c.spec?.volumeName).sort()).toEqual([...pvNames].sort());
  });
});

describe('the garbage collector', () => {
  it('deletes a dependent once its owner is deleted', async () => {
    const namespace = await createNamespace('harness-gc');
    const owner = await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'owner' }, data: { role: 'owner' } } });
    await core.createNamespacedConfigMap({
      namespace,
      body: {
        metadata: {
          name: 'dependent',
          ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata!.uid! }],
        },
        data: { role: 'dependent' },
      },
    });
    await core.deleteNamespacedConfigMap({ name: 'owner', namespace, propagationPolicy: 'Background' });
    await waitFor(async () => (await statusOf(core.readNamespacedConfigMap({ name: 'dependent', namespace })))?.code === 404, {
      description: 'the dependent ConfigMap to be collected',
      timeoutMs: 60_000,
    });
    await core.deleteNamespace({ name: namespace });
  });
});

describe('a CustomResourceDefinition with a CEL rule', () => {
  const group = `harness${suffix}.meshwork.io`;
  const plural = 'widgets';

  beforeAll(async () => {
    const api = kc.makeApiClient(ApiextensionsV1Api);
    await api.createCustomResourceDefinition({
      body: {
        metadata: { name: `${plural}.${group}` },
        spec: {
          group,
          scope: 'Namespaced',
          names: { plural, singular: 'widget', kind: 'Widget' },
          versions: [
            {
              name: 'v1',
              served: true,
              storage: true,
              schema: {
                openAPIV3Schema: {
                  type: 'object',
                  properties: {
                    spec: {
                      type: 'object',
                      properties: { min: { type: 'integer' }, max: { type: 'integer' } },
                      x_kubernetes_validations: [{ rule: 'self.min <= self.max', message: 'min must not exceed max' }],
                    },
                  },
                },
              },
            },
          ],
        },
      },
    });
    await waitFor(
      async () => {
        const crd = await api.readCustomResourceDefinition({ name: `${plural}.${group}` });
        return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
      },
      { description: 'the CRD to be established', timeoutMs: 30_000 },
    );
  });

  it("rejects an invalid object with the rule's message and accepts a valid one", async () => {
    const custom = kc.makeApiClient(CustomObjectsApi);
    const create = (name: string, spec: { min: number; max: number }) =>
      custom.createNamespacedCustomObject({
        group,
        version: 'v1',
        namespace: 'default',
        plural,
        body: { apiVersion: `${group}/v1`, kind: 'Widget', metadata: { name }, spec },
      });
    // Discovery of a new CRD takes a moment; the first valid create is retried until it is served.
    await waitFor(async () => (await statusOf(create('good', { min: 1, max: 2 }))) === undefined, {
      description: 'a valid Widget to be accepted',
      timeoutMs: 30_000,
    });
    const refused = await statusOf(create('bad', { min: 5, max: 2 }));
    expect(refused?.code).toBe(422);
    expect(refused?.body).toContain('min must not exceed max');
  });
});

describe('RBAC', () => {
  it('refuses a ServiceAccount without a Role (403) and admits it once a RoleBinding grants the verb', async () => {
    const namespace = await createNamespace('harness-rbac');
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'nobody' } } });
    const kubeconfig = await mintServiceAccountKubeconfig(stack.controlPlane.adminKubeconfig, namespace, 'nobody');
    const saConfig = new KubeConfig();
    saConfig.loadFromFile(kubeconfig);
    const asNobody = saConfig.makeApiClient(CoreV1Api);

    const refused = await statusOf(asNobody.listNamespacedConfigMap({ namespace }));
    expect(refused?.code).toBe(403);
    expect(refused?.body).toContain(`system:serviceaccount:${namespace}:nobody`);

    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace,
      body: { metadata: { name: 'read-configmaps' }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['list'] }] },
    });
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: 'nobody-reads-configmaps' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'read-configmaps' },
        subjects: [{ kind: 'ServiceAccount', name: 'nobody', namespace }],
      },
    });
    await waitFor(async () => (await statusOf(asNobody.listNamespacedConfigMap({ namespace }))) === undefined, {
      description: 'the RoleBinding to take effect',
      timeoutMs: 30_000,
    });
    // The grant is exactly the Role's: another resource stays forbidden.
    expect((await statusOf(asNobody.listNamespacedSecret({ namespace })))?.code).toBe(403);
    await core.deleteNamespace({ name: namespace });
  });
});
