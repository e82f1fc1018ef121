// The rollout planner: given a Mesh's ramp settings, the revision its spec asks for, where each
// partition of the layout stands (its template revision, how many members the StatefulSet still
// holds back, which members run the update and are ready), the figures the analysis measured and
// the rollout status so far, it decides the next move and the status to write. Pure: the Mesh
// reconciler (reconcile.ts) reads the world, calls planRollout, and applies what it returns.
// Design and states: docs/adr/0048-gradual-rollout.md.
import { createHash } from 'node:crypto';
import type { MeshPartition, MeshRollout, MeshRolloutStatus, PartitionTemplate, RolloutHalt } from '../api/v1alpha1.ts';
import { templateRevisionAnnotation } from '../specs/meshpartition.ts';

/** Which template a partition is given: the Mesh's (target), the last good one (stable), or the one it has (current). */
export type TemplateChoice = 'target' | 'stable' | 'current';

/** What the executor applies to one partition of the layout. */
export interface PartitionAssignment {
  template: TemplateChoice;
  /** The StatefulSet's `rollingUpdate.partition`: members with an ordinal below it keep their revision. */
  hold: number;
}

/** One member of a partition as the planner needs it. */
export interface MemberProgress {
  ordinal: number;
  /** The member runs the StatefulSet's update revision. */
  updated: boolean;
  ready: boolean;
}

/** Where one partition of the layout stands. */
export interface PartitionProgress {
  name: string;
  /** False while the MeshPartition does not exist yet. */
  exists: boolean;
  /** The template revision it carries (its annotation); undefined when it has none. */
  revision: string | undefined;
  /** Its `spec.rollout.partition`. */
  hold: number;
  replicas: number;
  /** Its status describes its current generation and its StatefulSet has seen the latest spec. */
  observed: boolean;
  members: readonly MemberProgress[];
  /** Times of the watchdog's performed actions on it (its status.remediations). */
  watchdogActions: readonly Date[];
}

/** A cumulative latency histogram: `counts[i]` requests took at most `bounds[i]` seconds (the last bound is +Inf). */
export interface LatencyHistogram {
  bounds: number[];
  counts: number[];
}

/** Requests answered by the updated members of the step's partitions (their own counters). */
export interface RequestFigures {
  total: number;
  errors: number;
  /** Their latency, long polls left out. */
  latency?: LatencyHistogram | undefined;
}

/**
 * The q-quantile of a cumulative histogram, interpolated linearly inside its bucket as
 * Prometheus's histogram_quantile does (the lowest bucket starts at 0; a quantile in the +Inf
 * bucket is the highest finite bound); undefined for an empty histogram.
 */
export function histogramQuantile(q: number, h: LatencyHistogram): number | undefined {
  const total = h.counts.at(-1) ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  const i = h.counts.findIndex((c) => c >= rank);
  if (i < 0) return undefined;
  const upper = h.bounds[i]!;
  if (upper === Infinity) return h.bounds.at(-2) ?? undefined;
  const lower = i === 0 ? 0 : h.bounds[i - 1]!;
  const below = i === 0 ? 0 : h.counts[i - 1]!;
  const inBucket = h.counts[i]! - below;
  return inBucket === 0 ? upper : lower + ((upper - lower) * (rank - below)) / inBucket;
}

/** The prober's journeys by outcome, summed over its pods (whose uids say which counters these are). */
export interface ProberFigures {
  ok: number;
  error: number;
  pods: string[];
}

export interface RolloutInputs {
  settings: MeshRollout;
  /** The revision of the Mesh's partition template. */
  target: string;
  /** The layout's partitions in index order. */
  partitions: readonly PartitionProgress[];
  previous: MeshRolloutStatus | undefined;
  /** Requests figures of the current step's updated members, when they could be read. */
  requests?: RequestFigures | undefined;
  /** The prober's journey counters now, when its pods could be read. */
  prober?: ProberFigures | undefined;
  now: Date;
}

/** What the planner decided, for logs, Events and tests. */
export type RolloutAction =
  | { kind: 'roll'; partition: string; hold: number }
  | { kind: 'wait'; partition: string }
  | { kind: 'bake'; until: Date }
  | { kind: 'advance'; step: number }
  | { kind: 'halt'; halt: RolloutHalt }
  | { kind: 'rollback'; partitions: string[] }
  | { kind: 'halted' }
  | { kind: 'paused' }
  | { kind: 'done' };

export interface RolloutPlan {
  /** The moves, first one first (a step that rolls two partitions has two). */
  actions: RolloutAction[];
  /** What to apply to each partition of the layout, by name. */
  assignments: Map<string, PartitionAssignment>;
  /** The new status; `stableTemplate` is left for the executor to fill when `completed`. */
  status: MeshRolloutStatus;
  /** The rollout completed in this call: the target becomes the stable revision. */
  completed: boolean;
  /** When to look again if nothing else changes. */
  requeueAfterMs?: number;
}

/** How often the analysis looks at a step while members roll or bake. */
export const analysisIntervalMs = 5_000;

/** The revision of a partition template: a short hash of its content with keys in order. */
export function templateRevision(template: PartitionTemplate): string {
  return createHash('sha256').update(canonicalJson(template)).digest('hex').slice(0, 10);
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The layout's partitions cut into steps: the canary partitions, then `maxUnavailable` at a time, in index order. */
export function rolloutSteps(
  names: readonly string[],
  settings: Pick<MeshRollout, 'canaryPartitions' | 'maxUnavailablePartitions'>,
): string[][] {
  const canary = Math.max(1, settings.canaryPartitions);
  const width = Math.max(1, settings.maxUnavailablePartitions);
  const steps: string[][] = [];
  if (names.length > 0) steps.push(names.slice(0, canary));
  for (let i = canary; i < names.length; i += width) steps.push(names.slice(i, i + width));
  return steps;
}

function iso(time: Date): string {
  return time.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function since(time: string | undefined, now: Date): number {
  return time ? now.getTime() - Date.parse(time) : 0;
}

/** Members at or above the hold that do not yet run the update, ready. */
function pendingMembers(p: PartitionProgress): MemberProgress[] {
  const byOrdinal = new Map(p.members.map((m) => [m.ordinal, m]));
  const pending: MemberProgress[] = [];
  for (let ordinal = p.hold; ordinal < p.replicas; ordinal++) {
    const member = byOrdinal.get(ordinal) ?? { ordinal, updated: false, ready: false };
    if (!member.updated || !member.ready) pending.push(member);
  }
  return pending;
}

function percent(part: number, whole: number): string {
  return `${((100 * part) / whole).toFixed(1)}%`;
}

/**
 * The analysis of a step: the first threshold its partitions break, or undefined. Readiness is
 * judged by the caller (it depends on the deadline); here the request errors and watchdog actions.
 */
export function analyseStep(
  settings: MeshRollout,
  step: readonly PartitionProgress[],
  requests: RequestFigures | undefined,
  stepStartedAt: Date,
  now: Date,
  prober?: { since: ProberFigures; now: ProberFigures },
): RolloutHalt | undefined {
  const { analysis } = settings;
  const first = step[0]?.name ?? '';
  if (prober && analysis.minProberSuccessPercent > 0) {
    const ok = prober.now.ok - prober.since.ok;
    const journeys = ok + prober.now.error - prober.since.error;
    if (journeys >= analysis.minProberJourneys && ok * 100 < analysis.minProberSuccessPercent * journeys) {
      return {
        reason: 'ProberFailing',
        partition: step.map((p) => p.name).join(','),
        figure: `prober success ${percent(ok, journeys)} (${ok} of ${journeys} journeys since the step began)`,
        threshold: `minProberSuccessPercent ${analysis.minProberSuccessPercent}%`,
        time: iso(now),
      };
    }
  }
  if (requests && requests.total >= analysis.minRequests && analysis.maxErrorPercent < 100) {
    if (requests.errors * 100 > analysis.maxErrorPercent * requests.total) {
      return {
        reason: 'ErrorRatioExceeded',
        partition: step.map((p) => p.name).join(','),
        figure: `error ratio ${percent(requests.errors, requests.total)} (${requests.errors} of ${requests.total} requests answered 5xx)`,
        threshold: `maxErrorPercent ${analysis.maxErrorPercent}%`,
        time: iso(now),
      };
    }
    const p99 = requests.latency && analysis.maxP99Milliseconds > 0 ? histogramQuantile(0.99, requests.latency) : undefined;
    if (p99 !== undefined && p99 * 1000 > analysis.maxP99Milliseconds) {
      return {
        reason: 'LatencyExceeded',
        partition: step.map((p) => p.name).join(','),
        figure: `p99 latency ${Math.round(p99 * 1000)} ms (long polls left out)`,
        threshold: `maxP99Milliseconds ${analysis.maxP99Milliseconds}`,
        time: iso(now),
      };
    }
  }
  for (const p of step) {
    const actions = p.watchdogActions.filter((t) => t.getTime() >= stepStartedAt.getTime()).length;
    if (actions > analysis.maxWatchdogActions) {
      return {
        reason: 'WatchdogActed',
        partition: p.name || first,
        figure: `${actions} watchdog action${actions === 1 ? '' : 's'} since the step began`,
        threshold: `maxWatchdogActions ${analysis.maxWatchdogActions}`,
        time: iso(now),
      };
    }
  }
  return undefined;
}

/** Decides the rollout's next move; see the file's header. */
export function planRollout(inputs: RolloutInputs): RolloutPlan {
  const { settings, target, partitions, now } = inputs;
  const names = partitions.map((p) => p.name);
  const steps = rolloutSteps(names, settings);
  const byName = new Map(partitions.map((p) => [p.name, p]));
  const assignments = new Map<string, PartitionAssignment>();
  const keep = (p: PartitionProgress): void => {
    assignments.set(p.name, p.exists ? { template: 'current', hold: p.hold } : { template: 'target', hold: 0 });
  };
  const everyTarget = (): void => {
    for (const p of partitions) assignments.set(p.name, { template: 'target', hold: 0 });
  };

  let previous = inputs.previous;
  // A Mesh never rolled (new, or written by an operator without ramps) takes its spec at once.
  if (!previous?.revision) {
    everyTarget();
    return {
      actions: [{ kind: 'done' }],
      assignments,
      status: { revision: target, stableRevision: target, state: 'Complete', step: steps.length, steps: steps.length },
      completed: true,
    };
  }
  // A new version: the ramp starts over from the last good revision.
  if (previous.revision !== target) {
    previous = {
      revision: target,
      ...(previous.stableRevision ? { stableRevision: previous.stableRevision } : {}),
      ...(previous.stableTemplate ? { stableTemplate: previous.stableTemplate } : {}),
      state: 'Progressing',
      step: 1,
      steps: steps.length,
      stepStartedAt: iso(now),
    };
  }
  const base: MeshRolloutStatus = {
    revision: target,
    ...(previous.stableRevision ? { stableRevision: previous.stableRevision } : {}),
    ...(previous.stableTemplate ? { stableTemplate: previous.stableTemplate } : {}),
    steps: steps.length,
  };

  if (previous.state === 'Complete') {
    everyTarget();
    return { actions: [{ kind: 'done' }], assignments, status: { ...previous, steps: steps.length }, completed: false };
  }

  if (previous.state === 'Halted' || previous.state === 'RollingBack' || previous.state === 'RolledBack') {
    return planHalted(inputs, previous, assignments, keep);
  }

  const stepIndex = Math.min(Math.max(1, previous.step ?? 1), Math.max(1, steps.length)) - 1;
  const group = (steps[stepIndex] ?? []).map((n) => byName.get(n)!);
  for (const p of partitions) keep(p);
  const stepStartedAt = previous.stepStartedAt ?? iso(now);
  const proberBaseline = proberBaselineOf(previous.proberBaseline, inputs.prober);
  const progressing: MeshRolloutStatus = {
    ...base,
    state: 'Progressing',
    step: stepIndex + 1,
    stepStartedAt,
    ...(previous.movedAt ? { movedAt: previous.movedAt } : {}),
    ...(previous.bakeStartedAt ? { bakeStartedAt: previous.bakeStartedAt } : {}),
    ...(proberBaseline ? { proberBaseline } : {}),
  };

  if (settings.paused) {
    return {
      actions: [{ kind: 'paused' }],
      assignments,
      status: { ...progressing, state: 'Paused', message: `Paused at step ${stepIndex + 1} of ${steps.length}` },
      completed: false,
    };
  }

  const halt = (h: RolloutHalt): RolloutPlan => {
    const status: MeshRolloutStatus = {
      ...progressing,
      state: 'Halted',
      halt: h,
      message: `Halted at step ${stepIndex + 1} of ${steps.length}: partition ${h.partition}: ${h.figure} breaks ${h.threshold}`,
    };
    delete status.bakeStartedAt;
    return { ...planHalted({ ...inputs }, status, assignments, keep), actions: [{ kind: 'halt', halt: h }] };
  };

  // The analysis runs whenever the step has members on the new version.
  const finding = analyseStep(
    settings,
    group,
    inputs.requests,
    new Date(stepStartedAt),
    now,
    proberBaseline && inputs.prober ? { since: proberBaseline, now: inputs.prober } : undefined,
  );
  if (finding) return halt(finding);

  const actions: RolloutAction[] = [];
  let moved = false;
  let waiting: { partition: PartitionProgress; member: MemberProgress | undefined } | undefined;
  for (const p of group) {
    if (!p.exists || !p.observed) {
      waiting ??= { partition: p, member: undefined };
      actions.push({ kind: 'wait', partition: p.name });
      continue;
    }
    if (p.revision !== target) {
      // The highest ordinal moves first; the StatefulSet holds back every member below it.
      const hold = Math.max(0, p.replicas - 1);
      assignments.set(p.name, { template: 'target', hold });
      actions.push({ kind: 'roll', partition: p.name, hold });
      moved = true;
      continue;
    }
    const pending = pendingMembers(p);
    if (pending.length > 0) {
      waiting ??= { partition: p, member: pending[0] };
      assignments.set(p.name, { template: 'target', hold: p.hold });
      actions.push({ kind: 'wait', partition: p.name });
      continue;
    }
    if (p.hold > 0) {
      assignments.set(p.name, { template: 'target', hold: p.hold - 1 });
      actions.push({ kind: 'roll', partition: p.name, hold: p.hold - 1 });
      moved = true;
      continue;
    }
    assignments.set(p.name, { template: 'target', hold: 0 });
  }

  if (moved) {
    const status: MeshRolloutStatus = { ...progressing, movedAt: iso(now), message: rollingMessage(stepIndex, steps.length, actions) };
    delete status.bakeStartedAt;
    return { actions, assignments, status, completed: false, requeueAfterMs: analysisIntervalMs };
  }

  if (waiting) {
    const deadlineMs = settings.progressDeadlineSeconds * 1000;
    // A member that left the bake unready gets a full deadline from then.
    const from = previous.bakeStartedAt ? iso(now) : (previous.movedAt ?? stepStartedAt);
    const waited = since(from, now);
    if (waited >= deadlineMs) {
      const p = waiting.partition;
      const notReady = p.exists ? pendingMembers(p).length : p.replicas;
      return halt({
        reason: 'MemberNotReady',
        partition: p.name,
        figure: `${notReady} of ${p.replicas - p.hold || p.replicas} updated member${notReady === 1 ? '' : 's'} not ready after ${Math.round(waited / 1000)}s${waiting.member ? ` (${p.name}-${waiting.member.ordinal} first)` : ''}`,
        threshold: `progressDeadlineSeconds ${settings.progressDeadlineSeconds}`,
        time: iso(now),
      });
    }
    const status: MeshRolloutStatus = {
      ...progressing,
      movedAt: from,
      message: `Step ${stepIndex + 1} of ${steps.length}: waiting for ${waiting.partition.name} to be ready on revision ${target}`,
    };
    delete status.bakeStartedAt;
    return { actions, assignments, status, completed: false, requeueAfterMs: Math.min(analysisIntervalMs, deadlineMs - waited) };
  }

  // Every member of the step runs the target, ready. A step where nothing had to move needs no bake.
  const bakeMs = settings.bakeSeconds * 1000;
  if (previous.movedAt) {
    const bakeStartedAt = previous.bakeStartedAt ?? iso(now);
    const baked = since(bakeStartedAt, now);
    if (baked < bakeMs) {
      const until = new Date(Date.parse(bakeStartedAt) + bakeMs);
      return {
        actions: [{ kind: 'bake', until }],
        assignments,
        status: {
          ...progressing,
          state: 'Baking',
          bakeStartedAt,
          message: `Step ${stepIndex + 1} of ${steps.length}: baking until ${iso(until)}`,
        },
        completed: false,
        requeueAfterMs: Math.min(analysisIntervalMs, bakeMs - baked),
      };
    }
  }

  if (stepIndex + 1 >= steps.length) {
    everyTarget();
    return {
      actions: [{ kind: 'done' }],
      assignments,
      status: {
        revision: target,
        stableRevision: target,
        state: 'Complete',
        step: steps.length,
        steps: steps.length,
        message: `Revision ${target} runs on every partition`,
      },
      completed: true,
    };
  }
  return {
    actions: [{ kind: 'advance', step: stepIndex + 2 }],
    assignments,
    status: {
      ...base,
      state: 'Progressing',
      step: stepIndex + 2,
      stepStartedAt: iso(now),
      ...(inputs.prober ? { proberBaseline: structuredClone(inputs.prober) } : {}),
      message: `Started step ${stepIndex + 2} of ${steps.length}`,
    },
    completed: false,
    requeueAfterMs: 0,
  };
}

/**
 * The prober's counters a step is judged against: those recorded when it began, unless the
 * prober's pods changed since (a restarted prober counts from zero), in which case the step is
 * judged from now on.
 */
function proberBaselineOf(recorded: ProberFigures | undefined, current: ProberFigures | undefined): ProberFigures | undefined {
  if (current === undefined) return recorded;
  const samePods = recorded !== undefined && [...recorded.pods].sort().join(',') === [...current.pods].sort().join(',');
  const sane = samePods && current.ok >= recorded.ok && current.error >= recorded.error;
  return sane ? recorded : structuredClone(current);
}

function rollingMessage(stepIndex: number, steps: number, actions: readonly RolloutAction[]): string {
  const rolls = actions.flatMap((a) => (a.kind === 'roll' ? [`${a.partition} (members from ${a.hold} up)`] : []));
  return `Step ${stepIndex + 1} of ${steps}: rolling ${rolls.join(', ')}`;
}

/** A halted rollout: nothing moves, unless autoRollback returns the partitions that left the stable revision. */
function planHalted(
  inputs: RolloutInputs,
  previous: MeshRolloutStatus,
  assignments: Map<string, PartitionAssignment>,
  keep: (p: PartitionProgress) => void,
): RolloutPlan {
  const { settings, partitions } = inputs;
  for (const p of partitions) keep(p);
  const stable = previous.stableRevision;
  const status: MeshRolloutStatus = { ...previous };
  if (!settings.autoRollback || !stable || !previous.stableTemplate || stable === previous.revision) {
    return { actions: [{ kind: 'halted' }], assignments, status: { ...status, state: 'Halted' }, completed: false };
  }
  const back = partitions.filter((p) => p.exists && (p.revision !== stable || p.hold !== 0));
  for (const p of back) assignments.set(p.name, { template: 'stable', hold: 0 });
  const settling = partitions.filter((p) => p.exists && (back.includes(p) || !p.observed || pendingMembers(p).length > 0));
  if (settling.length === 0) {
    return {
      actions: [{ kind: 'halted' }],
      assignments,
      status: {
        ...status,
        state: 'RolledBack',
        message:
          previous.state === 'RolledBack'
            ? (previous.message ?? '')
            : `Rolled back to revision ${stable}. ${previous.message ?? ''}`.trim(),
      },
      completed: false,
    };
  }
  return {
    actions: [{ kind: 'rollback', partitions: back.map((p) => p.name) }],
    assignments,
    status: { ...status, state: 'RollingBack' },
    completed: false,
    requeueAfterMs: analysisIntervalMs,
  };
}

/** What a MeshPartition's spec and status say about its rollout, for the planner. */
export function partitionProgressOf(
  name: string,
  partition: Pick<MeshPartition, 'metadata' | 'spec' | 'status'> | undefined,
  replicas: number,
): PartitionProgress {
  if (!partition) return { name, exists: false, revision: undefined, hold: 0, replicas, observed: false, members: [], watchdogActions: [] };
  const { metadata, spec, status } = partition;
  const generation = metadata.generation ?? 0;
  const progressing = status?.conditions?.find((c) => c.type === 'Progressing');
  // The StatefulSet must have seen the latest spec too, or its update revision is the previous one.
  const observed =
    status?.observedGeneration === generation &&
    progressing?.observedGeneration === generation &&
    progressing.reason !== 'Applying' &&
    Boolean(status.updateRevision);
  const members = (status?.members ?? []).flatMap((m) => {
    const ordinal = Number(m.pod.slice(m.pod.lastIndexOf('-') + 1));
    if (!Number.isInteger(ordinal)) return [];
    return [{ ordinal, updated: m.revision !== undefined && m.revision === status?.updateRevision, ready: m.health === 'Healthy' }];
  });
  return {
    name,
    exists: true,
    revision: metadata.annotations?.[templateRevisionAnnotation],
    hold: spec.rollout?.partition ?? 0,
    replicas: spec.replicas,
    observed,
    members,
    watchdogActions: (status?.remediations ?? []).filter((r) => r.outcome === 'Performed').map((r) => new Date(r.time)),
  };
}

/** The partitions of the step a rollout is in, when members of it may run the new version and so may be analysed. */
export function stepUnderAnalysis(
  previous: MeshRolloutStatus | undefined,
  target: string,
  names: readonly string[],
  settings: MeshRollout,
): string[] {
  if (!previous || previous.revision !== target || (previous.state !== 'Progressing' && previous.state !== 'Baking')) return [];
  return rolloutSteps(names, settings)[(previous.step ?? 1) - 1] ?? [];
}
