// Fail-fast exits: one line on stderr and in the termination-message file, then a
// classified exit code. The codes and the message format are the contract the operator's
// watchdog reads (@meshwork/contract, exit-codes.ts).
import { writeFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { defaultTerminationMessagePath, ExitCode, formatTerminationMessage, PartitionEnv, type ExitCodeValue } from '@meshwork/contract';

export { defaultTerminationMessagePath };

/** Records `reason` where the kubelet and a person will find it, without throwing. */
export function recordTermination(
  reason: string,
  path: string = process.env[PartitionEnv.terminationMessagePath] ?? defaultTerminationMessagePath,
): void {
  const line = formatTerminationMessage(reason);
  process.stderr.write(`${line}\n`);
  try {
    writeFileSync(path, `${line}\n`);
  } catch {
    // The file is optional outside Kubernetes (absent directory, read-only): stderr has the reason.
  }
}

/** Writes the reason and exits with `code`; for failures the process cannot recover from. */
export function terminate(code: ExitCodeValue, reason: string): never {
  recordTermination(reason);
  process.exit(code);
}

/**
 * Runs a role's `drain` once, on the first SIGTERM or SIGINT, after starting to report
 * not-ready; a backstop exits when the grace period ends first, so the process is gone before
 * the kubelet's SIGKILL whatever hangs in `drain`.
 */
export function drainOnSignal(options: {
  graceSeconds: number;
  log: Logger;
  /** Makes readiness fail, so that no new requests are routed here. */
  startDraining: () => void;
  /** Closes the role down within `graceMs` and exits. */
  drain: (signal: string, graceMs: number) => Promise<void>;
}): void {
  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    const graceMs = options.graceSeconds * 1000;
    setTimeout(() => {
      options.log.warn('Exited at the end of the grace period before the shutdown finished');
      process.exit(ExitCode.ok);
    }, graceMs).unref();
    options.startDraining();
    await options.drain(signal, graceMs);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}
