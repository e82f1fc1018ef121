// The `meshwork` entry runs with its Node flags however it is started, and with Node's module
// compile cache on from its first module (NODE_COMPILE_CACHE), so that later runs neither strip
// types nor load the type stripper (about 14 MB less memory for a long `meshwork sync`, ADR 82).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { agentNodeFlags } from './node-flags.ts';

const entry = join(dirname(fileURLToPath(import.meta.url)), 'meshwork.ts');
const tmp = mkdtempSync(join(tmpdir(), 'meshwork-entry-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Every file under `dir`, or none when it does not exist. */
function filesUnder(dir: string): string[] {
  try {
    return readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((d) => d.isFile())
      .map((d) => d.name);
  } catch {
    return [];
  }
}

// Each test starts Node two or three times: seconds on a busy machine, past the unit project's 5 s default.
describe('the meshwork entry', { timeout: 60_000 }, () => {
  it("fills the compile cache in the system's temporary directory, and runs the same from it", () => {
    const env = { PATH: process.env.PATH, HOME: tmp, TMPDIR: tmp };
    const first = spawnSync(process.execPath, [entry, 'help'], { env, encoding: 'utf8', timeout: 60_000 });
    expect(first.status, first.stderr).toBe(0);
    expect(filesUnder(join(tmp, 'node-compile-cache')).length).toBeGreaterThan(0);
    const second = spawnSync(process.execPath, [entry, 'help'], { env, encoding: 'utf8', timeout: 60_000 });
    expect(second.status, second.stderr).toBe(0);
    expect(second.stdout).toBe(first.stdout);
  });

  it('from the second run on, neither strips types nor loads the type stripper', () => {
    const cacheTmp = mkdtempSync(join(tmp, 'cache-'));
    // Prints, as the program ends, whether Node loaded its type stripper and where the compile cache is.
    const report = `--import=data:text/javascript,process.on('exit',()=>process.stderr.write('CACHE'+JSON.stringify([process.moduleLoadList.some((m)=>m.includes('amaro')),process.env.NODE_COMPILE_CACHE])+'\\n'))`;
    const env = { PATH: process.env.PATH, HOME: tmp, TMPDIR: cacheTmp, NODE_OPTIONS: report };
    const runs = [0, 1].map(() => {
      const run = spawnSync(process.execPath, [entry, 'help'], { env, encoding: 'utf8', timeout: 60_000 });
      expect(run.status, run.stderr).toBe(0);
      const line = run.stderr.split('\n').find((l) => l.startsWith('CACHE'));
      expect(line, run.stderr).toBeDefined();
      return JSON.parse(line!.slice('CACHE'.length)) as [boolean, string];
    });
    expect(runs[0]![1]).toBe(join(cacheTmp, 'node-compile-cache'));
    expect(runs[1]).toEqual([false, join(cacheTmp, 'node-compile-cache')]);
    // Turned off by the person, it stays off: no cache, no second start.
    const off = spawnSync(process.execPath, [entry, 'help'], {
      env: { ...env, NODE_DISABLE_COMPILE_CACHE: '1' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(off.status, off.stderr).toBe(0);
    expect(off.stderr).toContain('CACHE[true,null]');
  });

  // Prints, as the program ends, the process id and the Node flags it ran with (a process that
  // replaced itself never reaches its own exit).
  const reportFlags = `--import=data:text/javascript,process.on('exit',()=>process.stderr.write('FLAGS'+JSON.stringify([process.pid,process.execArgv])+'\\n'))`;

  /** Runs `command args` with NODE_OPTIONS `nodeOptions` and answers the process id and the flags it ended with. */
  async function flagsOf(
    command: string,
    args: string[],
    nodeOptions: string,
  ): Promise<{ spawned: number; pid: number; execArgv: string[] }> {
    const env = { PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`, HOME: tmp, TMPDIR: tmp, NODE_OPTIONS: nodeOptions };
    const child = spawn(command, [...args, 'help'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, stderr).toBe(0);
    const lines = stderr.split('\n').filter((l) => l.startsWith('FLAGS'));
    expect(lines, stderr).toHaveLength(1);
    const [pid, execArgv] = JSON.parse(lines[0]!.slice('FLAGS'.length)) as [number, string[]];
    return { spawned: child.pid!, pid, execArgv };
  }

  it('started as `node meshwork.ts`, replaces itself (same process) with one that has its flags', async () => {
    const run = await flagsOf(process.execPath, [entry], reportFlags);
    expect(run.execArgv).toEqual([...agentNodeFlags]);
    expect(run.pid).toBe(run.spawned);
  });

  it('run as a program (how npm links it), gets its flags from its #! line', async () => {
    expect(readFileSync(entry, 'utf8').split('\n')[0]).toBe(`#!/usr/bin/env -S node ${agentNodeFlags.join(' ')}`);
    const run = await flagsOf(entry, [], reportFlags);
    expect(run.execArgv).toEqual([...agentNodeFlags]);
  });

  it("keeps a person's own value of a flag given in NODE_OPTIONS, and adds the others", async () => {
    const run = await flagsOf(process.execPath, [entry], `${reportFlags} --max-semi-space-size=8`);
    expect(run.execArgv).toEqual(agentNodeFlags.filter((flag) => !flag.startsWith('--max-semi-space-size=')));
    // Every flag NODE_OPTIONS may hold given there: only the one it may not is added.
    const all = await flagsOf(process.execPath, [entry], `${reportFlags} --max-semi-space-size=8 --expose-gc`);
    expect(all.execArgv).toEqual(['--heap-growing-percent=10']);
    const none = await flagsOf(
      process.execPath,
      ['--heap-growing-percent=20', entry],
      `${reportFlags} --max-semi-space-size=8 --expose-gc`,
    );
    expect(none.execArgv).toEqual(['--heap-growing-percent=20']);
  });
});
