// The operator's typed failures. Reconciles never use exceptions for flow control (they return
// a result); these are what a reconcile or a watchdog action throws when the API server refused
// or failed it, so the work queue's log and the metrics can tell them apart by `code`.
import { MeshworkError } from '@meshwork/contract';

/** A reconcile could not read, apply or record what it had to; the work queue retries it with backoff. */
export class ReconcileError extends MeshworkError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('reconcile_failed', message, options);
  }
}

/** A watchdog action the ladder chose could not be carried out; the partition is reconciled again. */
export class WatchdogActionError extends MeshworkError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('watchdog_action_failed', message, options);
  }
}
