// A deadline on a promise, for checks that must answer even when what they check hangs.
import { MeshworkError } from '@meshwork/contract';

/** Raised when a promise did not settle within its deadline. */
export class TimeoutError extends MeshworkError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('timeout', message, options);
  }
}

/** Resolves like `promise`, or rejects with a TimeoutError after `ms` (the promise keeps running). */
export async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new TimeoutError(`no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
