// The harness fails loudly and cleans up: a missing binary, a taken port or a crashing
// server is an error naming the component, and no server outlives its parent.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { startEtcd } from './etcd.ts';
import { ComponentStartError, MissingBinaryError } from './errors.ts';
import { processAlive } from './process.ts';
import { waitFor } from './wait.ts';

describe('the harness', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('says to run make tools when a binary is missing', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'meshwork-nobin-'));
    cleanups.push(() => rm(empty, { recursive: true, force: true }));
    const saved = process.env.MESHWORK_BIN;
    process.env.MESHWORK_BIN = empty;
    cleanups.push(() => {
      if (saved === undefined) delete process.env.MESHWORK_BIN;
      else process.env.MESHWORK_BIN = saved;
    });
    const start = startEtcd();
    await expect(start).rejects.toThrow(MissingBinaryError);
    await expect(start).rejects.toThrow(/etcd is missing at .*: run "make tools"/);
  });

  it('names the component and shows its log when the port is taken', async () => {
    // A plain TCP listener holds the port; it hangs up on anyone who connects.
    const holder: Server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => holder.listen({ host: '127.0.0.1', port: 0 }, resolve));
    cleanups.push(() => new Promise<void>((resolve) => holder.close(() => resolve())));
    const port = (holder.address() as { port: number }).port;
    const start = startEtcd({ port, name: 'etcd-on-a-taken-port' });
    await expect(start).rejects.toThrow(ComponentStartError);
    const err = (await start.catch((e: unknown) => e)) as ComponentStartError;
    expect(err.component).toBe('etcd-on-a-taken-port');
    expect(err.reason).toMatch(/exited with code \d+ before it was ready/);
    expect(err.portTaken).toBe(true);
    expect(err.message).toContain(`127.0.0.1:${port}`);
  });

  it('reports a server that exits at start with its exit code and log', async () => {
    const start = startEtcd({ extraArgs: ['--no-such-flag'] });
    const err = (await start.catch((e: unknown) => e)) as ComponentStartError;
    expect(err).toBeInstanceOf(ComponentStartError);
    expect(err.message).toMatch(/^etcd failed to start: the process exited with code [1-9]/);
    expect(err.logTail).toMatch(/no-such-flag/);
  });

  it('leaves no server behind when the process that started it is killed', async () => {
    const fixture = join(import.meta.dirname, 'fixtures', 'start-etcd-and-hang.ts');
    const child = spawn(process.execPath, [fixture], { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanups.push(() => {
      child.kill('SIGKILL');
    });
    const lines = createInterface({ input: child.stdout });
    const first = await new Promise<string>((resolve, reject) => {
      lines.once('line', resolve);
      child.once('exit', (code) => reject(new Error(`fixture exited with ${code} before starting etcd`)));
    });
    const { pid, endpoint, dataDir } = JSON.parse(first) as { pid: number; endpoint: string; dataDir: string };
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    expect(processAlive(pid)).toBe(true);
    expect((await fetch(`${endpoint}/health`)).ok).toBe(true);

    child.kill('SIGKILL');
    await waitFor(() => !processAlive(pid), { description: `etcd (pid ${pid}) to be reaped`, timeoutMs: 10_000, intervalMs: 50 });
  });
});
