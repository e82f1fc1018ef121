// One pod on a local node: its volumes as directories, its containers as processes bound to
// the pod IP, probes, restarts with backoff, status reported as a kubelet reports it, and
// graceful deletion.
import { constants as osConstants } from 'node:os';
import { mkdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ApiException,
  type CoreV1Api,
  type V1Container,
  type V1ContainerState,
  type V1ContainerStatus,
  type V1Pod,
  type V1PodCondition,
  type V1Probe,
  type V1Volume,
} from '@kubernetes/client-node';
import { defaultTerminationMessagePath } from '@meshwork/contract';
import { ManagedProcess, tailFile } from '../harness/process.ts';
import {
  ContainerConfigError,
  containerCommand,
  containerEnv,
  pathMapper,
  type PodFacts,
  type ReferenceResolver,
} from './container-env.ts';
import { ipCommand } from './network.ts';
import { ProbeTracker, probeOnce, restartDelayMs } from './probes.ts';

/** What a pod runner needs from its node agent. */
export interface PodHost {
  core: CoreV1Api;
  repoRoot: string;
  nodeName: string;
  hostIP: string;
  /** The node's network namespace: containers run inside it (`ip netns exec`), ADR 27. */
  netns?: string | undefined;
  /** The directory for this pod's files (containers' logs, emptyDirs, projected volumes). */
  podDir: string;
  /** The command a Meshwork image runs when the container names none; undefined for other images. */
  entrypoint(image: string): string[] | undefined;
  /** The directory a container of the image runs in (relative commands resolve there too). */
  workingDir(image: string): string;
  /** Host directory of a PersistentVolumeClaim's volume, once bound. */
  claimPath(namespace: string, claim: string): Promise<string>;
  /** A kubeconfig file for the pod's ServiceAccount (undefined when it has no token). */
  serviceAccountKubeconfig(pod: V1Pod, dir: string): Promise<string | undefined>;
  backoff: { baseMs: number; maxMs: number; resetAfterMs: number };
  log(message: string, fields?: Record<string, unknown>): void;
}

type State =
  | { kind: 'waiting'; reason: string; message?: string }
  | { kind: 'running'; startedAt: Date }
  | { kind: 'terminated'; exitCode: number; signal?: number; reason: string; message?: string; startedAt: Date; finishedAt: Date };

class ContainerRun {
  readonly spec: V1Container;
  process: ManagedProcess | undefined;
  state: State = { kind: 'waiting', reason: 'ContainerCreating' };
  lastTerminated: Extract<State, { kind: 'terminated' }> | undefined;
  restartCount = 0;
  consecutiveCrashes = 0;
  ready = false;
  started = false;
  timers: NodeJS.Timeout[] = [];
  restartTimer: NodeJS.Timeout | undefined;
  terminationFile = '';
  instance = 0;

  constructor(spec: V1Container) {
    this.spec = spec;
  }
}

const signalNumbers = osConstants.signals as Record<string, number>;

/** Runs one pod's containers as local processes and reports their status. */
export class PodRunner {
  readonly uid: string;
  readonly #host: PodHost;
  #pod: V1Pod;
  readonly #facts: PodFacts;
  readonly #containers: ContainerRun[];
  #deleting = false;
  #frozen = false;
  #stopped = false;
  #volumes = new Map<string, string>();
  #startTime = new Date();
  #syncTimer: NodeJS.Timeout | undefined;
  #syncing: Promise<void> = Promise.resolve();
  #lastReported = '';

  constructor(host: PodHost, pod: V1Pod, podIP: string) {
    this.#host = host;
    this.#pod = pod;
    this.uid = pod.metadata?.uid ?? '';
    this.#facts = { podIP, hostIP: host.hostIP, nodeName: host.nodeName };
    this.#containers = (pod.spec?.containers ?? []).map((c) => new ContainerRun(c));
  }

  get pod(): V1Pod {
    return this.#pod;
  }

  get podIP(): string {
    return this.#facts.podIP;
  }

  get namespace(): string {
    return this.#pod.metadata?.namespace ?? '';
  }

  get name(): string {
    return this.#pod.metadata?.name ?? '';
  }

  /** Host directory of a volume of this pod, once the pod has started. */
  volumePath(volume: string): string | undefined {
    return this.#volumes.get(volume);
  }

  /** Pids of the running container processes. */
  get pids(): number[] {
    return this.#containers.flatMap((c) => (c.process && !c.process.exitStatus ? [c.process.pid] : []));
  }

  /** Prepares the volumes and starts every container. */
  async start(): Promise<void> {
    this.#startTime = new Date();
    await mkdir(this.#host.podDir, { recursive: true });
    try {
      for (const volume of this.#pod.spec?.volumes ?? []) this.#volumes.set(volume.name, await this.#prepareVolume(volume));
    } catch (err) {
      for (const c of this.#containers)
        c.state = { kind: 'waiting', reason: 'ContainerCreating', message: `volume setup failed: ${String(err)}` };
      this.#host.log('Failed to prepare volumes', { pod: this.#key(), error: String(err) });
      this.#scheduleSync();
      throw err;
    }
    for (const c of this.#containers) await this.#startContainer(c);
    this.#scheduleSync();
  }

  /** Applies a newer version of the pod object; a deletion timestamp starts graceful termination. */
  update(pod: V1Pod): void {
    this.#pod = pod;
    // Someone else changed what we report (the node lifecycle controller marks pods of a lost
    // node NotReady): put our view back, as the kubelet's status manager does.
    const reportedReady = pod.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
    if (this.#lastReported && reportedReady !== this.#ready()) this.resync();
    if (pod.metadata?.deletionTimestamp && !this.#deleting) {
      const grace = pod.metadata.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
      void this.terminate(grace * 1000, true);
    }
  }

  /** Stops every container (SIGTERM, then SIGKILL after the grace period); deletes the pod object if asked. */
  async terminate(graceMs: number, deleteObject: boolean): Promise<void> {
    this.#deleting = true;
    for (const c of this.#containers) this.#clearTimers(c);
    this.#frozen = false;
    await Promise.all(this.#containers.flatMap((c) => (c.process ? [c.process.stop(graceMs)] : [])));
    this.#stopped = true;
    if (deleteObject) {
      try {
        await this.#host.core.deleteNamespacedPod({
          name: this.name,
          namespace: this.namespace,
          gracePeriodSeconds: 0,
          body: { gracePeriodSeconds: 0, preconditions: { uid: this.uid } },
        });
        this.#host.log('Deleted pod', { pod: this.#key() });
      } catch (err) {
        if (!(err instanceof ApiException && (err.code === 404 || err.code === 409))) throw err;
      }
    }
    await rm(this.#host.podDir, { recursive: true, force: true });
  }

  /** Kills the processes at once and forgets the pod (its node was powered off with kill, or the agent stops). */
  async kill(): Promise<void> {
    this.#deleting = true;
    for (const c of this.#containers) this.#clearTimers(c);
    await Promise.all(this.#containers.flatMap((c) => (c.process ? [c.process.stop(0)] : [])));
    this.#stopped = true;
  }

  /**
   * Freezes (SIGSTOP) or thaws (SIGCONT) every container process. With `pauseProbes` the
   * probes pause while frozen (a powered-off node, or a hang the kubelet's probes cannot see);
   * without, they go on as a kubelet's would, so liveness restarts the hung container.
   */
  setFrozen(frozen: boolean, pauseProbes = true): void {
    this.#frozen = frozen && pauseProbes;
    for (const c of this.#containers) c.process?.signal(frozen ? 'SIGSTOP' : 'SIGCONT');
  }

  /** Sends a signal to one container's process (the first container by default). */
  signalContainer(signal: NodeJS.Signals, container?: string): void {
    const c = container ? this.#containers.find((x) => x.spec.name === container) : this.#containers[0];
    c?.process?.signal(signal);
  }

  #key(): string {
    return `${this.namespace}/${this.name}`;
  }

  #clearTimers(c: ContainerRun): void {
    for (const t of c.timers) clearInterval(t);
    c.timers = [];
    if (c.restartTimer) clearTimeout(c.restartTimer);
    c.restartTimer = undefined;
  }

  async #prepareVolume(volume: V1Volume): Promise<string> {
    const dir = join(this.#host.podDir, 'volumes', volume.name);
    if (volume.persistentVolumeClaim) return this.#host.claimPath(this.namespace, volume.persistentVolumeClaim.claimName);
    if (volume.hostPath) return volume.hostPath.path;
    await mkdir(dir, { recursive: true });
    if (volume.emptyDir) return dir;
    if (volume.configMap) {
      const cm = await this.#host.core.readNamespacedConfigMap({ name: volume.configMap.name ?? '', namespace: this.namespace });
      await this.#writeItems(dir, cm.data ?? {}, volume.configMap.items);
      return dir;
    }
    if (volume.secret) {
      const secret = await this.#host.core.readNamespacedSecret({ name: volume.secret.secretName ?? '', namespace: this.namespace });
      const data = Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
      await this.#writeItems(dir, data, volume.secret.items);
      return dir;
    }
    if (volume.projected) {
      // The ServiceAccount admission plugin adds kube-api-access-*: a token, the cluster CA and the namespace.
      for (const source of volume.projected.sources ?? []) {
        if (source.serviceAccountToken) await this.#host.serviceAccountKubeconfig(this.#pod, dir);
        if (source.configMap) {
          const cm = await this.#host.core
            .readNamespacedConfigMap({ name: source.configMap.name ?? '', namespace: this.namespace })
            .catch(() => undefined);
          if (cm) await this.#writeItems(dir, cm.data ?? {}, source.configMap.items);
        }
        if (source.downwardAPI) {
          for (const item of source.downwardAPI.items ?? []) {
            if (item.fieldRef?.fieldPath === 'metadata.namespace') await writeFile(join(dir, item.path), this.namespace);
          }
        }
      }
      return dir;
    }
    if (volume.downwardAPI) {
      for (const item of volume.downwardAPI.items ?? []) {
        if (item.fieldRef?.fieldPath === 'metadata.namespace') await writeFile(join(dir, item.path), this.namespace);
        if (item.fieldRef?.fieldPath === 'metadata.name') await writeFile(join(dir, item.path), this.name);
      }
      return dir;
    }
    throw new ContainerConfigError(`volume ${volume.name} has a type the local node agent does not support`);
  }

  async #writeItems(dir: string, data: Record<string, string>, items?: { key: string; path: string }[]): Promise<void> {
    const entries = items?.length ? items.map((i) => [i.path, data[i.key] ?? ''] as const) : Object.entries(data);
    for (const [path, value] of entries) {
      await mkdir(join(dir, path, '..'), { recursive: true });
      await writeFile(join(dir, path), value);
    }
  }

  #resolver(): ReferenceResolver {
    const core = this.#host.core;
    const namespace = this.namespace;
    const configMap = async (name: string) =>
      (await core.readNamespacedConfigMap({ name, namespace }).catch(() => undefined))?.data ?? undefined;
    const secret = async (name: string) => {
      const s = await core.readNamespacedSecret({ name, namespace }).catch(() => undefined);
      return s
        ? Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]))
        : undefined;
    };
    return {
      configMap,
      secret,
      configMapKey: async (name, key) => (await configMap(name))?.[key],
      secretKey: async (name, key) => (await secret(name))?.[key],
    };
  }

  async #startContainer(c: ContainerRun): Promise<void> {
    if (this.#deleting) return;
    const spec = c.spec;
    const containerDir = join(this.#host.podDir, 'containers', spec.name);
    await mkdir(containerDir, { recursive: true });
    c.terminationFile = join(containerDir, 'termination-log');
    await writeFile(c.terminationFile, '');
    await truncate(c.terminationFile, 0);
    let argv: string[];
    let env: Record<string, string>;
    try {
      const entrypoint = this.#host.entrypoint(spec.image ?? '');
      if (!entrypoint) {
        c.state = {
          kind: 'waiting',
          reason: 'ErrImageNeverPull',
          message: `the local node agent runs only Meshwork images, not ${spec.image}`,
        };
        this.#scheduleSync();
        return;
      }
      const mounts = (spec.volumeMounts ?? []).map((m) => {
        const base = this.#volumes.get(m.name);
        if (base === undefined) throw new ContainerConfigError(`volume mount ${m.name} names no volume of the pod`);
        return { podPath: m.mountPath, hostPath: m.subPath ? join(base, m.subPath) : base };
      });
      mounts.push({ podPath: spec.terminationMessagePath ?? defaultTerminationMessagePath, hostPath: c.terminationFile });
      const toHost = pathMapper(mounts);
      const resolved = await containerEnv(this.#pod, spec, this.#facts, this.#resolver());
      env = Object.fromEntries(Object.entries(resolved).map(([k, v]) => [k, toHost(v)]));
      env.MESHWORK_TERMINATION_MESSAGE_PATH ??= c.terminationFile;
      argv = containerCommand(spec, entrypoint, resolved).map(toHost);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      c.state = { kind: 'waiting', reason: 'CreateContainerConfigError', message };
      this.#host.log('Failed to configure container', { pod: this.#key(), container: spec.name, error: message });
      this.#scheduleSync();
      c.restartTimer = setTimeout(() => void this.#startContainer(c), this.#host.backoff.baseMs);
      return;
    }
    const kubeconfig = join(this.#host.podDir, 'volumes');
    const saKubeconfig = (this.#pod.spec?.volumes ?? []).find((v) => v.projected?.sources?.some((s) => s.serviceAccountToken));
    if (saKubeconfig && env.KUBECONFIG === undefined) env.KUBECONFIG = join(kubeconfig, saKubeconfig.name, 'kubeconfig');
    const [command, ...args] = argv;
    const binary = command === 'node' ? process.execPath : (command ?? '');
    c.instance++;
    const workingDir = this.#host.workingDir(spec.image ?? '');
    const path = binary.startsWith('/') ? binary : join(workingDir, binary);
    // `ip netns exec` enters the namespace and execs the command: the pid is the container's.
    const netns = this.#host.netns;
    c.process = ManagedProcess.start({
      component: `${this.#key()}/${spec.name}`,
      binary: netns ? ipCommand() : path,
      args: netns ? ['netns', 'exec', netns, path, ...args] : args,
      cwd: workingDir,
      logFile: join(containerDir, `${c.restartCount}.log`),
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: containerDir, ...env },
    });
    const startedAt = new Date();
    c.state = { kind: 'running', startedAt };
    c.started = spec.startupProbe === undefined;
    c.ready = false;
    this.#host.log('Started container', { pod: this.#key(), container: spec.name, pid: c.process.pid, podIP: this.podIP });
    const proc = c.process;
    void proc.exited.then((exit) => this.#onExit(c, proc, startedAt, exit.code, exit.signal));
    this.#startProbes(c, proc);
    this.#scheduleSync();
  }

  #startProbes(c: ContainerRun, proc: ManagedProcess): void {
    const namedPorts = Object.fromEntries((c.spec.ports ?? []).filter((p) => p.name).map((p) => [p.name!, p.containerPort]));
    const every = (probe: V1Probe, onResult: (ok: boolean) => void): void => {
      const period = (probe.periodSeconds ?? 10) * 1000;
      const begin = setTimeout(
        () => {
          const tick = async (): Promise<void> => {
            if (this.#frozen || c.process !== proc || proc.exitStatus) return;
            onResult(await probeOnce(probe, this.podIP, namedPorts));
          };
          void tick();
          c.timers.push(setInterval(() => void tick(), period));
        },
        (probe.initialDelaySeconds ?? 0) * 1000,
      );
      c.timers.push(begin);
    };
    if (c.spec.readinessProbe) {
      const tracker = new ProbeTracker(c.spec.readinessProbe, false);
      every(c.spec.readinessProbe, (ok) => {
        const ready = tracker.record(ok) && c.started;
        if (ready !== c.ready) {
          c.ready = ready;
          this.#scheduleSync();
        }
      });
    } else {
      c.ready = true;
    }
    if (c.spec.livenessProbe) {
      const tracker = new ProbeTracker(c.spec.livenessProbe, true);
      every(c.spec.livenessProbe, (ok) => {
        if (!tracker.record(ok) && !this.#deleting) {
          this.#host.log('Killed container that failed its liveness probe', { pod: this.#key(), container: c.spec.name });
          const grace = (this.#pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000;
          void proc.stop(grace);
        }
      });
    }
    if (c.spec.startupProbe) {
      const tracker = new ProbeTracker(c.spec.startupProbe, false);
      every(c.spec.startupProbe, (ok) => {
        if (!c.started && tracker.record(ok)) {
          c.started = true;
          if (!c.spec.readinessProbe) c.ready = true;
          this.#scheduleSync();
        }
      });
    }
  }

  async #onExit(c: ContainerRun, proc: ManagedProcess, startedAt: Date, code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    if (c.process !== proc) return;
    this.#clearTimers(c);
    const finishedAt = new Date();
    const exitCode = code ?? 128 + (signal ? (signalNumbers[signal] ?? 0) : 0);
    let message = (await readFile(c.terminationFile, 'utf8').catch(() => '')).slice(0, 4096).trim();
    if (!message && exitCode !== 0 && c.spec.terminationMessagePolicy === 'FallbackToLogsOnError') {
      message = tailFile(proc.spec.logFile, 80).slice(-2048);
    }
    const terminated = {
      kind: 'terminated' as const,
      exitCode,
      ...(signal ? { signal: signalNumbers[signal] } : {}),
      reason: exitCode === 0 ? 'Completed' : 'Error',
      ...(message ? { message } : {}),
      startedAt,
      finishedAt,
    };
    c.ready = false;
    c.state = terminated;
    this.#host.log('Container exited', { pod: this.#key(), container: c.spec.name, exitCode, signal });
    if (this.#deleting) {
      this.#scheduleSync();
      return;
    }
    const policy = this.#pod.spec?.restartPolicy ?? 'Always';
    if (policy === 'Never' || (policy === 'OnFailure' && exitCode === 0)) {
      this.#scheduleSync();
      return;
    }
    const ranFor = finishedAt.getTime() - startedAt.getTime();
    c.consecutiveCrashes = ranFor >= this.#host.backoff.resetAfterMs ? 1 : c.consecutiveCrashes + 1;
    const delay = restartDelayMs(c.consecutiveCrashes, this.#host.backoff.baseMs, this.#host.backoff.maxMs);
    c.lastTerminated = terminated;
    c.restartCount++;
    c.state = {
      kind: 'waiting',
      reason: 'CrashLoopBackOff',
      message: `back-off ${Math.round(delay / 1000)}s restarting failed container=${c.spec.name} pod=${this.name}`,
    };
    this.#scheduleSync();
    c.restartTimer = setTimeout(() => void this.#startContainer(c), delay);
  }

  #scheduleSync(): void {
    if (this.#syncTimer) return;
    this.#syncTimer = setTimeout(() => {
      this.#syncTimer = undefined;
      this.#syncing = this.#syncing
        .then(() => this.#syncStatus())
        .catch((err: unknown) => {
          this.#host.log('Failed to report pod status', { pod: this.#key(), error: String(err) });
          setTimeout(() => this.#scheduleSync(), 1000);
        });
    }, 50);
  }

  /** Reports the pod's status again even if it did not change since the last report. */
  resync(): void {
    this.#lastReported = '';
    this.#scheduleSync();
  }

  #ready(): boolean {
    return this.#containers.length > 0 && this.#containers.every((c) => c.ready && c.state.kind === 'running');
  }

  /** Whether the agent should keep reporting status (not once the pod is gone). */
  get active(): boolean {
    return !this.#stopped;
  }

  /** Writes the pod's status through the status subresource, retrying on conflicts. */
  async #syncStatus(): Promise<void> {
    if (this.#stopped) return;
    for (let attempt = 0; attempt < 5; attempt++) {
      let current: V1Pod;
      try {
        current = await this.#host.core.readNamespacedPod({ name: this.name, namespace: this.namespace });
      } catch (err) {
        if (err instanceof ApiException && err.code === 404) return;
        throw err;
      }
      if (current.metadata?.uid !== this.uid) return;
      const status = this.#status(current);
      const serialized = JSON.stringify(status);
      if (serialized === this.#lastReported) return;
      current.status = status;
      try {
        await this.#host.core.replaceNamespacedPodStatus({ name: this.name, namespace: this.namespace, body: current });
        this.#lastReported = serialized;
        return;
      } catch (err) {
        if (err instanceof ApiException && err.code === 409) continue;
        if (err instanceof ApiException && err.code === 404) return;
        throw err;
      }
    }
  }

  #status(current: V1Pod): NonNullable<V1Pod['status']> {
    const now = new Date();
    const containerStatuses: V1ContainerStatus[] = this.#containers.map((c) => ({
      name: c.spec.name,
      image: c.spec.image ?? '',
      imageID: `meshwork-local://${c.spec.image ?? ''}`,
      containerID: c.process ? `meshwork-local://${c.process.pid}` : undefined,
      ready: c.ready && c.state.kind === 'running',
      started: c.state.kind === 'running' && c.started,
      restartCount: c.restartCount,
      state: stateOf(c.state),
      lastState: c.lastTerminated ? stateOf(c.lastTerminated) : {},
    }));
    const allReady = containerStatuses.length > 0 && containerStatuses.every((s) => s.ready);
    const policy = this.#pod.spec?.restartPolicy ?? 'Always';
    const terminated = this.#containers.every((c) => c.state.kind === 'terminated');
    const phase =
      terminated && policy !== 'Always'
        ? this.#containers.every((c) => c.state.kind === 'terminated' && c.state.exitCode === 0)
          ? 'Succeeded'
          : 'Failed'
        : this.#containers.some((c) => c.state.kind === 'running' || c.restartCount > 0)
          ? 'Running'
          : 'Pending';
    const previous = current.status?.conditions ?? [];
    const condition = (type: string, status: boolean, reason?: string): V1PodCondition => {
      const value = status ? 'True' : 'False';
      const before = previous.find((p) => p.type === type);
      return {
        type,
        status: value,
        lastTransitionTime: before?.status === value ? before.lastTransitionTime : now,
        ...(reason && !status ? { reason } : {}),
      };
    };
    const ours = [
      condition('Initialized', true),
      condition('ContainersReady', allReady, 'ContainersNotReady'),
      condition('Ready', allReady, 'ContainersNotReady'),
    ];
    const kept = previous.filter((p) => !ours.some((o) => o.type === p.type));
    return {
      ...current.status,
      phase,
      conditions: [...kept, ...ours],
      hostIP: this.#facts.hostIP,
      hostIPs: [{ ip: this.#facts.hostIP }],
      podIP: this.#facts.podIP,
      podIPs: [{ ip: this.#facts.podIP }],
      startTime: current.status?.startTime ?? this.#startTime,
      containerStatuses,
    };
  }
}

function stateOf(state: State): V1ContainerState {
  switch (state.kind) {
    case 'waiting':
      return { waiting: { reason: state.reason, ...(state.message ? { message: state.message } : {}) } };
    case 'running':
      return { running: { startedAt: state.startedAt } };
    case 'terminated':
      return {
        terminated: {
          exitCode: state.exitCode,
          ...(state.signal ? { signal: state.signal } : {}),
          reason: state.reason,
          ...(state.message ? { message: state.message } : {}),
          startedAt: state.startedAt,
          finishedAt: state.finishedAt,
        },
      };
  }
}
