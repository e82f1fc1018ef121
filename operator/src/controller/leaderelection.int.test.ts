// Two operator processes against the shared control plane: only the Lease holder
// reconciles, and when it is killed the other takes over within 20 s.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { repoRoot } from '../../../e2e/harness/binaries.ts';
import { waitFor } from '../../../e2e/harness/wait.ts';
import { installCrds, kubectl, kubectlOk, startOperator, type OperatorProcess } from '../../../e2e/operator/harness.ts';

const stack = inject('stack');
const admin = stack.controlPlane.adminKubeconfig;
const suffix = randomBytes(3).toString('hex');
const namespace = `mw-leader-${suffix}`;
const leaseName = `meshwork-operator-${suffix}`;
const sample = join(repoRoot, 'crds/samples/meshpartition.yaml');

interface Lease {
  spec: { holderIdentity?: string; leaseTransitions?: number };
}

async function lease(): Promise<Lease> {
  return JSON.parse(await kubectlOk(admin, ['get', '-n', namespace, 'lease', leaseName, '-o', 'json'])) as Lease;
}

async function applyPartition(name: string): Promise<void> {
  const text = readFileSync(sample, 'utf8').replace('name: p0', `name: ${name}`);
  await kubectlOk(admin, ['apply', '-n', namespace, '-f', '-'], text);
}

async function statefulSetExists(name: string): Promise<boolean> {
  return (await kubectl(admin, ['get', '-n', namespace, 'statefulset', name])).code === 0;
}

describe('leader election between two operator processes', () => {
  const operators: Record<string, OperatorProcess> = {};

  beforeAll(async () => {
    await installCrds(admin);
    await kubectlOk(admin, ['create', 'namespace', namespace]);
    const start = (identity: string): Promise<OperatorProcess> =>
      startOperator({
        kubeconfig: admin,
        namespace,
        watchNamespace: namespace,
        leaseName,
        identity,
        logFile: join(stack.controlPlane.dir, 'logs', `operator-${suffix}-${identity}.log`),
      });
    [operators.a, operators.b] = await Promise.all([start('operator-a'), start('operator-b')]);
  });

  afterAll(async () => {
    await Promise.all(Object.values(operators).map((o) => o.process.stop()));
    await kubectl(admin, ['delete', 'namespace', namespace, '--wait=false']);
  });

  it('lets only the leader reconcile, and hands over within 20 s when the leader is killed', async () => {
    const leaderId = await waitFor(
      async () => {
        const holder = (await lease()).spec.holderIdentity;
        const a = await operators.a!.metric('meshwork_leader_election_is_leader');
        const b = await operators.b!.metric('meshwork_leader_election_is_leader');
        return a + b === 1 && holder ? holder : undefined;
      },
      { description: 'one operator to lead', timeoutMs: 30_000 },
    );
    const [leader, follower] = leaderId === 'operator-a' ? [operators.a!, operators.b!] : [operators.b!, operators.a!];
    expect(await leader.metric('meshwork_leader_election_is_leader')).toBe(1);

    await applyPartition('before');
    await waitFor(() => statefulSetExists('before'), { description: 'StatefulSet before', timeoutMs: 30_000 });
    // The StatefulSet appears while its reconcile is still writing status; the count follows.
    await waitFor(async () => (await leader.metric('meshwork_reconcile_total')) > 0, {
      description: 'the leader to count its reconcile',
      timeoutMs: 30_000,
    });
    // The follower keeps warm caches but has reconciled nothing.
    expect(await follower.metric('meshwork_reconcile_total')).toBe(0);
    expect(await follower.metric('meshwork_kube_api_requests_total', { verb: 'apply' })).toBe(0);
    const transitionsBefore = (await lease()).spec.leaseTransitions ?? 0;

    leader.process.signal('SIGKILL');
    const killedAt = Date.now();
    await leader.process.exited;
    await waitFor(async () => (await follower.metric('meshwork_leader_election_is_leader')) === 1, {
      description: 'the follower to take the lease',
      timeoutMs: 25_000,
      intervalMs: 100,
    });
    const handover = Date.now() - killedAt;
    console.log(`Leadership handed over ${handover} ms after the leader was killed`);
    expect(handover).toBeLessThan(20_000);
    const after = await lease();
    expect(after.spec.holderIdentity).not.toBe(leaderId);
    expect(after.spec.leaseTransitions).toBe(transitionsBefore + 1);

    await applyPartition('after');
    await waitFor(() => statefulSetExists('after'), { description: 'StatefulSet after, made by the new leader', timeoutMs: 30_000 });
    expect(await follower.metric('meshwork_reconcile_errors_total')).toBe(0);
  });
});
