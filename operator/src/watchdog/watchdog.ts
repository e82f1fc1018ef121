// The watchdog's I/O: informers on nodes, node Leases and member claims, the deep-health
// prober, the members' owner leases in etcd (ADR 29), the cluster-wide pause, and carrying out the actions the ladder chose (delete a
// pod, mark a node unsuitable, fence a lost node, delete a member's claims), with Events
// and metrics. It runs inside the MeshPartition reconcile, so only the leader acts.
import type { KubernetesObject, V1Lease, V1Node, V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import {
  allPartitionPodsSelector,
  dataplaneHttpPort,
  outOfServiceAnnotation,
  partitionLabel,
  unsuitableNodeLabelPrefix,
} from '@meshwork/contract';
import type { MeshPartition, MeshPartitionStatus } from '../api/v1alpha1.ts';
import { ResilientInformer } from '../controller/informer.ts';
import { WatchdogActionError } from '../errors.ts';
import { KubeApiError, type KubeClient, type ResourceRef } from '../kube/client.ts';
import type { OperatorMetrics } from '../metrics.ts';
import { unsuitableNodeLabel } from '../specs/common.ts';
import type { EventRecorder } from '../meshpartition/events.ts';
import { assessPartition, type Assessment, type MemberAction } from './assess.ts';
import { ownerLeaseExpiryGraceMs, probationServed, refusals, systemicFailure, watchdogSettings, type Refusal } from './ladder.ts';
import { OwnerLeases } from './owner-leases.ts';
import { DeepProber } from './prober.ts';
import { memberClaimNames, memberSignals, nodeReady, outOfServiceTaint, slimClaim, slimLease, slimNode } from './signals.ts';

/** How long a watchdog-deleted member gets to stop: it is failing, so a graceful stop helps nobody. */
export const remediationGraceSeconds = 1;
/** How often the leader sweeps nodes for marks and taints it no longer needs. */
const sweepIntervalMs = 5000;

export interface WatchdogOptions {
  client: KubeClient;
  log: Logger;
  metrics: OperatorMetrics;
  events: EventRecorder;
  /** Above this share of unhealthy members (all partitions) nothing is repaired. */
  maxUnhealthyPercent: number;
  /** Every partition's key, for the pause to reach them all. */
  partitionKeys: () => string[];
  /** The pods of every partition (for probing). */
  memberPods: () => readonly V1Pod[];
  partition: (key: string) => MeshPartition | undefined;
  /** Queues a partition for reconcile. */
  enqueue: (key: string) => void;
  now?: () => number;
}

const nodeRef: ResourceRef = { apiVersion: 'v1', resource: 'nodes' };

/** Signals, bounds and actions of the watchdog. */
export class Watchdog {
  readonly nodes: ResilientInformer<V1Node>;
  readonly leases: ResilientInformer<V1Lease>;
  readonly claims: ResilientInformer<V1PersistentVolumeClaim>;
  readonly prober: DeepProber;
  readonly ownerLeases: OwnerLeases;
  readonly #options: WatchdogOptions;
  /** Unhealthy and total members per partition, as of its last assessment. */
  readonly #counts = new Map<string, { unhealthy: number; total: number; levels: number[]; refused: Refusal[] }>();
  /** Each node's Ready state and since when this process has seen it so (its own clock, immune to the node's). */
  readonly #nodeReady = new Map<string, { ready: boolean; since: number }>();
  /** Members (namespace/partition/pod) this process has seen healthy: only they can recover (a new member is starting). */
  readonly #seenHealthy = new Set<string>();
  /** The unhealthy spell (its start, ms) last recorded as a recovery, per member: a pass repeated before its status is written records it once. */
  readonly #recoveredSpell = new Map<string, number>();
  #paused = false;
  #resumedAt: number | undefined;
  #sweep: NodeJS.Timeout | undefined;

  constructor(options: WatchdogOptions, watchNamespace: string | undefined) {
    this.#options = options;
    const { client, log, metrics } = options;
    const restarted = (resource: string) => () => metrics.informerRestarts.inc({ resource });
    this.nodes = new ResilientInformer<V1Node>({ client, ref: nodeRef, log, transform: slimNode, restarted: restarted('nodes') });
    this.leases = new ResilientInformer<V1Lease>({
      client,
      ref: { apiVersion: 'coordination.k8s.io/v1', resource: 'leases', namespace: 'kube-node-lease' },
      log,
      transform: slimLease,
      restarted: restarted('leases'),
    });
    this.claims = new ResilientInformer<V1PersistentVolumeClaim>({
      client,
      ref: { apiVersion: 'v1', resource: 'persistentvolumeclaims', ...(watchNamespace ? { namespace: watchNamespace } : {}) },
      labelSelector: allPartitionPodsSelector,
      log,
      transform: slimClaim,
      restarted: restarted('persistentvolumeclaims'),
    });
    // A node that turns NotReady or Ready again changes what its members' signals say.
    this.nodes.onChange((node, event) => {
      const name = node.metadata?.name ?? '';
      const ready = event !== 'delete' && nodeReady(node);
      if (this.#nodeReady.get(name)?.ready === ready) return;
      this.#nodeReady.set(name, { ready, since: this.#now() });
      for (const pod of options.memberPods()) {
        if (pod.spec?.nodeName === name) options.enqueue(`${pod.metadata?.namespace}/${pod.metadata?.labels?.[partitionLabel]}`);
      }
    });
    this.ownerLeases = new OwnerLeases({ log, enqueue: options.enqueue, expiryGraceMs: ownerLeaseExpiryGraceMs, now: () => this.#now() });
    this.prober = new DeepProber({
      targets: () =>
        options.memberPods().flatMap((pod) => {
          const key = `${pod.metadata?.namespace}/${pod.metadata?.labels?.[partitionLabel]}`;
          const partition = options.partition(key);
          if (!partition || pod.status?.phase !== 'Running' || pod.metadata?.deletionTimestamp) return [];
          const settings = watchdogSettings(partition.spec.watchdog);
          return [
            { pod, partitionKey: key, port: dataplaneHttpPort, periodMs: settings.probePeriodMs, timeoutMs: settings.probeTimeoutMs },
          ];
        }),
      changed: (key) => options.enqueue(key),
    });
  }

  /** The informers the watchdog needs synced. */
  get informers(): ResilientInformer<KubernetesObject>[] {
    return [this.nodes, this.leases, this.claims];
  }

  /** Whether remediation is paused cluster-wide. */
  get paused(): boolean {
    return this.#paused;
  }

  /** Starts probing and sweeping; only the leader calls this. */
  startActing(): void {
    this.prober.start();
    this.ownerLeases.start();
    this.#sweep ??= setInterval(
      () => void this.sweepNodes().catch((err: unknown) => this.#options.log.warn({ err }, 'Node sweep failed')),
      sweepIntervalMs,
    );
    this.#sweep.unref();
  }

  /** Stops probing and sweeping. */
  stop(): void {
    this.prober.stop();
    this.ownerLeases.stop();
    if (this.#sweep) clearInterval(this.#sweep);
    this.#sweep = undefined;
  }

  /** Forgets a deleted partition. */
  forget(key: string): void {
    this.#counts.delete(key);
    for (const member of [...this.#seenHealthy]) if (member.startsWith(`${key}/`)) this.#seenHealthy.delete(member);
    for (const member of [...this.#recoveredSpell.keys()]) if (member.startsWith(`${key}/`)) this.#recoveredSpell.delete(member);
    this.ownerLeases.forget(key);
    this.#updateLevels();
  }

  /** Runs the ladder over one partition's members and updates the cluster-wide pause. */
  assess(partition: MeshPartition, pods: readonly V1Pod[], live: MeshPartitionStatus | undefined): Assessment {
    const now = this.#now();
    const key = `${partition.metadata.namespace}/${partition.metadata.name}`;
    const settings = watchdogSettings(partition.spec.watchdog);
    const label = unsuitableNodeLabel(partition);
    this.ownerLeases.watch(key, partition);
    const signals = (pod: V1Pod) =>
      memberSignals(
        partition,
        pod,
        {
          node: (name) => this.nodes.get(name),
          lease: (name) => this.leases.get(name, 'kube-node-lease'),
          claim: (namespace, name) => this.claims.get(name, namespace),
          deepCheck: (p) => this.prober.result(p),
          ownerRecord: (replica) => this.ownerLeases.sighting(partition, replica),
        },
        label,
        now,
        settings.nodeLostMs,
      );
    // Reads #resumedAt at each run: the pause may end between the two.
    const run = (paused: boolean): Assessment => {
      const resumedAt = this.#resumedAt;
      return assessPartition({ partition, pods, live, signals, paused, ...(resumedAt !== undefined ? { resumedAt } : {}), now });
    };
    // The pause is decided with this partition's own count included: assess, count, and
    // assess again in the rare pass where that count flips the pause.
    const pausedBefore = this.#paused;
    let assessment = run(pausedBefore);
    this.#counts.set(key, countsOf(assessment));
    if (this.#updatePause(now) !== pausedBefore) {
      assessment = run(this.#paused);
      this.#counts.set(key, countsOf(assessment));
    }
    this.#updateLevels();
    this.#recordRecoveries(key, assessment, now);
    return assessment;
  }

  /**
   * Observes the time to recover of the members healthy again. A member counts once it has been
   * seen healthy (by this process) or the watchdog acted on it: a new member coming up for the
   * first time is starting, not recovering.
   */
  #recordRecoveries(key: string, assessment: Assessment, now: number): void {
    for (const { pod, unhealthySince, level } of assessment.recovered) {
      const member = `${key}/${pod}`;
      if (this.#recoveredSpell.get(member) === unhealthySince) continue;
      if (!this.#seenHealthy.has(member) && level === 0) continue;
      this.#recoveredSpell.set(member, unhealthySince);
      const seconds = Math.max(0, now - unhealthySince) / 1000;
      this.#options.metrics.watchdogRecovery.observe({ level: String(level) }, seconds);
      this.#options.log.info({ meshpartition: key, pod, level, seconds }, `Member ${pod} recovered after ${seconds.toFixed(1)} s`);
    }
    for (const m of assessment.members) if (m.health === 'Healthy') this.#seenHealthy.add(`${key}/${m.pod}`);
  }

  /** Share of unhealthy members across partitions, and whether it is past the bound. */
  unhealthyShare(): { unhealthy: number; total: number } {
    let unhealthy = 0;
    let total = 0;
    for (const c of this.#counts.values()) {
      unhealthy += c.unhealthy;
      total += c.total;
    }
    return { unhealthy, total };
  }

  #updatePause(now: number): boolean {
    const { unhealthy, total } = this.unhealthyShare();
    const paused = systemicFailure(unhealthy, total, this.#options.maxUnhealthyPercent);
    if (paused !== this.#paused) {
      this.#paused = paused;
      if (!paused) this.#resumedAt = now;
      this.#options.metrics.watchdogPaused.set(paused ? 1 : 0);
      this.#options.log.warn(
        { unhealthy, total, maxUnhealthyPercent: this.#options.maxUnhealthyPercent },
        paused ? 'Paused remediation: too many members are unhealthy' : 'Resumed remediation',
      );
      for (const key of this.#options.partitionKeys()) this.#options.enqueue(key);
    }
    return paused;
  }

  #updateLevels(): void {
    const perLevel = [0, 0, 0, 0, 0];
    for (const c of this.#counts.values()) for (const level of c.levels) perLevel[Math.min(level, 4)]!++;
    perLevel.forEach((count, level) => this.#options.metrics.watchdogMembers.set({ level: String(level) }, count));
    const perRefusal = new Map<Refusal, number>(refusals.map((r) => [r, 0]));
    for (const c of this.#counts.values()) for (const r of c.refused) perRefusal.set(r, (perRefusal.get(r) ?? 0) + 1);
    perRefusal.forEach((count, refusal) => this.#options.metrics.watchdogRefused.set({ refusal }, count));
  }

  /** What the RemediationPaused condition says; no counts, so it does not change (and cause a write) while they move. */
  pauseMessage(): string {
    return `More than ${this.#options.maxUnhealthyPercent}% of the members the operator watches are unhealthy: the failure looks systemic (stores, network, many nodes), so nothing is repaired until it clears`;
  }

  /** Carries out the actions of an assessment whose status is already written; records Events and metrics. */
  async perform(partition: MeshPartition, actions: readonly MemberAction[]): Promise<void> {
    const failures: unknown[] = [];
    for (const action of actions) {
      const { log, metrics, events } = this.#options;
      const ref = `${partition.metadata.namespace}/${action.pod}`;
      const what = describe(action);
      if (action.outcome === 'Observed') {
        metrics.watchdogIntentions.inc({ action: action.action, reason: action.reason });
        log.info(
          { meshpartition: `${partition.metadata.namespace}/${partition.metadata.name}`, ...action, pod: ref },
          `Observed that the watchdog would ${what}`,
        );
        await events.record(partition, 'Normal', 'WatchdogWouldAct', `Observe mode: would ${what}`);
        continue;
      }
      try {
        await this.#act(partition, action);
        if (action.action !== 'Reset') metrics.watchdogActions.inc({ action: action.action, reason: action.reason });
        log.info(
          { meshpartition: `${partition.metadata.namespace}/${partition.metadata.name}`, ...action, pod: ref },
          `Watchdog chose to ${what}`,
        );
        const type = action.action === 'GiveUp' ? 'Warning' : 'Normal';
        const reason = `Watchdog${action.action}`;
        await Promise.all([
          events.record(partition, type, reason, what),
          events.recordOn(podObject(partition, action), type, reason, what),
        ]);
      } catch (err) {
        log.error({ err, pod: ref, action: action.action }, `Failed to ${what}`);
        await events.record(
          partition,
          'Warning',
          'WatchdogActionFailed',
          `Could not ${what}: ${err instanceof Error ? err.message : String(err)}`,
        );
        failures.push(err);
      }
    }
    if (failures.length > 0) throw new WatchdogActionError(`${failures.length} watchdog action(s) failed`, { cause: failures[0] });
  }

  async #act(partition: MeshPartition, action: MemberAction): Promise<void> {
    const { client } = this.#options;
    const namespace = partition.metadata.namespace;
    const podRef = { apiVersion: 'v1', resource: 'pods', namespace, name: action.pod };
    const settings = watchdogSettings(partition.spec.watchdog);
    const removePod = async (): Promise<void> => {
      if (action.nodeLost && action.node) {
        if (settings.fencing === 'OutOfServiceTaint') {
          await this.#taintOutOfService(action.node);
          // The taint makes Kubernetes evict and then force-delete the pod; deleting it now starts that at once.
          await client.delete(podRef, { ...(action.uid ? { uid: action.uid } : {}) });
          return;
        }
        await client.delete(podRef, { gracePeriodSeconds: 0, ...(action.uid ? { uid: action.uid } : {}) });
        return;
      }
      await client.delete(podRef, { gracePeriodSeconds: remediationGraceSeconds, ...(action.uid ? { uid: action.uid } : {}) });
    };
    switch (action.action) {
      case 'Restart':
        return removePod();
      case 'Reschedule':
      case 'Fence':
        if (action.node) await this.#markUnsuitable(partition, action.node);
        return removePod();
      case 'RecreateVolume': {
        // Claims first: they go once no pod uses them, so the StatefulSet makes fresh ones for the next pod.
        if (action.node && action.nodeLost) await this.#markUnsuitable(partition, action.node);
        for (const claim of memberClaimNames(partition, action.pod)) {
          await client.delete({ apiVersion: 'v1', resource: 'persistentvolumeclaims', namespace, name: claim });
        }
        return removePod();
      }
      case 'GiveUp':
      case 'Reset':
        return;
    }
  }

  async #markUnsuitable(partition: MeshPartition, node: string): Promise<void> {
    const label = unsuitableNodeLabel(partition);
    if (this.nodes.get(node)?.metadata?.labels?.[label] !== undefined) return;
    try {
      await this.#options.client.mergePatch(
        { ...nodeRef, name: node },
        { metadata: { labels: { [label]: String(Math.floor(this.#now() / 1000)) } } },
      );
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return;
      throw err;
    }
  }

  async #taintOutOfService(name: string): Promise<void> {
    const { client } = this.#options;
    for (let attempt = 0; attempt < 5; attempt++) {
      const node = await client.get<V1Node>({ ...nodeRef, name });
      if (!node) return;
      const taints = node.spec?.taints ?? [];
      if (taints.some((t) => t.key === outOfServiceTaint.key && t.effect === outOfServiceTaint.effect)) return;
      node.spec = { ...node.spec, taints: [...taints, { ...outOfServiceTaint }] };
      node.metadata = { ...node.metadata, annotations: { ...node.metadata?.annotations, [outOfServiceAnnotation]: 'meshwork-watchdog' } };
      try {
        await client.replace({ ...nodeRef, name }, node as never);
        this.#options.log.warn({ node: name }, `Tainted node ${name} out of service`);
        return;
      } catch (err) {
        if (!(err instanceof KubeApiError && err.status === 409)) throw err;
      }
    }
    throw new WatchdogActionError(`could not taint node ${name}: it kept changing`);
  }

  /**
   * Lifts what the watchdog put on nodes once it is no longer needed: a partition's
   * unsuitable mark once the node has been Ready, with a fresh Lease, for the partition's
   * `nodeProbationSeconds` since it was marked (or at once when the partition is gone), and the
   * out-of-service taint once the node is Ready again.
   */
  async sweepNodes(): Promise<void> {
    const { client, log } = this.#options;
    const now = this.#now();
    const byLabel = new Map<string, MeshPartition>();
    for (const key of this.#options.partitionKeys()) {
      const p = this.#options.partition(key);
      if (p) byLabel.set(unsuitableNodeLabel(p), p);
    }
    for (const node of this.nodes.list()) {
      const name = node.metadata?.name ?? '';
      const lease = this.leases.get(name, 'kube-node-lease');
      const renewed = lease?.spec?.renewTime ? new Date(lease.spec.renewTime).getTime() : 0;
      const fresh = now - renewed < (lease?.spec?.leaseDurationSeconds ?? 40) * 1000;
      const seen = this.#nodeReady.get(name);
      // Ready since (this process's clock); a node not seen turning Ready counts from when it was first seen.
      const readySince = nodeReady(node) && fresh && seen?.ready ? seen.since : undefined;
      const stale: Record<string, null> = {};
      for (const [label, value] of Object.entries(node.metadata?.labels ?? {})) {
        if (!label.startsWith(unsuitableNodeLabelPrefix)) continue;
        const partition = byLabel.get(label);
        if (!partition) {
          stale[label] = null;
          continue;
        }
        if (probationServed(readySince, value, watchdogSettings(partition.spec.watchdog).nodeProbationMs, now)) stale[label] = null;
      }
      if (Object.keys(stale).length > 0) {
        await client.mergePatch({ ...nodeRef, name }, { metadata: { labels: stale } });
        log.info({ node: name, labels: Object.keys(stale) }, `Removed unsuitable marks from node ${name}`);
      }
      if (node.metadata?.annotations?.[outOfServiceAnnotation] && nodeReady(node) && fresh) await this.#untaint(name);
    }
  }

  async #untaint(name: string): Promise<void> {
    const { client, log } = this.#options;
    const node = await client.get<V1Node>({ ...nodeRef, name });
    if (!node) return;
    const annotations = { ...node.metadata?.annotations };
    delete annotations[outOfServiceAnnotation];
    node.spec = { ...node.spec, taints: (node.spec?.taints ?? []).filter((t) => t.key !== outOfServiceTaint.key) };
    node.metadata = { ...node.metadata, annotations };
    await client.replace({ ...nodeRef, name }, node as never);
    log.info({ node: name }, `Removed the out-of-service taint from node ${name}: it is Ready again`);
  }

  #now(): number {
    return (this.#options.now ?? Date.now)();
  }
}

function describe(action: MemberAction): string {
  const where = action.node ? ` on node ${action.node}` : '';
  switch (action.action) {
    case 'Restart':
      return `restart member ${action.pod}${where} (level 1, ${action.reason})`;
    case 'Reschedule':
      return `reschedule member ${action.pod} away from node ${action.node ?? '?'} (level 2, ${action.reason})`;
    case 'Fence':
      return `fence member ${action.pod} off lost node ${action.node ?? '?'} (level 2, ${action.reason})`;
    case 'RecreateVolume':
      return `recreate the volumes of member ${action.pod}${where} (level 3, ${action.reason})`;
    case 'GiveUp':
      return `give up on member ${action.pod}${where}: it failed at every level (${action.reason}); a person must replace it`;
    case 'Reset':
      return `reset the ladder of member ${action.pod} as requested`;
  }
}

function podObject(
  partition: MeshPartition,
  action: MemberAction,
): { apiVersion: string; kind: string; name: string; namespace: string; uid?: string } {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    name: action.pod,
    namespace: partition.metadata.namespace,
    ...(action.uid ? { uid: action.uid } : {}),
  };
}

/** What the watchdog keeps of a partition's assessment to count across partitions. */
function countsOf(assessment: Assessment): { unhealthy: number; total: number; levels: number[]; refused: Refusal[] } {
  return {
    unhealthy: assessment.unhealthy,
    total: assessment.total,
    levels: assessment.levels,
    refused: assessment.refused.map((r) => r.refusal),
  };
}
