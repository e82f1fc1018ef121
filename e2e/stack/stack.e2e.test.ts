// `make up` brings the local stack up and says how to reach it; `make down` leaves nothing running.
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot, requireBinary } from '../harness/binaries.ts';
import { processAlive, readState } from './state.ts';

/** Pids of processes whose command line or environment mentions `text` (pods have HOME in the stack). */
function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(text) || readFileSync(`/proc/${entry}/environ`, 'utf8').includes(text))
        pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids.filter(processAlive);
}

describe('make up and make down', () => {
  let dir = '';
  afterAll(async () => {
    if (dir) {
      spawnSync(process.execPath, [join(repoRoot, 'e2e/stack/down.ts')], { env: { ...process.env, MESHWORK_STACK_DIR: dir } });
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('starts the stack, reports how to reach it, and stops it without leaving a process', async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshwork-stack-'));
    const env = { ...process.env, MESHWORK_STACK_DIR: dir };
    const up = spawnSync(process.execPath, [join(repoRoot, 'e2e/stack/up.ts')], { env, encoding: 'utf8', timeout: 420_000 });
    expect(up.status, up.stderr).toBe(0);
    expect(up.stdout).toMatch(/Up in \d+\.\d s\./);
    expect(up.stdout).toContain('export KUBECONFIG=');
    const state = readState(dir)!;
    expect(state.ready).toBe(true);

    const nodes = execFileSync(requireBinary('kubectl'), ['--kubeconfig', state.kubeconfig, 'get', 'nodes', '--no-headers'], {
      encoding: 'utf8',
    });
    expect(
      nodes
        .trim()
        .split('\n')
        .map((l) => l.split(/\s+/).slice(0, 2).join(' ')),
    ).toEqual(['mw-node-1 Ready', 'mw-node-2 Ready', 'mw-node-3 Ready']);

    // The operator (installed with the chart) has brought the sample partition up: every
    // member is a data-plane process answering on its pod IP.
    const partition = execFileSync(
      requireBinary('kubectl'),
      [
        '--kubeconfig',
        state.kubeconfig,
        'get',
        'meshpartition',
        state.partition.name,
        '-n',
        state.partition.namespace,
        '-o',
        'jsonpath={.status.readyReplicas} {.status.conditions[?(@.type=="Ready")].status}',
      ],
      { encoding: 'utf8' },
    );
    expect(partition).toBe('3 True');
    const ips = execFileSync(
      requireBinary('kubectl'),
      ['--kubeconfig', state.kubeconfig, 'get', 'pods', '-n', state.partition.namespace, '-o', 'jsonpath={.items[*].status.podIP}'],
      {
        encoding: 'utf8',
      },
    ).split(' ');
    expect(ips).toHaveLength(3);
    for (const ip of ips) {
      expect(await (await fetch(`http://${ip}:8080/readyz`)).json()).toMatchObject({ status: 'ready' });
      // Every member checks its four volumes (the claims the node agent provisioned) and the stores.
      const deep = (await (await fetch(`http://${ip}:8080/healthz/deep`)).json()) as {
        status: string;
        checks: { name: string; ok: boolean }[];
      };
      expect(deep.status).toBe('ok');
      expect(deep.checks.filter((c) => c.name.startsWith('volume:') && c.ok)).toHaveLength(4);
    }

    // A second make up finds the stack running and only describes it.
    const again = spawnSync(process.execPath, [join(repoRoot, 'e2e/stack/up.ts')], { env, encoding: 'utf8', timeout: 30_000 });
    expect(again.stdout).toContain(`pid ${state.pid}`);
    expect(again.stdout).not.toContain('Starting');

    const running = processesMentioning(dir);
    // supervisor, 2 etcd, MinIO, apiserver, controller manager, scheduler, 2 operators, 3 members
    expect(running.length).toBeGreaterThanOrEqual(11);
    const down = spawnSync(process.execPath, [join(repoRoot, 'e2e/stack/down.ts')], { env, encoding: 'utf8', timeout: 90_000 });
    expect(down.status, down.stderr).toBe(0);
    expect(down.stdout).toContain('Stopped');
    expect(running.filter(processAlive)).toEqual([]);
    expect(readState(dir)).toBeUndefined();
  });
});
