// Fail-fast exits: one line on stderr and in the termination-message file, then a
// classified exit code (see exit-codes.ts).
import { writeFileSync } from 'node:fs';
import type { ExitCodeValue } from './exit-codes.ts';

/** Default location Kubernetes reads a container's termination message from. */
export const defaultTerminationMessagePath = '/dev/termination-log';

/** Records `reason` where the kubelet and a person will find it, without throwing. */
export function recordTermination(reason: string, path: string = process.env.MESHWORK_TERMINATION_MESSAGE_PATH ?? defaultTerminationMessagePath): void {
  const line = reason.replace(/\s+/g, ' ').slice(0, 4000);
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
