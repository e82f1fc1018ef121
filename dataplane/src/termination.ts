// Fail-fast exits: one line on stderr and in the termination-message file, then a
// classified exit code. The codes and the message format are the contract the operator's
// watchdog reads (@meshwork/contract, exit-codes.ts).
import { writeFileSync } from 'node:fs';
import { defaultTerminationMessagePath, formatTerminationMessage, PartitionEnv, type ExitCodeValue } from '@meshwork/contract';

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
