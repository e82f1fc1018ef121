// Waiting for conditions with a deadline, instead of sleeping for a fixed time.
import { setTimeout as delay } from 'node:timers/promises';
import { MeshworkError } from '@meshwork/contract';

/** Raised when a condition did not hold before its deadline. */
export class DeadlineExceededError extends MeshworkError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('deadline_exceeded', message, options);
  }
}

export interface WaitOptions {
  /** What is awaited, for the error message: "etcd to answer /health". */
  description: string;
  timeoutMs: number;
  intervalMs?: number;
  /** Checked before each attempt; a string it returns aborts the wait with that reason. */
  abortIf?: () => string | undefined;
}

/**
 * Polls `check` until it returns a value other than undefined/false and returns that value.
 * Errors thrown by `check` count as "not yet"; the last one is reported at the deadline.
 */
export async function waitFor<T>(check: () => Promise<T | undefined | false> | T | undefined | false, options: WaitOptions): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  const interval = options.intervalMs ?? 200;
  let lastError: unknown;
  for (;;) {
    const abort = options.abortIf?.();
    if (abort !== undefined) throw new DeadlineExceededError(`Gave up waiting for ${options.description}: ${abort}`);
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const detail = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new DeadlineExceededError(`Timed out after ${options.timeoutMs} ms waiting for ${options.description}${detail}`, {
        cause: lastError,
      });
    }
    await delay(Math.min(interval, Math.max(0, deadline - Date.now())));
  }
}
