// The node agent runs real pods for the real control plane: StatefulSet pods become Running
// and Ready processes on their pod IPs with provisioned volumes; crashes, deletions and node
// power failures are reported as a kubelet reports them.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppsV1Api, CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { adminKubeConfig } from '../harness/stack.ts';
import { processAlive } from '../harness/process.ts';
import { waitFor } from '../harness/wait.ts';
import { localStorageClass, NodeAgent } from './agent.ts';

const stack = inject('stack');
const suffix = randomBytes(3).toString('hex');
const kc = adminKubeConfig(stack);
const core = kc.makeApiClient(CoreV1Api);
const apps = kc.makeApiClient(AppsV1Api);
const namespace = `node-agent-${suffix}`;

const isReady = (pod: V1Pod): boolean => pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

async function readyPods(count: number, timeoutMs = 90_000): Promise<V1Pod[]> {
  return waitFor(
    async () => {
      const pods = (await core.listNamespacedPod({ namespace, labelSelector: 'app=web' })).items.filter(
        (p) => !p.metadata?.deletionTimestamp,
      );
      return pods.length === count && pods.every((p) => p.status?.phase === 'Running' && isReady(p)) ? pods : undefined;
    },
    { description: `${count} Running and Ready pods`, timeoutMs },
  );
}

async function whoami(pod: V1Pod): Promise<{ pod: string; myPod: string; node: string; ip: string; pid: number; dataDir: string }> {
  const res = await fetch(`http://${pod.status?.podIP}:8080/whoami`, { signal: AbortSignal.timeout(2000) });
  return (await res.json()) as { pod: string; myPod: string; node: string; ip: string; pid: number; dataDir: string };
}

describe('the node agent', () => {
  let agent: NodeAgent;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'meshwork-nodes-'));
    agent = new NodeAgent({
      kubeconfig: stack.controlPlane.adminKubeconfig,
      dataDir,
      namePrefix: `e2e-${suffix}`,
      addressBlock: 2,
      backoff: { baseMs: 500, maxMs: 4000, resetAfterMs: 60_000 },
      log: process.env.MESHWORK_NODE_AGENT_LOG
        ? (message, fields) => console.log(new Date().toISOString(), message, JSON.stringify(fields))
        : undefined,
    });
    await agent.start();
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    await apps.createNamespacedStatefulSet({
      namespace,
      body: {
        metadata: { name: 'web' },
        spec: {
          replicas: 3,
          serviceName: 'web',
          podManagementPolicy: 'Parallel',
          selector: { matchLabels: { app: 'web' } },
          template: {
            metadata: { labels: { app: 'web' } },
            spec: {
              terminationGracePeriodSeconds: 5,
              // One pod per node, as the operator's StatefulSets ask.
              affinity: {
                podAntiAffinity: {
                  requiredDuringSchedulingIgnoredDuringExecution: [
                    { labelSelector: { matchLabels: { app: 'web' } }, topologyKey: 'kubernetes.io/hostname' },
                  ],
                },
              },
              containers: [
                {
                  name: 'web',
                  image: 'meshwork/meshwork:dev',
                  command: ['node', 'e2e/node-agent/fixtures/web.ts'],
                  env: [
                    { name: 'DATA_DIR', value: '/data/0' },
                    { name: 'MY_POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                  ],
                  ports: [{ name: 'http', containerPort: 8080 }],
                  readinessProbe: { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 1 },
                  livenessProbe: { httpGet: { path: '/livez', port: 'http' }, periodSeconds: 1, failureThreshold: 3 },
                  volumeMounts: [{ name: 'data-0', mountPath: '/data/0' }],
                },
              ],
            },
          },
          volumeClaimTemplates: [
            {
              metadata: { name: 'data-0' },
              spec: { accessModes: ['ReadWriteOnce'], storageClassName: localStorageClass, resources: { requests: { storage: '1Gi' } } },
            },
          ],
        },
      },
    });
  });

  afterAll(async () => {
    await agent?.stop({ deregister: true });
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('runs StatefulSet pods as Running and Ready processes on their own pod IPs, with bound local volumes', async () => {
    const pods = await readyPods(3);
    const nodes = new Set(pods.map((p) => p.spec?.nodeName));
    expect(nodes.size).toBe(3);
    for (const pod of pods) {
      const me = await whoami(pod);
      expect(me.pod).toBe(pod.metadata?.name);
      expect(me.myPod).toBe(pod.metadata?.name);
      expect(me.node).toBe(pod.spec?.nodeName);
      expect(me.ip).toBe(pod.status?.podIP);
      expect(pod.status?.podIP).toMatch(/^127\.2\.\d+\.\d+$/);
      expect(pod.status?.containerStatuses?.[0]).toMatchObject({ name: 'web', ready: true, started: true, restartCount: 0 });
      // The volume mount reached the process as its volume's directory.
      const claim = await core.readNamespacedPersistentVolumeClaim({ name: `data-0-${pod.metadata?.name}`, namespace });
      expect(claim.status?.phase).toBe('Bound');
      const pv = await core.readPersistentVolume({ name: claim.spec!.volumeName! });
      expect(pv.spec?.nodeAffinity?.required?.nodeSelectorTerms[0]?.matchExpressions?.[0]?.values).toEqual([pod.spec?.nodeName]);
      expect(me.dataDir).toBe(pv.spec?.local?.path);
      expect(await readFile(join(pv.spec!.local!.path, 'starts.log'), 'utf8')).toContain(pod.metadata!.name!);
    }
  });

  it('restarts a killed process, counting the restart and recording how it ended', async () => {
    const [pod] = await readyPods(3);
    const name = pod!.metadata!.name!;
    const before = await whoami(pod!);
    agent.killPod(namespace, name, 'SIGKILL');
    const killed = await waitFor(
      async () => {
        const p = await core.readNamespacedPod({ name, namespace });
        return p.status?.containerStatuses?.[0]?.restartCount === 1 && isReady(p) ? p : undefined;
      },
      { description: `${name} to restart once and be Ready`, timeoutMs: 30_000 },
    );
    expect(killed.status?.containerStatuses?.[0]?.lastState?.terminated).toMatchObject({ exitCode: 137, reason: 'Error' });
    expect((await whoami(killed)).pid).not.toBe(before.pid);

    // A process that exits with its own code and termination message is reported with both.
    await fetch(`http://${killed.status?.podIP}:8080/exit?code=3&message=${encodeURIComponent('volume fault: /data/0 is read-only')}`);
    const exited = await waitFor(
      async () => {
        const p = await core.readNamespacedPod({ name, namespace });
        return p.status?.containerStatuses?.[0]?.restartCount === 2 ? p : undefined;
      },
      { description: `${name} to restart a second time`, timeoutMs: 30_000 },
    );
    expect(exited.status?.containerStatuses?.[0]?.lastState?.terminated).toMatchObject({
      exitCode: 3,
      reason: 'Error',
      message: 'volume fault: /data/0 is read-only',
    });
  });

  it('stops a deleted pod within its grace period and removes it', async () => {
    const pods = await readyPods(3);
    const pod = pods[1]!;
    const { pid } = await whoami(pod);
    const started = Date.now();
    await core.deleteNamespacedPod({ name: pod.metadata!.name!, namespace });
    if (process.env.MESHWORK_NODE_AGENT_LOG) console.log(new Date().toISOString(), 'test deleted', pod.metadata?.name, pod.metadata?.uid);
    await waitFor(() => !processAlive(pid), { description: `pid ${pid} to exit`, timeoutMs: 5000, intervalMs: 50 });
    expect(Date.now() - started).toBeLessThan(5000);
    await waitFor(
      async () => {
        const p = await core.readNamespacedPod({ name: pod.metadata!.name!, namespace }).catch(() => undefined);
        return p === undefined || p.metadata?.uid !== pod.metadata?.uid;
      },
      { description: 'the deleted pod object to be removed', timeoutMs: 10_000 },
    );
    // The StatefulSet recreates it on the same volume.
    await readyPods(3);
  });

  it('makes a volume read-only and writable again, and corrupts a file in it', async () => {
    const [pod] = await readyPods(3);
    const claim = `data-0-${pod!.metadata!.name!}`;
    const write = async (text: string): Promise<{ status: number; body: string }> => {
      const res = await fetch(`http://${pod!.status?.podIP}:8080/write?file=blob&text=${text}`);
      return { status: res.status, body: await res.text() };
    };
    expect(await write('0123456789abcdef')).toEqual({ status: 200, body: 'written' });
    await agent.setVolumeReadOnly(namespace, claim, true);
    try {
      expect(await write('again')).toEqual({ status: 500, body: 'EROFS' });
    } finally {
      await agent.setVolumeReadOnly(namespace, claim, false);
    }
    expect(await write('0123456789abcdef')).toEqual({ status: 200, body: 'written' });
    await agent.corruptFile(namespace, claim, 'blob', 4, 2);
    const bytes = await readFile(join(await agent.volumePath(namespace, claim), 'blob'));
    expect(bytes.toString('latin1', 0, 4)).toBe('0123');
    expect([bytes[4], bytes[5]]).toEqual(['4'.charCodeAt(0) ^ 0xff, '5'.charCodeAt(0) ^ 0xff]);
    expect(bytes.toString('latin1', 6)).toBe('6789abcdef');
  });

  it("deletes a claim's volume and its directory with the claim, and provisions a fresh one for the recreated pod", async () => {
    const pods = await readyPods(3);
    const pod = pods[2]!;
    const claimName = `data-0-${pod.metadata!.name!}`;
    const claim = await core.readNamespacedPersistentVolumeClaim({ name: claimName, namespace });
    const oldVolume = claim.spec!.volumeName!;
    const oldPath = (await core.readPersistentVolume({ name: oldVolume })).spec!.local!.path;
    // What the watchdog does to recreate a member's volume: delete the claim, then the pod.
    await core.deleteNamespacedPersistentVolumeClaim({ name: claimName, namespace });
    await core.deleteNamespacedPod({ name: pod.metadata!.name!, namespace });
    await waitFor(async () => (await core.readPersistentVolume({ name: oldVolume }).catch(() => undefined)) === undefined, {
      description: `volume ${oldVolume} to be deleted`,
      timeoutMs: 60_000,
    });
    await waitFor(() => !existsSync(oldPath), { description: `${oldPath} to be removed`, timeoutMs: 10_000 });
    const [fresh] = (await readyPods(3)).filter((p) => p.metadata?.name === pod.metadata?.name);
    const newClaim = await core.readNamespacedPersistentVolumeClaim({ name: claimName, namespace });
    expect(newClaim.spec?.volumeName).not.toBe(oldVolume);
    expect((await whoami(fresh!)).dataDir).not.toBe(oldPath);
  });

  it('powering a node off makes the controller manager mark it NotReady and taint it; powering it on clears that', async () => {
    const nodeName = `e2e-${suffix}-3`;
    await agent.powerOff(nodeName, 'freeze');
    await waitFor(
      async () => {
        const node = await core.readNode({ name: nodeName });
        const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
        return ready?.status === 'Unknown' && node.spec?.taints?.some((t) => t.key === 'node.kubernetes.io/unreachable');
      },
      { description: `${nodeName} to be NotReady and tainted unreachable`, timeoutMs: 60_000, intervalMs: 1000 },
    );
    await agent.powerOn(nodeName);
    await waitFor(
      async () => {
        const node = await core.readNode({ name: nodeName });
        const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
        return ready?.status === 'True' && !node.spec?.taints?.some((t) => t.key.startsWith('node.kubernetes.io/'));
      },
      { description: `${nodeName} to be Ready and untainted again`, timeoutMs: 60_000, intervalMs: 1000 },
    );
  });

  it('leaves no process behind after teardown', async () => {
    const pids = (await readyPods(3)).map((p) => p.status?.containerStatuses?.[0]?.containerID?.replace('meshwork-local://', ''));
    expect(pids.every((p) => p && processAlive(Number(p)))).toBe(true);
    await agent.stop();
    await waitFor(() => pids.every((p) => !processAlive(Number(p))), {
      description: 'every pod process to exit',
      timeoutMs: 10_000,
      intervalMs: 50,
    });
  });
});
