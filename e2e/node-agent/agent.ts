// A node agent that speaks the Kubernetes API as kubelets do, for N local nodes: it registers
// Nodes, renews their Leases and Ready condition, runs the pods bound to them as local
// processes on their own pod IPs (loopback addresses, or with `network` each node a network
// namespace running kube-proxy, ADR 27), provisions `meshwork-local` volumes, and injects
// faults (power a node off and on, freeze or kill a pod, break a volume).
import { execFile } from 'node:child_process';
import { mkdir, open, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  ApiException,
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  ListWatch,
  StorageV1Api,
  V1MicroTime,
  Watch,
  type KubernetesObject,
  type V1Node,
  type V1PersistentVolume,
  type V1PersistentVolumeClaim,
  type V1Pod,
} from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { repoRoot, requireBinary } from '../harness/binaries.ts';
import { ManagedProcess } from '../harness/process.ts';
import {
  addPodAddress,
  createNodeNetwork,
  ipCommand,
  removeNodeNetworks,
  removePodAddress,
  setNodeLink,
  type NetworkPlan,
  type NodeNetworkPlan,
} from './network.ts';
import { PodRunner } from './pod-runner.ts';

const run = promisify(execFile);

/** Runs a read-modify-write until it does not meet a 409 Conflict (at most `attempts` times). */
async function retryOnConflict(update: () => Promise<void>, attempts = 5): Promise<void> {
  for (let i = 1; ; i++) {
    try {
      return await update();
    } catch (err) {
      if (!(err instanceof ApiException && err.code === 409) || i >= attempts) throw err;
    }
  }
}

/** The StorageClass the agent provisions, and its provisioner name. */
export const localStorageClass = 'meshwork-local';
export const localProvisioner = 'meshwork.io/local';

export interface NodeAgentOptions {
  /** Kubeconfig with rights over nodes, leases, pods, PVs and PVCs (the admin's, for a local cluster). */
  kubeconfig: string;
  /** Where pods, volumes and logs live. */
  dataDir: string;
  nodeCount?: number;
  /** Node names are `${namePrefix}-${i}` (default "mw-node"). */
  namePrefix?: string;
  /** Second octet of the node and pod addresses 127.X.i.k (default 1), to keep agents apart. */
  addressBlock?: number;
  /**
   * Images the agent can run, with the command each runs when a container names none, and the
   * directory it runs in (default: the repository, whose sources the pods then run).
   */
  images?: { pattern: RegExp; entrypoint: string[]; workingDir?: string }[];
  /** Heartbeat period for Leases and the Ready condition (default 5 s). */
  heartbeatMs?: number;
  leaseDurationSeconds?: number;
  backoff?: { baseMs: number; maxMs: number; resetAfterMs: number };
  /**
   * Real networking (ADR 27): nodes become network namespaces on this plan's bridge (which the
   * caller has made, see createBridge), each with kube-proxy, and pods resolve names through
   * `nameserver`. The kubeconfig's server must be reachable from the namespaces then.
   * Without it, pods get loopback addresses 127.X.i.k in the host's namespace.
   */
  network?: { plan: NetworkPlan; nameserver: string };
  /** Structured log sink; silent by default. */
  log?: (message: string, fields?: Record<string, unknown>) => void;
}

/** A Meshwork image runs the project's role entry point. */
export const meshworkImagePattern = /^(?:[\w.-]+(?::\d+)?\/)?meshwork\/meshwork(?::[\w.-]+)?(?:@sha256:[a-f0-9]+)?$/;

export const meshworkImages = [{ pattern: meshworkImagePattern, entrypoint: ['node', 'meshwork.ts'] }];

/**
 * The Meshwork image run from its unpacked root filesystem (`make up IMAGE=1`): the image's own
 * Node binary and `/app`, as its entrypoint and working directory say, instead of the work
 * tree's sources. Processes are not confined to the root filesystem: the node agent runs pods
 * as host processes (ADR 20), and the image's files are what they execute.
 */
export function imageRootfsImages(rootfs: string): NonNullable<NodeAgentOptions['images']> {
  return [
    {
      pattern: meshworkImagePattern,
      entrypoint: [join(rootfs, 'usr/local/bin/node'), join(rootfs, 'app/meshwork.ts')],
      workingDir: join(rootfs, 'app'),
    },
  ];
}

interface LocalNode {
  name: string;
  index: number;
  ip: string;
  powered: boolean;
  runners: Map<string, PodRunner>;
  freeIPs: string[];
  informer: ListWatch<V1Pod> | undefined;
  heartbeat: NodeJS.Timeout | undefined;
  /** The node's namespace, with real networking. */
  network: NodeNetworkPlan | undefined;
  kubeProxy: ManagedProcess | undefined;
}

/** Runs N local nodes against a Kubernetes API server. */
export class NodeAgent {
  readonly options: Required<Omit<NodeAgentOptions, 'log' | 'network'>> & Pick<NodeAgentOptions, 'log' | 'network'>;
  readonly kc: KubeConfig;
  readonly core: CoreV1Api;
  readonly nodes = new Map<string, LocalNode>();
  #leases: CoordinationV1Api;
  #storage: StorageV1Api;
  #watches: ListWatch<KubernetesObject>[] = [];
  #stopped = false;
  #restartTimers = new Set<NodeJS.Timeout>();

  constructor(options: NodeAgentOptions) {
    this.options = {
      nodeCount: 3,
      namePrefix: 'mw-node',
      addressBlock: 1,
      images: meshworkImages,
      heartbeatMs: 5000,
      leaseDurationSeconds: 40,
      backoff: { baseMs: 10_000, maxMs: 300_000, resetAfterMs: 600_000 },
      ...options,
    };
    this.kc = new KubeConfig();
    this.kc.loadFromFile(options.kubeconfig);
    this.core = this.kc.makeApiClient(CoreV1Api);
    this.#leases = this.kc.makeApiClient(CoordinationV1Api);
    this.#storage = this.kc.makeApiClient(StorageV1Api);
  }

  #log(message: string, fields?: Record<string, unknown>): void {
    this.options.log?.(message, fields);
  }

  /** Registers the nodes, starts heartbeats, the pod watches and the volume provisioner. */
  async start(): Promise<void> {
    await mkdir(this.options.dataDir, { recursive: true });
    await this.#ensureStorageClass();
    for (let i = 1; i <= this.options.nodeCount; i++) {
      const name = `${this.options.namePrefix}-${i}`;
      const block = this.options.addressBlock;
      const network = this.options.network?.plan.nodes[i - 1];
      if (this.options.network && !network) throw new Error(`the network plan has no node ${i}`);
      const node: LocalNode = {
        name,
        index: i,
        ip: network?.ip ?? `127.${block}.${i}.1`,
        powered: true,
        runners: new Map(),
        freeIPs: network ? [...network.podIPs] : Array.from({ length: 253 }, (_, k) => `127.${block}.${i}.${k + 2}`),
        informer: undefined,
        heartbeat: undefined,
        network,
        kubeProxy: undefined,
      };
      this.nodes.set(name, node);
      if (network && this.options.network) {
        await createNodeNetwork(this.options.network.plan, network, {
          nameserver: this.options.network.nameserver,
          search: ['svc.cluster.local', 'cluster.local'],
        });
      }
      await this.#register(node);
      this.#startHeartbeat(node);
      this.#watchPods(node);
    }
    if (this.options.network) {
      await mkdir(join(this.options.dataDir, 'kube-proxy'), { recursive: true });
      for (const node of this.nodes.values()) node.kubeProxy = this.#startKubeProxy(node);
      await Promise.all([...this.nodes.values()].map((node) => this.#waitKubeProxy(node)));
    }
    this.#watchVolumes();
  }

  /** Stops everything; pod processes are killed. Node objects stay unless `deregister`. */
  async stop(options: { deregister?: boolean } = {}): Promise<void> {
    this.#stopped = true;
    for (const t of this.#restartTimers) clearTimeout(t);
    for (const w of this.#watches) await w.stop();
    for (const node of this.nodes.values()) {
      if (node.heartbeat) clearInterval(node.heartbeat);
      await node.informer?.stop();
      await Promise.all([...node.runners.values()].map((r) => r.kill()));
      await node.kubeProxy?.stop(5000);
      if (options.deregister) {
        await this.core.deleteNode({ name: node.name }).catch(() => undefined);
        await this.#leases.deleteNamespacedLease({ name: node.name, namespace: 'kube-node-lease' }).catch(() => undefined);
      }
    }
    await removeNodeNetworks([...this.nodes.values()].flatMap((n) => (n.network ? [n.network] : [])));
  }

  // ---- kube-proxy --------------------------------------------------------------------------

  /** Runs kube-proxy (nftables mode) inside a node's namespace, as a node of a real cluster does. */
  #startKubeProxy(node: LocalNode): ManagedProcess {
    const network = node.network!;
    const logDir = join(this.options.dataDir, 'kube-proxy');
    return ManagedProcess.start({
      component: `kube-proxy ${node.name}`,
      binary: ipCommand(),
      logFile: join(logDir, `${node.name}.log`),
      args: [
        'netns',
        'exec',
        network.netns,
        requireBinary('kube-proxy'),
        `--kubeconfig=${this.options.kubeconfig}`,
        `--hostname-override=${node.name}`,
        `--bind-address=${node.ip}`,
        '--proxy-mode=nftables',
        `--cluster-cidr=${this.options.network!.plan.cidr}`,
        // The conntrack table is the host's; a namespace must not resize it.
        '--conntrack-max-per-core=0',
        `--metrics-bind-address=${node.ip}:10249`,
        `--healthz-bind-address=${node.ip}:10256`,
        '--v=1',
      ],
    });
  }

  /** Waits until kube-proxy has programmed the node's rules once (its /healthz answers 200). */
  async #waitKubeProxy(node: LocalNode): Promise<void> {
    await node.kubeProxy!.waitReady(
      async () =>
        (await fetch(`http://${node.ip}:10256/healthz`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined))?.ok ?? false,
      { timeoutMs: 120_000, what: 'to sync its rules' },
    );
  }

  // ---- nodes -------------------------------------------------------------------------------

  async #ensureStorageClass(): Promise<void> {
    try {
      await this.#storage.createStorageClass({
        body: {
          metadata: { name: localStorageClass },
          provisioner: localProvisioner,
          volumeBindingMode: 'WaitForFirstConsumer',
          reclaimPolicy: 'Delete',
        },
      });
    } catch (err) {
      if (!(err instanceof ApiException && err.code === 409)) throw err;
    }
  }

  #nodeStatus(node: LocalNode, now: Date): NonNullable<V1Node['status']> {
    const capacity = { cpu: '2', memory: '8Gi', pods: '110', 'ephemeral-storage': '100Gi' };
    const ok = (type: string, reason: string, message: string) => ({
      type,
      status: 'False',
      reason,
      message,
      lastHeartbeatTime: now,
      lastTransitionTime: now,
    });
    return {
      capacity,
      allocatable: capacity,
      addresses: [
        { type: 'InternalIP', address: node.ip },
        { type: 'Hostname', address: node.name },
      ],
      conditions: [
        ok('MemoryPressure', 'KubeletHasSufficientMemory', 'local node agent has sufficient memory available'),
        ok('DiskPressure', 'KubeletHasNoDiskPressure', 'local node agent has no disk pressure'),
        ok('PIDPressure', 'KubeletHasSufficientPID', 'local node agent has sufficient PID available'),
        {
          type: 'Ready',
          status: 'True',
          reason: 'KubeletReady',
          message: 'local node agent is posting ready status',
          lastHeartbeatTime: now,
          lastTransitionTime: now,
        },
      ],
      nodeInfo: {
        architecture: 'amd64',
        bootID: `${node.name}-boot`,
        containerRuntimeVersion: 'meshwork-local://1',
        kernelVersion: '',
        kubeProxyVersion: '',
        kubeletVersion: 'v1.36.5',
        machineID: node.name,
        operatingSystem: 'linux',
        osImage: 'Meshwork local node',
        systemUUID: node.name,
      },
      daemonEndpoints: { kubeletEndpoint: { Port: 0 } },
    };
  }

  async #register(node: LocalNode): Promise<void> {
    const zone = `zone-${String.fromCharCode(96 + (((node.index - 1) % 3) + 1))}`;
    const body: V1Node = {
      metadata: {
        name: node.name,
        labels: {
          'kubernetes.io/hostname': node.name,
          'kubernetes.io/os': 'linux',
          'kubernetes.io/arch': 'amd64',
          'topology.kubernetes.io/zone': zone,
          'meshwork.io/local-node': 'true',
        },
      },
      status: this.#nodeStatus(node, new Date()),
    };
    try {
      await this.core.createNode({ body });
      this.#log('Registered node', { node: node.name, ip: node.ip, zone });
    } catch (err) {
      if (!(err instanceof ApiException && err.code === 409)) throw err;
    }
    await this.#postStatus(node);
    await this.#renewLease(node);
  }

  /** Posts the node's Ready condition with a fresh heartbeat (what brings a lost node back). */
  async #postStatus(node: LocalNode): Promise<void> {
    await retryOnConflict(async () => {
      const current = await this.core.readNode({ name: node.name });
      const status = this.#nodeStatus(node, new Date());
      for (const c of status.conditions ?? []) {
        const before = current.status?.conditions?.find((p) => p.type === c.type);
        if (before?.status === c.status && before.lastTransitionTime) c.lastTransitionTime = before.lastTransitionTime;
      }
      current.status = { ...current.status, ...status };
      await this.core.replaceNodeStatus({ name: node.name, body: current });
    });
  }

  async #renewLease(node: LocalNode): Promise<void> {
    const spec = { holderIdentity: node.name, leaseDurationSeconds: this.options.leaseDurationSeconds, renewTime: new V1MicroTime() };
    try {
      await retryOnConflict(async () => {
        const lease = await this.#leases.readNamespacedLease({ name: node.name, namespace: 'kube-node-lease' });
        lease.spec = { ...lease.spec, ...spec };
        await this.#leases.replaceNamespacedLease({ name: node.name, namespace: 'kube-node-lease', body: lease });
      });
    } catch (err) {
      if (!(err instanceof ApiException && err.code === 404)) throw err;
      const owner = await this.core.readNode({ name: node.name });
      await this.#leases.createNamespacedLease({
        namespace: 'kube-node-lease',
        body: {
          metadata: {
            name: node.name,
            ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: node.name, uid: owner.metadata?.uid ?? '' }],
          },
          spec,
        },
      });
    }
  }

  #startHeartbeat(node: LocalNode): void {
    let beats = 0;
    node.heartbeat = setInterval(() => {
      if (!node.powered || this.#stopped) return;
      beats++;
      // The Lease is the heartbeat; the Ready condition is refreshed less often, as kubelets do.
      const work = beats % 6 === 0 ? Promise.all([this.#renewLease(node), this.#postStatus(node)]) : this.#renewLease(node);
      work.catch((err: unknown) => this.#log('Failed to renew node heartbeat', { node: node.name, error: String(err) }));
    }, this.options.heartbeatMs);
  }

  // ---- pods --------------------------------------------------------------------------------

  /** Starts a watch and keeps it alive: client-node's informer stops on errors other than 410. */
  #keepWatching<T extends KubernetesObject>(what: string, informer: ListWatch<T>): void {
    let delay = 500;
    informer.on('connect', () => {
      delay = 500;
    });
    informer.on('error', (err: unknown) => {
      if (this.#stopped) return;
      this.#log('Watch failed; restarting', { watch: what, error: String(err), delayMs: delay });
      const timer = setTimeout(() => {
        this.#restartTimers.delete(timer);
        if (!this.#stopped) informer.start().catch(() => undefined);
      }, delay);
      this.#restartTimers.add(timer);
      delay = Math.min(delay * 2, 30_000);
    });
    informer.start().catch(() => undefined);
  }

  #watchPods(node: LocalNode): void {
    const selector = `spec.nodeName=${node.name}`;
    const informer = new ListWatch<V1Pod>(
      '/api/v1/pods',
      new Watch(this.kc),
      () => this.core.listPodForAllNamespaces({ fieldSelector: selector }),
      false,
      undefined,
      selector,
    );
    const onPod = (pod: V1Pod): void =>
      void this.#syncPod(node, pod).catch((err: unknown) =>
        this.#log('Failed to sync pod', { pod: pod.metadata?.name, error: String(err) }),
      );
    informer.on('add', onPod);
    informer.on('update', onPod);
    informer.on('delete', (pod) => {
      const runner = node.runners.get(pod.metadata?.uid ?? '');
      if (!runner) return;
      node.runners.delete(runner.uid);
      void runner.kill().then(() => this.#releaseIP(node, runner.podIP));
    });
    node.informer = informer;
    this.#keepWatching(`pods on ${node.name}`, informer);
  }

  async #syncPod(node: LocalNode, pod: V1Pod): Promise<void> {
    if (!node.powered || this.#stopped) return;
    const uid = pod.metadata?.uid ?? '';
    const existing = node.runners.get(uid);
    if (existing) {
      existing.update(pod);
      return;
    }
    if (pod.metadata?.deletionTimestamp) {
      // Deleted before it ever ran here: confirm at once.
      await this.core
        .deleteNamespacedPod({
          name: pod.metadata.name ?? '',
          namespace: pod.metadata.namespace ?? '',
          gracePeriodSeconds: 0,
          body: { gracePeriodSeconds: 0, preconditions: { uid } },
        })
        .catch(() => undefined);
      return;
    }
    if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return;
    const ip = node.freeIPs.shift();
    if (!ip) throw new Error(`node ${node.name} has no free pod IP left`);
    if (node.network) await addPodAddress(node.network, ip);
    const podDir = join(this.options.dataDir, 'pods', uid);
    const runner = new PodRunner(
      {
        core: this.core,
        repoRoot,
        nodeName: node.name,
        hostIP: node.ip,
        netns: node.network?.netns,
        podDir,
        entrypoint: (image) => this.options.images.find((i) => i.pattern.test(image))?.entrypoint,
        workingDir: (image) => this.options.images.find((i) => i.pattern.test(image))?.workingDir ?? repoRoot,
        claimPath: (namespace, claim) => this.#claimPath(namespace, claim),
        serviceAccountKubeconfig: (p, dir) => this.#serviceAccountFiles(p, dir),
        backoff: this.options.backoff,
        log: (message, fields) => this.#log(message, { node: node.name, ...fields }),
      },
      pod,
      ip,
    );
    node.runners.set(uid, runner);
    this.#log('Admitted pod', { node: node.name, pod: `${pod.metadata?.namespace}/${pod.metadata?.name}`, podIP: ip });
    await runner.start();
  }

  /** Returns a pod's address to its node's pool (and takes it off the node's interface). */
  async #releaseIP(node: LocalNode, ip: string): Promise<void> {
    if (node.network) await removePodAddress(node.network, ip);
    node.freeIPs.push(ip);
  }

  async #claimPath(namespace: string, claim: string): Promise<string> {
    const pvc = await this.core.readNamespacedPersistentVolumeClaim({ name: claim, namespace });
    const volumeName = pvc.spec?.volumeName;
    if (!volumeName) throw new Error(`PersistentVolumeClaim ${namespace}/${claim} is not bound yet`);
    const pv = await this.core.readPersistentVolume({ name: volumeName });
    const path = pv.spec?.local?.path ?? pv.spec?.hostPath?.path;
    if (!path) throw new Error(`PersistentVolume ${volumeName} has no local path`);
    await mkdir(path, { recursive: true });
    return path;
  }

  /** Writes the ServiceAccount token, CA, namespace and a kubeconfig using them into `dir`. */
  async #serviceAccountFiles(pod: V1Pod, dir: string): Promise<string | undefined> {
    const namespace = pod.metadata?.namespace ?? 'default';
    const serviceAccount = pod.spec?.serviceAccountName ?? 'default';
    const token = await this.core.createNamespacedServiceAccountToken({
      name: serviceAccount,
      namespace,
      body: {
        spec: {
          audiences: [],
          expirationSeconds: 86_400,
          boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata?.name ?? '', uid: pod.metadata?.uid ?? '' },
        },
      },
    });
    const cluster = this.kc.getCurrentCluster();
    if (!cluster || !token.status?.token) return undefined;
    await writeFile(join(dir, 'token'), token.status.token, { mode: 0o600 });
    await writeFile(join(dir, 'namespace'), namespace);
    const kubeconfig = join(dir, 'kubeconfig');
    const user = `system:serviceaccount:${namespace}:${serviceAccount}`;
    await writeFile(
      kubeconfig,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'local', cluster: { server: cluster.server, 'certificate-authority-data': cluster.caData } }],
        users: [{ name: user, user: { tokenFile: join(dir, 'token') } }],
        contexts: [{ name: user, context: { cluster: 'local', user, namespace } }],
        'current-context': user,
      }),
      { mode: 0o600 },
    );
    return kubeconfig;
  }

  // ---- volumes -----------------------------------------------------------------------------

  #watchVolumes(): void {
    const claims = new ListWatch<V1PersistentVolumeClaim>(
      '/api/v1/persistentvolumeclaims',
      new Watch(this.kc),
      () => this.core.listPersistentVolumeClaimForAllNamespaces(),
      false,
    );
    const onClaim = (pvc: V1PersistentVolumeClaim): void =>
      void this.#provision(pvc).catch((err: unknown) =>
        this.#log('Failed to provision volume', { claim: pvc.metadata?.name, error: String(err) }),
      );
    claims.on('add', onClaim);
    claims.on('update', onClaim);
    const volumes = new ListWatch<V1PersistentVolume>(
      '/api/v1/persistentvolumes',
      new Watch(this.kc),
      () => this.core.listPersistentVolume(),
      false,
    );
    const onVolume = (pv: V1PersistentVolume): void =>
      void this.#reclaim(pv).catch((err: unknown) =>
        this.#log('Failed to delete volume', { volume: pv.metadata?.name, error: String(err) }),
      );
    volumes.on('add', onVolume);
    volumes.on('update', onVolume);
    this.#watches.push(claims, volumes);
    this.#keepWatching('persistentvolumeclaims', claims);
    this.#keepWatching('persistentvolumes', volumes);
  }

  /** Creates a local PersistentVolume for a claim the scheduler placed on one of our nodes. */
  async #provision(pvc: V1PersistentVolumeClaim): Promise<void> {
    const selectedNode = pvc.metadata?.annotations?.['volume.kubernetes.io/selected-node'];
    if (pvc.spec?.storageClassName !== localStorageClass || pvc.spec.volumeName || !selectedNode || !this.nodes.has(selectedNode)) return;
    if (pvc.metadata?.deletionTimestamp || !this.nodes.get(selectedNode)?.powered) return;
    const uid = pvc.metadata?.uid ?? '';
    const name = `pvc-${uid}`;
    const path = join(this.options.dataDir, 'volumes', selectedNode, name);
    await mkdir(path, { recursive: true });
    try {
      await this.core.createPersistentVolume({
        body: {
          metadata: {
            name,
            annotations: { 'pv.kubernetes.io/provisioned-by': localProvisioner },
            labels: { 'meshwork.io/node': selectedNode },
          },
          spec: {
            capacity: { storage: pvc.spec.resources?.requests?.storage ?? '1Gi' },
            accessModes: pvc.spec.accessModes ?? ['ReadWriteOnce'],
            persistentVolumeReclaimPolicy: 'Delete',
            storageClassName: localStorageClass,
            claimRef: {
              apiVersion: 'v1',
              kind: 'PersistentVolumeClaim',
              namespace: pvc.metadata?.namespace,
              name: pvc.metadata?.name,
              uid,
            },
            local: { path },
            nodeAffinity: {
              required: {
                nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [selectedNode] }] }],
              },
            },
          },
        },
      });
      this.#log('Provisioned volume', { claim: `${pvc.metadata?.namespace}/${pvc.metadata?.name}`, volume: name, node: selectedNode });
    } catch (err) {
      if (!(err instanceof ApiException && err.code === 409)) throw err;
    }
  }

  /** Deletes a released volume this provisioner made, and its directory. */
  async #reclaim(pv: V1PersistentVolume): Promise<void> {
    if (pv.metadata?.annotations?.['pv.kubernetes.io/provisioned-by'] !== localProvisioner) return;
    if (pv.status?.phase !== 'Released' || pv.spec?.persistentVolumeReclaimPolicy !== 'Delete') return;
    const path = pv.spec.local?.path;
    if (path?.startsWith(join(this.options.dataDir, 'volumes'))) await rm(path, { recursive: true, force: true });
    await this.core.deletePersistentVolume({ name: pv.metadata?.name ?? '' }).catch((err: unknown) => {
      if (!(err instanceof ApiException && err.code === 404)) throw err;
    });
    this.#log('Deleted volume', { volume: pv.metadata?.name });
  }

  // ---- faults ------------------------------------------------------------------------------

  #node(name: string): LocalNode {
    const node = this.nodes.get(name);
    if (!node) throw new Error(`no local node named ${name} (nodes: ${[...this.nodes.keys()].join(', ')})`);
    return node;
  }

  #runner(namespace: string, name: string): PodRunner {
    for (const node of this.nodes.values()) {
      for (const runner of node.runners.values()) if (runner.namespace === namespace && runner.name === name) return runner;
    }
    throw new Error(`pod ${namespace}/${name} is not running on a local node`);
  }

  /**
   * Powers a node off: heartbeats stop and its pods' processes are frozen or killed; with real
   * networking its veth goes down and its kube-proxy is frozen too.
   */
  async powerOff(name: string, mode: 'freeze' | 'kill' = 'kill'): Promise<void> {
    const node = this.#node(name);
    node.powered = false;
    await node.informer?.stop();
    node.informer = undefined;
    for (const runner of node.runners.values()) {
      if (mode === 'freeze') runner.setFrozen(true);
      else await runner.kill();
    }
    if (mode === 'kill') {
      for (const runner of node.runners.values()) await this.#releaseIP(node, runner.podIP);
      node.runners.clear();
    }
    if (node.network) {
      // With real networking the node also drops off the network, kube-proxy with it.
      node.kubeProxy?.signal('SIGSTOP');
      await setNodeLink(node.network, false);
    }
    this.#log('Powered off node', { node: name, mode });
  }

  /** Powers a node on: heartbeats resume with Ready, frozen processes thaw, pods resync. */
  async powerOn(name: string): Promise<void> {
    const node = this.#node(name);
    node.powered = true;
    if (node.network) {
      await setNodeLink(node.network, true);
      node.kubeProxy?.signal('SIGCONT');
    }
    for (const runner of node.runners.values()) {
      runner.setFrozen(false);
      runner.resync();
    }
    await this.#postStatus(node);
    await this.#renewLease(node);
    this.#watchPods(node);
    this.#log('Powered on node', { node: name });
  }

  /**
   * Freezes (SIGSTOP) a pod's processes: alive but unresponsive. `probes: 'pause'` (the
   * default) also stops probing them, a hang the kubelet cannot see; `'continue'` probes on as
   * a kubelet does, so the liveness probe restarts the container.
   */
  freezePod(namespace: string, name: string, options: { probes?: 'pause' | 'continue' } = {}): void {
    this.#runner(namespace, name).setFrozen(true, (options.probes ?? 'pause') === 'pause');
  }

  thawPod(namespace: string, name: string): void {
    this.#runner(namespace, name).setFrozen(false);
  }

  /** Sends a signal (SIGKILL by default) to a pod's container process. */
  killPod(namespace: string, name: string, signal: NodeJS.Signals = 'SIGKILL', container?: string): void {
    this.#runner(namespace, name).signalContainer(signal, container);
  }

  /** Host directory of a claim's volume. */
  async volumePath(namespace: string, claim: string): Promise<string> {
    return this.#claimPath(namespace, claim);
  }

  /** Makes a claim's volume read-only (a read-only bind mount over it) or writable again. */
  async setVolumeReadOnly(namespace: string, claim: string, readOnly: boolean): Promise<void> {
    const path = await this.#claimPath(namespace, claim);
    try {
      if (readOnly) {
        await run('mount', ['--bind', path, path]);
        await run('mount', ['-o', 'remount,bind,ro', path]);
      } else {
        await run('umount', [path]);
      }
    } catch (err) {
      throw new Error(
        `could not make ${path} ${readOnly ? 'read-only' : 'writable'} (needs root and mount): ${String((err as { stderr?: string }).stderr ?? err)}`,
        {
          cause: err,
        },
      );
    }
  }

  /** Flips the bits of `length` bytes at `offset` in a file of a claim's volume. */
  async corruptFile(namespace: string, claim: string, file: string, offset = 0, length = 16): Promise<void> {
    const path = join(await this.#claimPath(namespace, claim), file);
    const handle = await open(path, 'r+');
    try {
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, offset);
      if (bytesRead === 0) throw new Error(`${path} has no bytes at offset ${offset}`);
      for (let i = 0; i < bytesRead; i++) buffer[i] = buffer[i]! ^ 0xff;
      await handle.write(buffer, 0, bytesRead, offset);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}
