// Child processes of the harness: started in their own process group, logged to a
// file, awaited with a deadline, stopped gracefully, and reaped if this process dies.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, fstatSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ComponentStartError } from './errors.ts';
import { requireBinary } from './binaries.ts';
import { waitFor, DeadlineExceededError } from './wait.ts';

export interface ProcessSpec {
  /** Human name used in errors and logs: "etcd", "kube-apiserver". */
  component: string;
  /** A binary name under bin/, or an absolute path. */
  binary: string;
  args: string[];
  /** Where stdout and stderr go (appended). */
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

let reaper: ChildProcess | undefined;

/** The per-process reaper that kills our process groups if this process dies. */
function reaperChannel(): ChildProcess {
  if (reaper?.stdin && !reaper.stdin.destroyed && reaper.exitCode === null) return reaper;
  const script = join(dirname(fileURLToPath(import.meta.url)), 'reaper.ts');
  reaper = spawn(process.execPath, [script], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
  reaper.unref();
  // The pipe must not keep this process alive; its closing is the reaper's signal.
  (reaper.stdin as unknown as { unref?: () => void }).unref?.();
  reaper.stdin?.on('error', () => undefined);
  return reaper;
}

/**
 * Asks the reaper to delete a network namespace (`netns`, with its /etc/netns directory) or a
 * link (`link`) if this process dies before it removes them itself (ADR 27).
 */
export function registerCleanup(kind: 'netns' | 'link', name: string): void {
  reaperChannel().stdin?.write(`+${kind} ${name}\n`);
}

/** The pid of this process's reaper, if it has one (it starts with the first process group or cleanup registered). */
export function reaperPid(): number | undefined {
  return reaper?.exitCode === null ? reaper.pid : undefined;
}

/** Tells the reaper that a namespace or link registered with registerCleanup is gone. */
export function forgetCleanup(kind: 'netns' | 'link', name: string): void {
  reaper?.stdin?.write(`-${kind} ${name}\n`);
}

/** Whether a process with this pid exists and is not a zombie. */
export function processAlive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Reads the last `lines` lines of a log file (at most its last 64 KiB). */
export function tailFile(path: string, lines = 40): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return '';
  }
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, 64 * 1024);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    return buffer.toString('utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } finally {
    closeSync(fd);
  }
}

/** A server process started by the harness. */
export class ManagedProcess {
  readonly spec: ProcessSpec;
  readonly child: ChildProcess;
  #exit: ExitStatus | undefined;
  readonly #exited: Promise<ExitStatus>;

  private constructor(spec: ProcessSpec, child: ChildProcess) {
    this.spec = spec;
    this.child = child;
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exit = { code, signal };
        reaper?.stdin?.write(`-${child.pid}\n`);
        resolve(this.#exit);
      });
    });
  }

  /** Starts `spec` in a new process group with output appended to its log file. */
  static start(spec: ProcessSpec): ManagedProcess {
    const path = spec.binary.startsWith('/') ? spec.binary : requireBinary(spec.binary);
    const log = openSync(spec.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(path, spec.args, {
        cwd: spec.cwd,
        env: spec.env ?? process.env,
        detached: true,
        stdio: ['ignore', log, log],
      });
    } finally {
      closeSync(log);
    }
    if (child.pid === undefined) {
      throw new ComponentStartError(spec.component, `could not spawn ${path}`, tailFile(spec.logFile));
    }
    reaperChannel().stdin?.write(`+${child.pid}\n`);
    child.on('error', () => undefined);
    return new ManagedProcess(spec, child);
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** The exit status, once the process has exited. */
  get exitStatus(): ExitStatus | undefined {
    return this.#exit;
  }

  /** Resolves when the process has exited. */
  get exited(): Promise<ExitStatus> {
    return this.#exited;
  }

  logTail(lines = 40): string {
    return tailFile(this.spec.logFile, lines);
  }

  /**
   * Waits until `probe` answers true; raises a ComponentStartError naming the component,
   * with the tail of its log, if the process exits first or the deadline passes.
   */
  async waitReady(probe: () => Promise<boolean>, options: { timeoutMs: number; what?: string }): Promise<void> {
    try {
      await waitFor(async () => (await probe()) || undefined, {
        description: `${this.spec.component} ${options.what ?? 'to become ready'}`,
        timeoutMs: options.timeoutMs,
        intervalMs: 150,
        abortIf: () => (this.#exit ? describeExit(this.#exit) : undefined),
      });
    } catch (err) {
      const reason = this.#exit
        ? `the process ${describeExit(this.#exit)} before it was ready`
        : err instanceof DeadlineExceededError
          ? `not ready within ${options.timeoutMs} ms`
          : String(err);
      throw new ComponentStartError(this.spec.component, reason, this.logTail(), { cause: err });
    }
  }

  /** Sends a signal to the whole process group (SIGSTOP/SIGCONT freeze and thaw it). */
  signal(signal: NodeJS.Signals): void {
    if (this.#exit) return;
    try {
      process.kill(-this.pid, signal);
    } catch {
      // Already gone.
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  async stop(graceMs = 10_000): Promise<ExitStatus> {
    if (this.#exit) return this.#exit;
    this.signal('SIGCONT');
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    try {
      return await this.#exited;
    } finally {
      clearTimeout(timer);
      // Whatever the leader left behind in its group goes with it.
      try {
        process.kill(-this.pid, 'SIGKILL');
      } catch {
        // Nothing left.
      }
    }
  }
}

function describeExit(exit: ExitStatus): string {
  return exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
}

/**
 * Stops `proc` and removes `dir`, the temporary directory that held its log and termination
 * message: what a test reads of them, it reads before it stops the process.
 */
export async function stopAndRemove(proc: ManagedProcess, dir: string): Promise<void> {
  await proc.stop();
  await rm(dir, { recursive: true, force: true });
}
