// The README's fault demo, command for command, on the local stack that `make up` starts:
// power a node off, watch the sample partition come back Ready without a person, power the
// node on, and see the watchdog's mark leave it after the sample's probation.
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot, requireBinary } from '../harness/binaries.ts';
import { waitFor } from '../harness/wait.ts';
import { readState } from '../stack/state.ts';

describe('the fault demo of the README', () => {
  let dir = '';
  const env = (): NodeJS.ProcessEnv => ({ ...process.env, MESHWORK_STACK_DIR: dir });
  const kubectl = (args: string[]): string => {
    const state = readState(dir)!;
    const run = spawnSync(requireBinary('kubectl'), ['--kubeconfig', state.kubeconfig, ...args], { encoding: 'utf8', timeout: 30_000 });
    if (run.status !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${run.stderr}`);
    return run.stdout;
  };
  /** `npm run fault -- ...`: the fault CLI the README runs. */
  const fault = (args: string[]): string => {
    const run = spawnSync(process.execPath, [join(repoRoot, 'e2e/node-agent/ctl.ts'), ...args], {
      env: env(),
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(run.status, run.stderr).toBe(0);
    return run.stdout;
  };

  afterAll(async () => {
    if (dir) {
      spawnSync(process.execPath, [join(repoRoot, 'e2e/stack/down.ts')], { env: env() });
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('power-off: the partition is Ready again without a person; power-on: the node takes members again', async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshwork-fault-demo-'));
    const up = spawnSync(process.execPath, [join(repoRoot, 'e2e/stack/up.ts')], { env: env(), encoding: 'utf8', timeout: 420_000 });
    expect(up.status, up.stderr).toBe(0);
    // As the README does: the node of meshwork-p0-1, and that partition.
    const { namespace } = readState(dir)!.mesh;
    const name = 'meshwork-p0';
    const member = `${name}-1`;
    const node = kubectl(['get', 'pod', member, '-n', namespace, '-o', 'jsonpath={.spec.nodeName}']).trim();
    expect(node).toMatch(/^mw-node-[123]$/);
    const ready = (): string =>
      kubectl(['get', 'meshpartition', name, '-n', namespace, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']);
    expect(ready()).toBe('True');

    expect(fault(['power-off', '--node', node])).toContain(`powered off ${node}`);
    const offAt = Date.now();
    await waitFor(() => ready() === 'False', { description: 'the partition to be seen not Ready', timeoutMs: 60_000, intervalMs: 500 });
    await waitFor(() => ready() === 'True', { description: 'the partition Ready again', timeoutMs: 120_000, intervalMs: 1000 });
    console.log(`Sample partition Ready again ${((Date.now() - offAt) / 1000).toFixed(1)} s after ${node} was powered off`);
    const actions = kubectl([
      'get',
      'mp',
      name,
      '-n',
      namespace,
      '-o',
      'jsonpath={range .status.remediations[*]}{.pod} {.action} {.reason}{"\\n"}{end}',
    ]);
    expect(actions).toContain(`${member} Fence NodeLost`);
    const label = `unsuitable.meshwork.io/${namespace}.${name}`;
    const mark = (): string => kubectl(['get', 'node', node, '-o', `jsonpath={.metadata.labels.${label.replace(/\./g, '\\.')}}`]);
    expect(mark()).toMatch(/^\d+$/);

    expect(fault(['power-on', '--node', node])).toContain(node);
    await waitFor(() => mark() === '', { description: `the unsuitable mark to leave ${node}`, timeoutMs: 150_000, intervalMs: 1000 });
    expect(ready()).toBe('True');
  });
});
