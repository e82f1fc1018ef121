// Errors the harness raises; each names the component it concerns. Like every Meshwork error
// they derive from the contract's MeshworkError and carry a stable `code`.
import { MeshworkError } from '@meshwork/contract';

/** A pinned binary under bin/ is missing: the remedy is `make tools`. */
export class MissingBinaryError extends MeshworkError {
  readonly binary: string;
  readonly path: string;

  constructor(binary: string, path: string) {
    super('missing_binary', `${binary} is missing at ${path}: run "make tools" to build the pinned infrastructure`);
    this.binary = binary;
    this.path = path;
  }
}

/** A component did not become ready: it exited, its port was taken, or the deadline passed. */
export class ComponentStartError extends MeshworkError {
  readonly component: string;
  readonly reason: string;
  readonly logTail: string;

  constructor(component: string, reason: string, logTail: string, options?: { cause?: unknown }) {
    super(
      'component_start_failed',
      `${component} failed to start: ${reason}` +
        (logTail ? `\n--- last lines of the ${component} log ---\n${logTail}` : `\n(${component} wrote no log)`),
      options,
    );
    this.component = component;
    this.reason = reason;
    this.logTail = logTail;
  }

  /** Whether the failure was a port another process took first (worth a retry on new ports). */
  get portTaken(): boolean {
    return /address already in use|EADDRINUSE/i.test(`${this.reason}\n${this.logTail}`);
  }
}
