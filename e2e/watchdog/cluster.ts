// A local cluster for the watchdog's end-to-end tests and benchmark: process-backed nodes,
// the operator as its own process under the shipped RBAC (outside the nodes, so powering a
// node off never takes the operator with it), a dedicated etcd for the partitions' data
// (so a test may stop it), the shared MinIO, and MeshPartitions whose data-plane members
// run as real processes.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoordinationV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import type { MeshPartition, WatchdogSpec } from '../../operator/src/api/v1alpha1.ts';
import {
  installCrds,
  kubectl,
  kubectlOk,
  rbacManifest,
  startOperator,
  type OperatorProcess,
  type StartOperatorOptions,
} from '../operator/harness.ts';
import { mintServiceAccountKubeconfig, startControlPlane, type ControlPlane } from '../harness/controlplane.ts';
import { startEtcd, type EtcdServer } from '../harness/etcd.ts';
import { waitFor } from '../harness/wait.ts';
import { NodeAgent } from '../node-agent/agent.ts';

export interface WatchdogClusterOptions {
  adminKubeconfig: string;
  minio: { endpoint: string; accessKey: string; secretKey: string; bucket: string };
  /** Where logs go (the operator's, the node agent's). */
  logDir: string;
  nodeCount?: number;
  /** Second octet of the nodes' loopback addresses; distinct per concurrent agent. */
  addressBlock: number;
  maxUnhealthyPercent?: number;
  /** Log the node agent's lines to stdout. */
  verbose?: boolean;
}

const isReady = (pod: V1Pod): boolean => pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

/** The operator, nodes, etcd and a namespace for partitions, with helpers to drive them. */
export class WatchdogCluster {
  readonly suffix = randomBytes(3).toString('hex');
  readonly namespace = `watchdog-${this.suffix}`;
  readonly operatorNamespace = `watchdog-operator-${this.suffix}`;
  /** The partitions' administrator token (Secret `admin`). */
  readonly adminToken = randomBytes(24).toString('base64url');
  readonly options: WatchdogClusterOptions;
  readonly kc = new KubeConfig();
  readonly core: CoreV1Api;
  readonly leases: CoordinationV1Api;
  readonly custom: CustomObjectsApi;
  agent!: NodeAgent;
  etcd!: EtcdServer;
  operator!: OperatorProcess;
  #operatorOptions: StartOperatorOptions | undefined;
  #operatorStarts = 0;
  #dataDir = '';
  #etcdDir = '';
  #etcdPort = 0;
  /** Slot ranges handed out so far: partitions alive at once must not claim the same slots. */
  readonly #slots = new Map<string, number>();

  constructor(options: WatchdogClusterOptions) {
    this.options = options;
    this.kc.loadFromFile(options.adminKubeconfig);
    this.core = this.kc.makeApiClient(CoreV1Api);
    this.leases = this.kc.makeApiClient(CoordinationV1Api);
    this.custom = this.kc.makeApiClient(CustomObjectsApi);
  }

  /** Starts the nodes, etcd and the operator, and creates the namespace and its Secrets. */
  async start(): Promise<void> {
    const admin = this.options.adminKubeconfig;
    this.#dataDir = await mkdtemp(join(tmpdir(), 'meshwork-watchdog-nodes-'));
    this.#etcdDir = await mkdtemp(join(tmpdir(), 'meshwork-watchdog-etcd-'));
    this.agent = new NodeAgent({
      kubeconfig: admin,
      dataDir: this.#dataDir,
      nodeCount: this.options.nodeCount ?? 4,
      namePrefix: `wd-${this.suffix}`,
      addressBlock: this.options.addressBlock,
      backoff: { baseMs: 1000, maxMs: 10_000, resetAfterMs: 60_000 },
      ...(this.options.verbose
        ? {
            log: (message: string, fields?: Record<string, unknown>) =>
              console.log(new Date().toISOString(), message, JSON.stringify(fields)),
          }
        : {}),
    });
    const [etcd] = await Promise.all([
      startEtcd({ dataDir: this.#etcdDir, name: `etcd-watchdog-${this.suffix}` }),
      this.agent.start(),
      installCrds(admin),
    ]);
    this.etcd = etcd;
    this.#etcdPort = Number(new URL(etcd.endpoint).port);
    await kubectlOk(admin, ['create', 'namespace', this.operatorNamespace]);
    await kubectlOk(admin, ['create', 'namespace', this.namespace]);
    await kubectlOk(admin, ['apply', '-f', '-'], rbacManifest(this.operatorNamespace, this.suffix));
    const { minio } = this.options;
    await kubectlOk(
      admin,
      ['apply', '-n', this.namespace, '-f', '-'],
      [
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 's3' },
          stringData: { accessKeyId: minio.accessKey, secretAccessKey: minio.secretKey },
        }),
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'admin' },
          stringData: { token: this.adminToken },
        }),
      ].join('\n---\n'),
    );
    this.#operatorOptions = {
      kubeconfig: await mintServiceAccountKubeconfig(admin, this.operatorNamespace, 'meshwork-operator'),
      namespace: this.operatorNamespace,
      watchNamespace: this.namespace,
      logFile: join(this.options.logDir, `operator-watchdog-${this.suffix}.log`),
      leaseName: `meshwork-operator-${this.suffix}`,
      extraEnv: { MESHWORK_WATCHDOG_MAX_UNHEALTHY_PERCENT: String(this.options.maxUnhealthyPercent ?? 50), MESHWORK_LOG_LEVEL: 'debug' },
    };
    this.operator = await startOperator(this.#operatorOptions);
  }

  /** Stops the operator (it releases its Lease) and starts a new process with the same settings: a leader change. */
  async restartOperator(): Promise<void> {
    await this.operator.process.stop();
    this.#operatorStarts += 1;
    const logFile = this.#operatorOptions!.logFile.replace(/\.log$/, `-${this.#operatorStarts}.log`);
    this.operator = await startOperator({ ...this.#operatorOptions!, logFile });
  }

  /** Stops everything it started and removes what it created. */
  async stop(): Promise<void> {
    const admin = this.options.adminKubeconfig;
    await this.operator?.process.stop();
    await kubectl(admin, ['delete', 'namespace', this.namespace, this.operatorNamespace, '--wait=false']);
    await kubectl(admin, [
      'delete',
      'clusterrole,clusterrolebinding',
      `meshwork-operator-${this.suffix}`,
      `meshwork-operator-nodes-${this.suffix}`,
    ]);
    await kubectl(admin, ['delete', '-n', 'kube-node-lease', 'role,rolebinding', `meshwork-operator-node-leases-${this.suffix}`]);
    await this.agent?.stop({ deregister: true });
    await this.etcd?.stop();
    if (this.#dataDir) await rm(this.#dataDir, { recursive: true, force: true });
    if (this.#etcdDir) await rm(this.#etcdDir, { recursive: true, force: true });
  }

  /**
   * Makes a member's volume read-only; resolves to a function that undoes it. The claim may be
   * gone by then (the watchdog recreates it), so the undo unmounts the directory itself.
   */
  async breakVolume(claim: string): Promise<() => Promise<void>> {
    const path = await this.agent.volumePath(this.namespace, claim);
    await this.agent.setVolumeReadOnly(this.namespace, claim, true);
    return async () => {
      await promisify(execFile)('umount', [path]).catch(() => undefined);
    };
  }

  /** Stops the partitions' etcd (its data is kept). */
  async stopEtcd(): Promise<void> {
    await this.etcd.process.stop();
  }

  /** Starts the partitions' etcd again on the same address and data. */
  async restartEtcd(): Promise<void> {
    this.etcd = await startEtcd({ dataDir: this.#etcdDir, port: this.#etcdPort, name: `etcd-watchdog-${this.suffix}` });
  }

  /** Applies a 3-member partition with the given watchdog settings (and each member's CPU request, 100m by default). */
  async applyPartition(name: string, watchdog: Partial<WatchdogSpec>, replicas = 3, cpu = '100m'): Promise<void> {
    if (!this.#slots.has(name)) this.#slots.set(name, this.#slots.size % 16);
    const block = this.#slots.get(name)!;
    const body = {
      apiVersion: 'meshwork.io/v1alpha1',
      kind: 'MeshPartition',
      metadata: { name, namespace: this.namespace },
      spec: {
        replicas,
        slots: [{ start: block * 256, end: block * 256 + 255 }],
        resources: { cpu, memory: '256Mi' },
        storage: { volumes: 2, size: '1Gi', storageClassName: 'meshwork-local' },
        adminTokenSecretRef: { name: 'admin' },
        stores: {
          etcd: { endpoints: [this.etcd.endpoint] },
          s3: { endpoint: this.options.minio.endpoint, bucket: this.options.minio.bucket, credentialsSecretRef: { name: 's3' } },
        },
        watchdog,
      },
    };
    await kubectlOk(this.options.adminKubeconfig, ['apply', '--server-side', '-f', '-'], JSON.stringify(body));
  }

  /** Deletes a partition and waits until its pods are gone. */
  async deletePartition(name: string): Promise<void> {
    await kubectl(this.options.adminKubeconfig, ['delete', '-n', this.namespace, 'meshpartition', name, '--wait=true', '--timeout=60s']);
    await waitFor(async () => (await this.pods(name)).length === 0, {
      description: `the pods of ${name} to be gone`,
      timeoutMs: 90_000,
      intervalMs: 500,
    });
  }

  /** Deletes every partition in the namespace: a scenario that failed leaves its partition behind. */
  async deleteAllPartitions(): Promise<void> {
    for (const p of await this.partitionNames()) await this.deletePartition(p);
  }

  /** Names of the partitions in the namespace. */
  async partitionNames(): Promise<string[]> {
    const list = (await this.custom.listNamespacedCustomObject({
      group: 'meshwork.io',
      version: 'v1alpha1',
      namespace: this.namespace,
      plural: 'meshpartitions',
    })) as { items: MeshPartition[] };
    return list.items.map((p) => p.metadata.name);
  }

  /** Merges `spec.watchdog` fields into a partition. */
  async patchWatchdog(name: string, watchdog: Partial<WatchdogSpec>): Promise<void> {
    await kubectlOk(this.options.adminKubeconfig, [
      'patch',
      '-n',
      this.namespace,
      'meshpartition',
      name,
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { watchdog } }),
    ]);
  }

  /** The partition as stored. */
  async partition(name: string): Promise<MeshPartition> {
    return (await this.custom.getNamespacedCustomObject({
      group: 'meshwork.io',
      version: 'v1alpha1',
      namespace: this.namespace,
      plural: 'meshpartitions',
      name,
    })) as MeshPartition;
  }

  /** The partition's pods (including ones being deleted). */
  async pods(name: string): Promise<V1Pod[]> {
    return (await this.core.listNamespacedPod({ namespace: this.namespace, labelSelector: `meshwork.io/partition=${name}` })).items;
  }

  /** One member pod, if it exists. */
  async pod(name: string): Promise<V1Pod | undefined> {
    return (await this.core.listNamespacedPod({ namespace: this.namespace, fieldSelector: `metadata.name=${name}` })).items[0];
  }

  /** Waits until all `replicas` members are Running and Ready; returns the pods. */
  async waitForReadyMembers(name: string, replicas: number, timeoutMs: number): Promise<V1Pod[]> {
    return waitFor(
      async () => {
        const pods = (await this.pods(name)).filter((p) => !p.metadata?.deletionTimestamp);
        return pods.length === replicas && pods.every((p) => p.status?.phase === 'Running' && isReady(p)) ? pods : undefined;
      },
      { description: `${replicas} Ready members of ${name}`, timeoutMs, intervalMs: 250 },
    );
  }

  /** Waits until the member pod is Ready and not `previousUid`; returns it. */
  async waitForMemberReady(pod: string, timeoutMs: number, previousUid?: string, previousRestarts?: number): Promise<V1Pod> {
    // With `previousRestarts`, a restarted container in the same pod (the kubelet's liveness
    // remedy) counts as well as a new pod.
    const renewed = (p: V1Pod): boolean =>
      p.metadata?.uid !== previousUid || (previousRestarts !== undefined && containerRestarts(p) > previousRestarts);
    return waitFor(
      async () => {
        const p = await this.pod(pod);
        return p && !p.metadata?.deletionTimestamp && renewed(p) && p.status?.phase === 'Running' && isReady(p) ? p : undefined;
      },
      {
        description: `member ${pod} to be Ready${previousUid ? ' in a new pod or a restarted container' : ''}`,
        timeoutMs,
        intervalMs: 200,
      },
    );
  }

  /** When the node's kubelet Lease was last renewed (ms). */
  async leaseRenewed(node: string): Promise<number> {
    const lease = await this.leases.readNamespacedLease({ name: node, namespace: 'kube-node-lease' });
    return new Date(lease.spec?.renewTime as unknown as string).getTime();
  }

  /** Events recorded on an object in the namespace, by reason. */
  async eventReasons(kind: string, name: string): Promise<string[]> {
    const events = await this.core.listNamespacedEvent({
      namespace: this.namespace,
      fieldSelector: `involvedObject.kind=${kind},involvedObject.name=${name}`,
    });
    return events.items.map((e) => e.reason ?? '');
  }
}

/** Restarts of all of a pod's containers, as its status reports them. */
export function containerRestarts(pod: V1Pod): number {
  return (pod.status?.containerStatuses ?? []).reduce((sum, c) => sum + c.restartCount, 0);
}

/**
 * What a watchdog test file runs on: a control plane of its own (the cluster installs the CRDs
 * and cluster-wide RBAC with kubectl, which would stand in the way of the Helm chart's tests on
 * the shared one) and a WatchdogCluster on it. `stop` stops whatever of them started.
 */
export class WatchdogTestBed {
  controlPlane: ControlPlane | undefined;
  cluster: WatchdogCluster | undefined;

  /** Starts the control plane and the cluster, its nodes on loopback block `addressBlock`. */
  async start(minio: WatchdogClusterOptions['minio'], addressBlock: number): Promise<WatchdogCluster> {
    this.controlPlane = await startControlPlane({
      // As the shared one: a node is NotReady 20 s after its last heartbeat.
      extraArgs: { 'kube-controller-manager': ['--node-monitor-grace-period=20s', '--node-monitor-period=2s'] },
    });
    this.cluster = new WatchdogCluster({
      adminKubeconfig: this.controlPlane.adminKubeconfig,
      minio,
      logDir: process.env.MESHWORK_WATCHDOG_LOG_DIR ?? join(this.controlPlane.dir, 'logs'),
      addressBlock,
      verbose: Boolean(process.env.MESHWORK_NODE_AGENT_LOG),
    });
    await this.cluster.start();
    return this.cluster;
  }

  /** Stops the cluster, then the control plane. */
  async stop(): Promise<void> {
    await this.cluster?.stop();
    await this.controlPlane?.stop();
  }
}
