// The local network (ADR 27) is never left behind: when the process that built it dies
// without cleaning up, the harness's reaper deletes its namespaces, veths, /etc/netns files
// and bridge, after killing the processes that ran inside.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { processAlive } from '../harness/process.ts';
import { waitFor } from '../harness/wait.ts';
import { fullPlan, leftovers, networkSupport, removeNetwork } from './network.ts';

describe.runIf(networkSupport().ok)('the local network', () => {
  let block: number | undefined;
  afterEach(async () => {
    if (block !== undefined) await removeNetwork(fullPlan(block));
  });

  it('is removed by the reaper when the process that built it is killed', async () => {
    const child = spawn(process.execPath, [join(import.meta.dirname, 'fixtures', 'network-and-hang.ts')], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const first = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout }).once('line', resolve);
      child.once('exit', (code) => reject(new Error(`fixture exited with ${code} before building the network`)));
    });
    const started = JSON.parse(first) as { block: number; pid: number };
    block = started.block;
    expect(leftovers(block)).toEqual(
      expect.arrayContaining([
        `/run/netns/mw${block}-n1`,
        `/run/netns/mw${block}-n2`,
        `/sys/class/net/mwbr${block}`,
        `/etc/netns/mw${block}-n1`,
      ]),
    );
    expect(processAlive(started.pid)).toBe(true);

    child.kill('SIGKILL');
    await waitFor(() => (!processAlive(started.pid) && leftovers(started.block).length === 0) || undefined, {
      description: `the network of block ${block} and its process to be reaped`,
      timeoutMs: 30_000,
      intervalMs: 100,
    });
  });
});
