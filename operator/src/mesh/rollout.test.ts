import { describe, expect, it } from 'vitest';
import { rolloutDefaults, type MeshRollout, type MeshRolloutStatus } from '../api/v1alpha1.ts';
import { sampleMesh, samplePartition } from '../api/fixtures.ts';
import { meshPartitionTemplate } from '../specs/meshpartition.ts';
import { partitionProgressOf, planRollout, rolloutSteps, templateRevision, type PartitionProgress, type RolloutInputs } from './rollout.ts';

const now = new Date('2026-01-01T12:00:00Z');
const ago = (seconds: number): string => new Date(now.getTime() - seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
const settings = (over: Partial<MeshRollout> = {}): MeshRollout => ({
  ...structuredClone(rolloutDefaults),
  analysis: { ...rolloutDefaults.analysis },
  ...over,
});
const stableTemplate = meshPartitionTemplate(sampleMesh('m'));

/** A partition of 3 members at `revision` with `hold`, members from `updatedFrom` up on the update and ready. */
function part(
  name: string,
  revision: string,
  over: Partial<PartitionProgress> & { updatedFrom?: number; unready?: number[] } = {},
): PartitionProgress {
  const { updatedFrom = 0, unready = [], ...rest } = over;
  return {
    name,
    exists: true,
    revision,
    hold: 0,
    replicas: 3,
    observed: true,
    members: [0, 1, 2].map((ordinal) => ({ ordinal, updated: ordinal >= updatedFrom, ready: !unready.includes(ordinal) })),
    watchdogActions: [],
    ...rest,
  };
}

const complete = (revision: string): MeshRolloutStatus => ({
  revision,
  stableRevision: revision,
  stableTemplate,
  state: 'Complete',
  step: 3,
  steps: 3,
});
const rolling = (over: Partial<MeshRolloutStatus> = {}): MeshRolloutStatus => ({
  revision: 'new',
  stableRevision: 'old',
  stableTemplate,
  state: 'Progressing',
  step: 1,
  steps: 3,
  stepStartedAt: ago(60),
  ...over,
});
const inputs = (over: Partial<RolloutInputs>): RolloutInputs => ({
  settings: settings(),
  target: 'new',
  partitions: [part('m-p0', 'old'), part('m-p1', 'old'), part('m-p2', 'old')],
  previous: rolling(),
  now,
  ...over,
});
const assigned = (plan: ReturnType<typeof planRollout>): Record<string, string> =>
  Object.fromEntries([...plan.assignments].map(([name, a]) => [name, `${a.template}/${a.hold}`]));

describe('rolloutSteps', () => {
  it.each([
    { n: 3, canary: 1, width: 1, steps: [['p0'], ['p1'], ['p2']] },
    { n: 5, canary: 2, width: 2, steps: [['p0', 'p1'], ['p2', 'p3'], ['p4']] },
    { n: 1, canary: 1, width: 3, steps: [['p0']] },
    { n: 2, canary: 4, width: 1, steps: [['p0', 'p1']] },
    { n: 0, canary: 1, width: 1, steps: [] },
  ])('cuts $n partitions with canary $canary and width $width', ({ n, canary, width, steps }) => {
    const names = Array.from({ length: n }, (_, i) => `p${i}`);
    expect(rolloutSteps(names, { canaryPartitions: canary, maxUnavailablePartitions: width })).toEqual(steps);
  });
});

describe('templateRevision', () => {
  it('ignores key order and changes with content', () => {
    expect(templateRevision({ ...stableTemplate, image: 'a' })).toBe(templateRevision({ image: 'a', ...stableTemplate }));
    expect(templateRevision({ ...stableTemplate, image: 'a' })).not.toBe(templateRevision({ ...stableTemplate, image: 'b' }));
    expect(templateRevision(stableTemplate)).toMatch(/^[0-9a-f]{10}$/);
  });
});

describe('planRollout', () => {
  it.each([
    {
      case: 'a Mesh never rolled takes its spec at once',
      over: { previous: undefined },
      actions: ['done'],
      state: 'Complete',
      step: 3,
      assignments: { 'm-p0': 'target/0', 'm-p1': 'target/0', 'm-p2': 'target/0' },
    },
    {
      case: 'a new version starts with the canary: its highest member moves, the others are held',
      over: { previous: complete('old') },
      actions: ['roll'],
      state: 'Progressing',
      step: 1,
      assignments: { 'm-p0': 'target/2', 'm-p1': 'current/0', 'm-p2': 'current/0' },
    },
    {
      case: 'a member on the update and ready lets the next one move',
      over: {
        partitions: [part('m-p0', 'new', { hold: 2, updatedFrom: 2 }), part('m-p1', 'old'), part('m-p2', 'old')],
        previous: rolling({ movedAt: ago(10) }),
      },
      actions: ['roll'],
      state: 'Progressing',
      step: 1,
      assignments: { 'm-p0': 'target/1', 'm-p1': 'current/0', 'm-p2': 'current/0' },
    },
    {
      case: 'an updated member not yet ready is waited for',
      over: {
        partitions: [part('m-p0', 'new', { hold: 1, updatedFrom: 1, unready: [1] }), part('m-p1', 'old'), part('m-p2', 'old')],
        previous: rolling({ movedAt: ago(10) }),
      },
      actions: ['wait'],
      state: 'Progressing',
      step: 1,
      assignments: { 'm-p0': 'target/1', 'm-p1': 'current/0', 'm-p2': 'current/0' },
    },
    {
      case: 'a partition that has not observed its spec is waited for',
      over: {
        partitions: [part('m-p0', 'new', { hold: 1, observed: false }), part('m-p1', 'old'), part('m-p2', 'old')],
        previous: rolling({ movedAt: ago(10) }),
      },
      actions: ['wait'],
      state: 'Progressing',
      step: 1,
      assignments: { 'm-p0': 'current/1', 'm-p1': 'current/0', 'm-p2': 'current/0' },
    },
    {
      case: 'the whole canary on the update starts the bake',
      over: { partitions: [part('m-p0', 'new'), part('m-p1', 'old'), part('m-p2', 'old')], previous: rolling({ movedAt: ago(10) }) },
      actions: ['bake'],
      state: 'Baking',
      step: 1,
      assignments: { 'm-p0': 'target/0', 'm-p1': 'current/0', 'm-p2': 'current/0' },
    },
    {
      case: 'a finished bake advances to the next step',
      over: {
        partitions: [part('m-p0', 'new'), part('m-p1', 'old'), part('m-p2', 'old')],
        previous: rolling({ state: 'Baking', movedAt: ago(400), bakeStartedAt: ago(300) }),
      },
      actions: ['advance'],
      state: 'Progressing',
      step: 2,
      assignments: { 'm-p0': 'target/0', 'm-p1': 'current/0', 'm-p2': 'current/0' },
    },
    {
      case: 'the second step rolls the next partition',
      over: {
        partitions: [part('m-p0', 'new'), part('m-p1', 'old'), part('m-p2', 'old')],
        previous: rolling({ step: 2, stepStartedAt: ago(1) }),
      },
      actions: ['roll'],
      state: 'Progressing',
      step: 2,
      assignments: { 'm-p0': 'current/0', 'm-p1': 'target/2', 'm-p2': 'current/0' },
    },
    {
      case: 'the last step baked completes the rollout',
      over: {
        partitions: [part('m-p0', 'new'), part('m-p1', 'new'), part('m-p2', 'new')],
        previous: rolling({ step: 3, state: 'Baking', movedAt: ago(400), bakeStartedAt: ago(301) }),
      },
      actions: ['done'],
      state: 'Complete',
      step: 3,
      assignments: { 'm-p0': 'target/0', 'm-p1': 'target/0', 'm-p2': 'target/0' },
    },
    {
      case: 'a step where nothing had to move passes without a bake (a revert after a canary)',
      over: {
        target: 'old',
        partitions: [part('m-p0', 'old'), part('m-p1', 'old'), part('m-p2', 'old')],
        previous: { ...rolling({ revision: 'old', step: 2, stepStartedAt: ago(1) }) },
      },
      actions: ['advance'],
      state: 'Progressing',
      step: 3,
      assignments: { 'm-p0': 'current/0', 'm-p1': 'target/0', 'm-p2': 'current/0' },
    },
    {
      case: 'paused, nothing moves',
      over: { settings: settings({ paused: true }), previous: complete('old') },
      actions: ['paused'],
      state: 'Paused',
      step: 1,
      assignments: { 'm-p0': 'current/0', 'm-p1': 'current/0', 'm-p2': 'current/0' },
    },
    {
      case: 'paused in the middle of a partition, its hold stays',
      over: {
        settings: settings({ paused: true }),
        partitions: [part('m-p0', 'new', { hold: 2, updatedFrom: 2 }), part('m-p1', 'old'), part('m-p2', 'old')],
        previous: rolling({ movedAt: ago(10) }),
      },
      actions: ['paused'],
      state: 'Paused',
      step: 1,
      assignments: { 'm-p0': 'current/2', 'm-p1': 'current/0', 'm-p2': 'current/0' },
    },
    {
      case: 'unpaused, it resumes where it was',
      over: {
        partitions: [part('m-p0', 'new', { hold: 2, updatedFrom: 2 }), part('m-p1', 'old'), part('m-p2', 'old')],
        previous: rolling({ state: 'Paused', movedAt: ago(10) }),
      },
      actions: ['roll'],
      state: 'Progressing',
      step: 1,
      assignments: { 'm-p0': 'target/1', 'm-p1': 'current/0', 'm-p2': 'current/0' },
    },
    {
      case: 'a halted rollout without autoRollback touches nothing',
      over: {
        partitions: [part('m-p0', 'new', { hold: 2, updatedFrom: 2, unready: [2] }), part('m-p1', 'old'), part('m-p2', 'old')],
        previous: rolling({ state: 'Halted', movedAt: ago(900) }),
      },
      actions: ['halted'],
      state: 'Halted',
      step: 1,
      assignments: { 'm-p0': 'current/2', 'm-p1': 'current/0', 'm-p2': 'current/0' },
    },
    {
      case: 'a halted rollout with autoRollback returns the canary to the stable template',
      over: {
        settings: settings({ autoRollback: true }),
        partitions: [part('m-p0', 'new', { hold: 2, updatedFrom: 2, unready: [2] }), part('m-p1', 'old'), part('m-p2', 'old')],
        previous: rolling({ state: 'Halted', movedAt: ago(900) }),
      },
      actions: ['rollback'],
      state: 'RollingBack',
      step: 1,
      assignments: { 'm-p0': 'stable/0', 'm-p1': 'current/0', 'm-p2': 'current/0' },
    },
    {
      case: 'a rollback is over once every partition runs the stable revision, ready',
      over: {
        settings: settings({ autoRollback: true }),
        partitions: [part('m-p0', 'old'), part('m-p1', 'old'), part('m-p2', 'old')],
        previous: rolling({ state: 'RollingBack', movedAt: ago(900) }),
      },
      actions: ['halted'],
      state: 'RolledBack',
      step: 1,
      assignments: { 'm-p0': 'current/0', 'm-p1': 'current/0', 'm-p2': 'current/0' },
    },
    {
      case: 'a new version after a halt starts over',
      over: { target: 'newer', previous: rolling({ state: 'Halted', movedAt: ago(900) }) },
      actions: ['roll'],
      state: 'Progressing',
      step: 1,
      assignments: { 'm-p0': 'target/2', 'm-p1': 'current/0', 'm-p2': 'current/0' },
    },
    {
      case: 'a partition created during a rollout gets the target at once',
      over: {
        partitions: [
          part('m-p0', 'new', { hold: 2, updatedFrom: 2 }),
          part('m-p1', 'old'),
          { ...part('m-p2', ''), exists: false, revision: undefined },
        ],
        previous: rolling({ movedAt: ago(5) }),
      },
      actions: ['roll'],
      state: 'Progressing',
      step: 1,
      assignments: { 'm-p0': 'target/1', 'm-p1': 'current/0', 'm-p2': 'target/0' },
    },
  ])('$case', ({ over, actions, state, step, assignments }) => {
    const plan = planRollout(inputs(over));
    expect(plan.actions.map((a) => a.kind)).toEqual(actions);
    expect(plan.status.state).toBe(state);
    expect(plan.status.step).toBe(step);
    expect(assigned(plan)).toEqual(assignments);
  });

  it.each([
    {
      case: 'a member not ready past the deadline halts with its figure',
      over: {
        partitions: [part('m-p0', 'new', { hold: 2, updatedFrom: 2, unready: [2] }), part('m-p1', 'old'), part('m-p2', 'old')],
        previous: rolling({ movedAt: ago(601) }),
      },
      reason: 'MemberNotReady',
      figure: '1 of 1 updated member not ready after 601s (m-p0-2 first)',
      threshold: 'progressDeadlineSeconds 600',
    },
    {
      case: 'an error ratio above the threshold halts',
      over: {
        partitions: [part('m-p0', 'new', { hold: 1, updatedFrom: 1 }), part('m-p1', 'old'), part('m-p2', 'old')],
        previous: rolling({ movedAt: ago(10) }),
        requests: { total: 200, errors: 47 },
      },
      reason: 'ErrorRatioExceeded',
      figure: 'error ratio 23.5% (47 of 200 requests answered 5xx)',
      threshold: 'maxErrorPercent 5%',
    },
    {
      case: 'a p99 latency above the threshold halts',
      over: {
        partitions: [part('m-p0', 'new', { hold: 1, updatedFrom: 1 }), part('m-p1', 'old'), part('m-p2', 'old')],
        previous: rolling({ movedAt: ago(10) }),
        // 190 of 200 within 1 s, 196 within 5 s, the rest within 10 s: p99 (rank 198) is at 7.5 s.
        requests: { total: 200, errors: 0, latency: { bounds: [1, 5, 10, Infinity], counts: [190, 196, 200, 200] } },
      },
      reason: 'LatencyExceeded',
      figure: 'p99 latency 7500 ms (long polls left out)',
      threshold: 'maxP99Milliseconds 5000',
    },
    {
      case: 'a watchdog action during the bake halts',
      over: {
        partitions: [part('m-p0', 'new', { watchdogActions: [new Date(now.getTime() - 5000)] }), part('m-p1', 'old'), part('m-p2', 'old')],
        previous: rolling({ state: 'Baking', movedAt: ago(30), bakeStartedAt: ago(20) }),
      },
      reason: 'WatchdogActed',
      figure: '1 watchdog action since the step began',
      threshold: 'maxWatchdogActions 0',
    },
  ])('$case', ({ over, reason, figure, threshold }) => {
    const plan = planRollout(inputs(over));
    expect(plan.actions.map((a) => a.kind)).toEqual(['halt']);
    expect(plan.actions[0]).toMatchObject({ halt: { reason, figure, threshold } });
    expect(plan.status.state).toBe('Halted');
    expect(plan.status.halt).toMatchObject({ reason, figure, threshold });
    // Nothing but the canary ever moved.
    expect(plan.assignments.get('m-p1')).toEqual({ template: 'current', hold: 0 });
  });

  it.each([
    { case: 'too few requests to judge', requests: { total: 99, errors: 99 } },
    { case: 'a ratio at the threshold', requests: { total: 200, errors: 10 } },
    { case: 'no figures', requests: undefined },
    { case: 'a p99 at the threshold', requests: { total: 200, errors: 0, latency: { bounds: [5, Infinity], counts: [200, 200] } } },
    { case: 'too few requests to judge latency', requests: { total: 99, errors: 0, latency: { bounds: [60, Infinity], counts: [0, 99] } } },
  ])('does not halt on the error ratio or latency with $case', ({ requests }) => {
    const plan = planRollout(
      inputs({
        partitions: [part('m-p0', 'new'), part('m-p1', 'old'), part('m-p2', 'old')],
        previous: rolling({ movedAt: ago(10) }),
        requests,
      }),
    );
    expect(plan.status.state).toBe('Baking');
  });

  describe("the prober's success", () => {
    const baseline = { ok: 100, error: 2, pods: ['prober-a'] };
    const baking = (prober: RolloutInputs['prober'], over: Partial<MeshRolloutStatus> = {}) =>
      planRollout(
        inputs({
          partitions: [part('m-p0', 'new'), part('m-p1', 'old'), part('m-p2', 'old')],
          previous: rolling({ state: 'Baking', movedAt: ago(30), bakeStartedAt: ago(20), proberBaseline: baseline, ...over }),
          prober,
        }),
      );

    it('halts when too few journeys since the step began succeeded', () => {
      const plan = baking({ ok: 103, error: 5, pods: ['prober-a'] });
      expect(plan.status.state).toBe('Halted');
      expect(plan.status.halt).toMatchObject({
        reason: 'ProberFailing',
        partition: 'm-p0',
        figure: 'prober success 50.0% (3 of 6 journeys since the step began)',
        threshold: 'minProberSuccessPercent 80%',
      });
    });

    it.each([
      { case: 'too few journeys to judge', prober: { ok: 100, error: 6, pods: ['prober-a'] } },
      { case: 'a success at the threshold', prober: { ok: 104, error: 3, pods: ['prober-a'] } },
      { case: 'no prober figures this pass', prober: undefined },
    ])('does not halt with $case, and keeps the baseline', ({ prober }) => {
      const plan = baking(prober);
      expect(plan.status.state).toBe('Baking');
      expect(plan.status.proberBaseline).toEqual(baseline);
    });

    it('judges from now on when the prober restarted (other pods, or counters that went down)', () => {
      for (const prober of [
        { ok: 1, error: 30, pods: ['prober-b'] },
        { ok: 50, error: 40, pods: ['prober-a'] },
      ]) {
        const plan = baking(prober);
        expect(plan.status.state).toBe('Baking');
        expect(plan.status.proberBaseline).toEqual(prober);
      }
    });

    it('takes the counters as the baseline of a step that starts', () => {
      const now = { ok: 130, error: 3, pods: ['prober-a'] };
      const plan = baking(now, { bakeStartedAt: ago(400) });
      expect(plan.status).toMatchObject({ step: 2, proberBaseline: now });
      const started = planRollout(inputs({ previous: complete('old'), prober: now }));
      expect(started.status).toMatchObject({ step: 1, proberBaseline: now });
    });

    it('is off at minProberSuccessPercent 0', () => {
      const plan = planRollout(
        inputs({
          settings: settings({ analysis: { ...rolloutDefaults.analysis, minProberSuccessPercent: 0 } }),
          partitions: [part('m-p0', 'new'), part('m-p1', 'old'), part('m-p2', 'old')],
          previous: rolling({ state: 'Baking', movedAt: ago(30), bakeStartedAt: ago(20), proberBaseline: baseline }),
          prober: { ok: 100, error: 50, pods: ['prober-a'] },
        }),
      );
      expect(plan.status.state).toBe('Baking');
    });
  });

  it('ignores watchdog actions from before the step began', () => {
    const plan = planRollout(
      inputs({
        partitions: [
          part('m-p0', 'new', { watchdogActions: [new Date(now.getTime() - 3_600_000)] }),
          part('m-p1', 'old'),
          part('m-p2', 'old'),
        ],
        previous: rolling({ movedAt: ago(10) }),
      }),
    );
    expect(plan.status.state).toBe('Baking');
  });

  it('halts with autoRollback and rolls the canary back in the same move', () => {
    const plan = planRollout(
      inputs({
        settings: settings({ autoRollback: true }),
        partitions: [part('m-p0', 'new', { hold: 2, updatedFrom: 2, unready: [2] }), part('m-p1', 'old'), part('m-p2', 'old')],
        previous: rolling({ movedAt: ago(700) }),
      }),
    );
    expect(plan.actions[0]?.kind).toBe('halt');
    expect(plan.status.state).toBe('RollingBack');
    expect(plan.assignments.get('m-p0')).toEqual({ template: 'stable', hold: 0 });
  });

  it('keeps a rollout that started without a stable template halted (nothing to return to)', () => {
    const plan = planRollout(
      inputs({
        settings: settings({ autoRollback: true }),
        previous: { ...rolling({ state: 'Halted' }), stableTemplate: undefined },
      }),
    );
    expect(plan.status.state).toBe('Halted');
  });

  it('bakes for bakeSeconds and asks to be woken for the analysis meanwhile', () => {
    const plan = planRollout(
      inputs({
        settings: settings({ bakeSeconds: 30 }),
        partitions: [part('m-p0', 'new'), part('m-p1', 'old'), part('m-p2', 'old')],
        previous: rolling({ state: 'Baking', movedAt: ago(40), bakeStartedAt: ago(28) }),
      }),
    );
    expect(plan.actions).toEqual([{ kind: 'bake', until: new Date(now.getTime() + 2000) }]);
    expect(plan.requeueAfterMs).toBe(2000);
  });

  it('writes the same status twice in a row when nothing changed (no write loop)', () => {
    const first = planRollout(
      inputs({
        settings: settings({ autoRollback: true }),
        partitions: [part('m-p0', 'old'), part('m-p1', 'old'), part('m-p2', 'old')],
        previous: rolling({ state: 'RollingBack', message: 'Halted' }),
      }),
    );
    const second = planRollout(
      inputs({
        settings: settings({ autoRollback: true }),
        partitions: [part('m-p0', 'old'), part('m-p1', 'old'), part('m-p2', 'old')],
        previous: first.status,
      }),
    );
    expect(second.status).toEqual(first.status);
  });
});

describe('partitionProgressOf', () => {
  const withStatus = (over: { generation?: number; progressing?: string; updateRevision?: string } = {}) => {
    const p = samplePartition('m-p0', { replicas: 3, rollout: { partition: 1 } });
    p.metadata.generation = over.generation ?? 2;
    p.metadata.annotations = { 'meshwork.io/template-revision': 'new' };
    p.status = {
      observedGeneration: 2,
      updateRevision: over.updateRevision ?? 'm-p0-2',
      conditions: [
        {
          type: 'Progressing',
          status: 'True',
          reason: over.progressing ?? 'RollingUpdate',
          message: '',
          observedGeneration: 2,
          lastTransitionTime: ago(1),
        },
      ],
      members: [
        { pod: 'm-p0-0', health: 'Healthy', revision: 'm-p0-1', level: 0 },
        { pod: 'm-p0-1', health: 'Unhealthy', revision: 'm-p0-2', level: 0 },
        { pod: 'm-p0-2', health: 'Healthy', revision: 'm-p0-2', level: 0 },
      ],
      remediations: [
        { time: ago(30), pod: 'm-p0-1', level: 1, action: 'Restart', reason: 'NotReady', outcome: 'Performed' },
        { time: ago(20), pod: 'm-p0-1', level: 1, action: 'Restart', reason: 'NotReady', outcome: 'Observed' },
      ],
    };
    return p;
  };

  it('reads revision, hold, members and performed watchdog actions', () => {
    expect(partitionProgressOf('m-p0', withStatus(), 3)).toEqual({
      name: 'm-p0',
      exists: true,
      revision: 'new',
      hold: 1,
      replicas: 3,
      observed: true,
      members: [
        { ordinal: 0, updated: false, ready: true },
        { ordinal: 1, updated: true, ready: false },
        { ordinal: 2, updated: true, ready: true },
      ],
      watchdogActions: [new Date(ago(30))],
    });
  });

  it.each([
    { case: 'a newer generation than its status', over: { generation: 3 } },
    { case: 'a StatefulSet that has not seen its spec', over: { progressing: 'Applying' } },
  ])('is not observed with $case', ({ over }) => {
    expect(partitionProgressOf('m-p0', withStatus(over), 3).observed).toBe(false);
  });

  it('describes a partition that does not exist yet', () => {
    expect(partitionProgressOf('m-p1', undefined, 3)).toMatchObject({ exists: false, observed: false, members: [] });
  });
});
