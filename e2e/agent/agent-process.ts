// The device agent driven from outside, as a user drives it: the `meshwork` CLI run as separate
// processes (`login`, `objects create|share`, `sync`, `status`), one config and state directory
// per device. A continuous `meshwork sync --json` runs under the harness's ManagedProcess (own
// process group, reaped if the test dies); its stdout (one JSON AgentEvent per line) and stderr
// share a log file, which is read incrementally to collect the events. Used by the agent
// benchmark (bench/agent.bench.ts) and the convergence test (converge.e2e.test.ts).
import { spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentEvent } from '@meshwork/client/agent';
import { repoRoot } from '../harness/binaries.ts';
import { ManagedProcess, type ExitStatus } from '../harness/process.ts';
import { ipCommand } from '../node-agent/network.ts';
import { waitFor } from '../harness/wait.ts';

/** The CLI's entry point. */
export const cliPath = join(repoRoot, 'client', 'src', 'cli', 'meshwork.ts');

/** The exit code the CLI documents for a revoked device (401). */
export const unauthorizedExitCode = 77;

/** How `meshwork --json` reports a failure on stderr (docs/agent.md). */
export interface CliFailure {
  exitCode: number;
  code: string;
  message: string;
}

/** One device's identity on this machine: its CLI directories and name. */
export interface AgentHome {
  name: string;
  /** Holds config/ and state/ (MESHWORK_CONFIG_DIR, MESHWORK_STATE_DIR) and the logs. */
  dir: string;
  env: NodeJS.ProcessEnv;
  /** A network namespace every command of this device runs in (a device behind a NAT in the p2p tests). */
  netns?: string;
}

/** The command that runs node with `args` for `home`: inside its namespace when it has one. */
export function nodeCommand(home: AgentHome, args: string[]): { binary: string; args: string[] } {
  if (home.netns === undefined) return { binary: process.execPath, args };
  return { binary: ipCommand(), args: ['netns', 'exec', home.netns, process.execPath, ...args] };
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Makes a fresh home for device `name` under a new temporary directory (or under `parent`). */
export async function makeAgentHome(name: string, parent?: string): Promise<AgentHome> {
  const dir = parent ? join(parent, name) : await mkdtemp(join(tmpdir(), `meshwork-agent-${name}-`));
  await mkdir(join(dir, 'config'), { recursive: true });
  await mkdir(join(dir, 'state'), { recursive: true });
  return {
    name,
    dir,
    env: {
      PATH: process.env.PATH,
      HOME: dir,
      MESHWORK_CONFIG_DIR: join(dir, 'config'),
      MESHWORK_STATE_DIR: join(dir, 'state'),
      // Tests serve on loopback only.
      MESHWORK_PEER_LISTEN: '127.0.0.1:0',
    },
  };
}

/** Runs `meshwork ARGS` for `home` and resolves with its output whatever its exit; killed after `timeoutMs`. */
export function runCli(home: AgentHome, args: string[], options: { timeoutMs?: number } = {}): Promise<CliResult> {
  const start = performance.now();
  const command = nodeCommand(home, [cliPath, ...args]);
  const child = spawn(command.binary, command.args, {
    cwd: repoRoot,
    env: home.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: options.timeoutMs ?? 120_000,
    killSignal: 'SIGKILL',
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve) => {
    child.on('error', (err) =>
      resolve({ code: null, signal: null, stdout, stderr: `${stderr}${String(err)}`, ms: performance.now() - start }),
    );
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, ms: performance.now() - start }));
  });
}

/** Like runCli, but raises with the command's output unless it exits 0. */
export async function mustRunCli(home: AgentHome, args: string[], options: { timeoutMs?: number } = {}): Promise<CliResult> {
  const result = await runCli(home, args, options);
  if (result.code !== 0) {
    throw new Error(
      `meshwork ${args.join(' ')} (${home.name}) ${result.signal ? `was killed by ${result.signal}` : `exited with ${result.code}`}:\n` +
        `${result.stderr}${result.stdout}`.trim(),
    );
  }
  return result;
}

/** The last JSON object a command printed (`--json` output). */
export function parseJsonOutput<T>(result: CliResult): T {
  const text = result.stdout.trim();
  try {
    return JSON.parse(text) as T;
  } catch {
    const last = text
      .split('\n')
      .reverse()
      .find((l) => l.trim().startsWith('{'));
    if (last === undefined) throw new Error(`expected JSON on stdout, got: ${text || '(nothing)'}\nstderr: ${result.stderr}`);
    return JSON.parse(last) as T;
  }
}

/** `meshwork login`: registers this home as device `home.name` of the account whose token is given. */
export async function login(home: AgentHome, serverUrl: string, accountToken: string): Promise<void> {
  const tokenFile = join(home.dir, 'account-token');
  await writeFile(tokenFile, accountToken, { mode: 0o600 });
  await mustRunCli(home, ['login', '--server', serverUrl, '--name', home.name, '--token-file', tokenFile]);
  await rm(tokenFile, { force: true });
}

/** `meshwork objects create NAME --json`: the new object's id. */
export async function createObject(home: AgentHome, name: string): Promise<string> {
  const created = parseJsonOutput<{ id?: string }>(await mustRunCli(home, ['objects', 'create', name, '--json']));
  if (typeof created.id !== 'string') throw new Error(`objects create printed no id: ${JSON.stringify(created)}`);
  return created.id;
}

/** `meshwork objects share ID USERID --role ROLE`. */
export async function shareObject(home: AgentHome, objectId: string, userId: string, role: 'writer' | 'reader' = 'writer'): Promise<void> {
  await mustRunCli(home, ['objects', 'share', objectId, userId, '--role', role]);
}

/** `meshwork sync DIR --object ID --once --json`: one pass; its events and its wall time. */
export async function syncOnce(
  home: AgentHome,
  dir: string,
  objectId: string,
  options: { timeoutMs?: number } = {},
): Promise<{ events: AgentEvent[]; ms: number }> {
  const result = await mustRunCli(home, ['sync', dir, '--object', objectId, '--once', '--json'], options);
  return { events: parseEvents(result.stdout), ms: result.ms };
}

/** `meshwork status --json`. */
export async function status(home: AgentHome): Promise<unknown> {
  return parseJsonOutput(await mustRunCli(home, ['status', '--json']));
}

/** The AgentEvents among lines of output (other lines are ignored). */
export function parseEvents(text: string): AgentEvent[] {
  const events: AgentEvent[] = [];
  for (const line of text.split('\n')) {
    const event = parseEventLine(line);
    if (event) events.push(event);
  }
  return events;
}

function parseEventLine(line: string): AgentEvent | undefined {
  const trimmed = line.trim();
  if (!trimmed.startsWith('{')) return undefined;
  try {
    const value = JSON.parse(trimmed) as { type?: unknown };
    return typeof value.type === 'string' ? (value as AgentEvent) : undefined;
  } catch {
    return undefined;
  }
}

/** A continuous `meshwork sync DIR --object ID --json` process. */
export class AgentProcess {
  readonly home: AgentHome;
  readonly dir: string;
  readonly objectId: string;
  readonly process: ManagedProcess;
  readonly #events: AgentEvent[] = [];
  readonly #otherLines: string[] = [];
  readonly logFile: string;
  #offset = 0;
  #partial = '';

  private constructor(home: AgentHome, dir: string, objectId: string, proc: ManagedProcess, logFile: string) {
    this.home = home;
    this.dir = dir;
    this.objectId = objectId;
    this.process = proc;
    this.logFile = logFile;
  }

  /** Starts syncing `dir` with `objectId` as device `home`. */
  static async start(
    home: AgentHome,
    dir: string,
    objectId: string,
    options: { extraArgs?: string[]; nodeArgs?: string[] } = {},
  ): Promise<AgentProcess> {
    await mkdir(dir, { recursive: true });
    const logFile = join(home.dir, `sync-${Date.now()}-${Math.random().toString(36).slice(2, 6)}.log`);
    const command = nodeCommand(home, [
      ...(options.nodeArgs ?? []),
      cliPath,
      'sync',
      dir,
      '--object',
      objectId,
      '--json',
      ...(options.extraArgs ?? []),
    ]);
    const proc = ManagedProcess.start({
      component: `agent ${home.name}`,
      binary: command.binary,
      args: command.args,
      logFile,
      cwd: repoRoot,
      env: home.env,
    });
    return new AgentProcess(home, dir, objectId, proc, logFile);
  }

  get pid(): number {
    return this.process.pid;
  }

  get exitStatus(): ExitStatus | undefined {
    return this.process.exitStatus;
  }

  /** Every event the process has written so far, in order (read from its output now). */
  get events(): readonly AgentEvent[] {
    this.poll();
    return this.#events;
  }

  /** Lines of output that were not events (stderr: messages, warnings), read now. */
  get otherLines(): readonly string[] {
    this.poll();
    return this.#otherLines;
  }

  /** Reads what the process wrote since the last call; returns the new events. */
  poll(): AgentEvent[] {
    const fresh: AgentEvent[] = [];
    let fd: number;
    try {
      fd = openSync(this.logFile, 'r');
    } catch {
      return fresh;
    }
    try {
      const size = fstatSync(fd).size;
      while (this.#offset < size) {
        const buffer = Buffer.alloc(Math.min(size - this.#offset, 1 << 20));
        const read = readSync(fd, buffer, 0, buffer.length, this.#offset);
        if (read === 0) break;
        this.#offset += read;
        const lines = (this.#partial + buffer.subarray(0, read).toString('utf8')).split('\n');
        this.#partial = lines.pop() ?? '';
        for (const line of lines) {
          const event = parseEventLine(line);
          if (event) fresh.push(event);
          else if (line.trim()) this.#otherLines.push(line);
        }
      }
    } finally {
      closeSync(fd);
    }
    this.#events.push(...fresh);
    return fresh;
  }

  /** How many events have been seen: a mark to wait for what comes after it. */
  mark(): number {
    this.poll();
    return this.events.length;
  }

  /** Waits for an event after `since` (an index from mark()) that `match` accepts; fails if the process exits first. */
  async waitForEvent<E extends AgentEvent>(
    match: (e: AgentEvent) => e is E,
    options: { since?: number; timeoutMs?: number; what?: string },
  ): Promise<E>;
  async waitForEvent(
    match: (e: AgentEvent) => boolean,
    options: { since?: number; timeoutMs?: number; what?: string },
  ): Promise<AgentEvent>;
  async waitForEvent(
    match: (e: AgentEvent) => boolean,
    options: { since?: number; timeoutMs?: number; what?: string } = {},
  ): Promise<AgentEvent> {
    const since = options.since ?? 0;
    return waitFor(
      () => {
        this.poll();
        return this.events.slice(since).find(match);
      },
      {
        description: `agent ${this.home.name} to report ${options.what ?? 'an event'}`,
        timeoutMs: options.timeoutMs ?? 120_000,
        intervalMs: 50,
        abortIf: () => (this.exitStatus ? `it exited (${describe(this.exitStatus)}): ${this.tail()}` : undefined),
      },
    );
  }

  /** Waits for an `idle` event after `since`. */
  async waitIdle(options: { since?: number; timeoutMs?: number } = {}): Promise<void> {
    await this.waitForEvent((e) => e.type === 'idle', { ...options, what: 'idle' });
  }

  /** Waits until the latest event is `idle`: the agent has nothing left to do for now. */
  async waitSettled(options: { timeoutMs?: number } = {}): Promise<void> {
    await waitFor(
      () => {
        this.poll();
        return this.events.at(-1)?.type === 'idle';
      },
      {
        description: `agent ${this.home.name} to settle (its latest event idle)`,
        timeoutMs: options.timeoutMs ?? 120_000,
        intervalMs: 100,
        abortIf: () => (this.exitStatus ? `it exited (${describe(this.exitStatus)}): ${this.tail()}` : undefined),
      },
    );
  }

  /** The failure the command reported on exit (`--json`: `{"error": {exitCode, code, message}}` on stderr), if any. */
  reportedError(): CliFailure | undefined {
    for (const line of [...this.otherLines].reverse()) {
      if (!line.trim().startsWith('{')) continue;
      try {
        const value = JSON.parse(line) as { error?: CliFailure };
        if (value.error && typeof value.error.message === 'string') return value.error;
      } catch {
        // Not JSON after all: a plain message.
      }
    }
    return undefined;
  }

  /** The last lines the process wrote that were not events. */
  tail(lines = 20): string {
    this.poll();
    return this.otherLines.slice(-lines).join('\n');
  }

  /** SIGTERM and wait for the exit (SIGKILL after `graceMs`). */
  async stop(graceMs = 20_000): Promise<ExitStatus> {
    const exit = await this.process.stop(graceMs);
    this.poll();
    return exit;
  }

  /** SIGKILL the process group, without a chance to clean up. */
  async kill(): Promise<ExitStatus> {
    this.process.signal('SIGKILL');
    const exit = await this.process.exited;
    this.poll();
    return exit;
  }

  /** Waits for the process to exit on its own, within `timeoutMs`. */
  async waitExit(timeoutMs = 60_000): Promise<ExitStatus> {
    const exit = await waitFor(() => this.exitStatus, { description: `agent ${this.home.name} to exit`, timeoutMs, intervalMs: 100 });
    this.poll();
    return exit;
  }

  /** Peak resident memory of the process so far (VmHWM), in MiB; undefined once it has exited. */
  peakRssMb(): number | undefined {
    return readProcMb(this.pid, 'VmHWM');
  }

  /** Current resident memory (VmRSS), in MiB. */
  rssMb(): number | undefined {
    return readProcMb(this.pid, 'VmRSS');
  }
}

function describe(exit: ExitStatus): string {
  return exit.signal ? `killed by ${exit.signal}` : `code ${exit.code}`;
}

/** A field of /proc/PID/status in MiB (VmHWM, VmRSS), or undefined when the process is gone. */
export function readProcMb(pid: number, field: 'VmHWM' | 'VmRSS'): number | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = new RegExp(`${field}:\\s+(\\d+) kB`).exec(text)?.[1];
    return kb === undefined ? undefined : Number(kb) / 1024;
  } catch {
    return undefined;
  }
}
