// The slot fence of the request being served (ADR 34): the slot a request was admitted in and
// the revision of that slot's owner key when it was admitted. The partition's hooks run a
// request's handler inside `withSlotFence`, and every metadata transaction the handler makes
// compares the owner key against that revision, so a write still on its way when the operator
// moves the slot fails instead of being applied by a partition that no longer owns it. Carried
// in an AsyncLocalStorage rather than as an argument so that every write of every route is
// fenced without each store method and its callers passing it along.
import { AsyncLocalStorage } from 'node:async_hooks';
import { MeshworkError, slotOwnerKey } from '@meshwork/contract';

/** A request's slot and the owner key's revision it was admitted at (0: the slot had no owner key). */
export interface SlotFence {
  slot: number;
  revision: number;
}

/** Raised by a write whose slot's owner key moved after the request was admitted: nothing was written. */
export class SlotMovedError extends MeshworkError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('slot_moving', message, options);
  }
}

const current = new AsyncLocalStorage<SlotFence>();

/** Runs `work` with `fence` as the slot fence of every metadata write it makes. */
export function withSlotFence<T>(fence: SlotFence | undefined, work: () => T): T {
  return fence === undefined ? work() : current.run(fence, work);
}

/** Runs `work` with no slot fence: for writes that serve many requests at once, or none. */
export function withoutSlotFence<T>(work: () => T): T {
  return current.exit(work);
}

/** The slot fence of the request being served, if any, as the owner key and revision to compare. */
export function currentSlotFence(): { slot: number; key: string; revision: number } | undefined {
  const fence = current.getStore();
  return fence === undefined ? undefined : { ...fence, key: slotOwnerKey(fence.slot) };
}
