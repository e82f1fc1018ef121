// Runs a rebalancing plan (moves.ts) against etcd (ADR 34): the only I/O of online slot moves.
// Each chunk is one transaction that compares every owner key of the chunk with what was read
// and writes the new owner with the epoch raised, together with the plan's progress, so that
// a new operator leader continues from the chunk the last one finished. A write of the former
// owner that is still on its way compares the owner key it was admitted at and fails (the
// partition answers 503 slot_moving); the new owner serves the chunk as soon as its watch of the
// owner keys hears the swap.
import {
  parseSlotMapRecordSlots,
  parseSlotOwnerRecord,
  slotCount,
  slotMapPrefix,
  slotOfOwnerKey,
  slotOwnerKey,
  slotOwnerPrefix,
  type SlotMapRecord,
  type SlotOwnerRecord,
} from '@meshwork/contract';
import type { Etcd3 } from 'etcd3';
import { describeMove, maxSlotsPerMove, rangesToSlots, type MovePlan, type SlotMove } from './moves.ts';

/** Prefix of the plans being run: `/mw/moves/{mesh}` holds a `RecordedPlan`. */
export const movePlansPrefix = '/mw/moves/';

/** A plan as etcd keeps it while it runs: its moves and how many are done. */
export interface RecordedPlan {
  moves: SlotMove[];
  done: number;
  startedAt: string;
}

/** The owner of every slot now, and each owner key's revision (0: the slot has none and follows the claims). */
export interface CurrentOwners {
  /** The partition serving each slot; '' for a slot nobody owns. */
  owners: string[];
  /** The revision of each slot's owner key and its record; absent for a slot without one. */
  keys: Map<number, { record: SlotOwnerRecord; revision: number }>;
}

/** Raised when a chunk's owners are not what the plan expected (another writer moved them): plan again. */
export class MoveConflictError extends Error {
  override readonly name = 'MoveConflictError';
}

/** Reads who owns each slot: the owner keys, and for slots without one the latest claim in the slot map. */
export async function readSlotOwners(etcd: Etcd3): Promise<CurrentOwners> {
  const res = await etcd
    .if(slotOwnerPrefix, 'Mod', '!=', -1)
    .then(etcd.getAll().prefix(slotMapPrefix), etcd.getAll().prefix(slotOwnerPrefix))
    .commit();
  const owners = new Array<string>(slotCount).fill('');
  const claims = (res.responses[0]?.response_range.kvs ?? [])
    .map((kv) => ({ record: JSON.parse(kv.value.toString('utf8')) as SlotMapRecord, revision: Number(kv.mod_revision) }))
    .sort((a, b) => a.revision - b.revision);
  for (const { record } of claims) {
    for (const slot of parseSlotMapRecordSlots(record)) owners[slot] = record.partition;
  }
  const keys = new Map<number, { record: SlotOwnerRecord; revision: number }>();
  for (const kv of res.responses[1]?.response_range.kvs ?? []) {
    const slot = slotOfOwnerKey(kv.key.toString('utf8'));
    const record = parseSlotOwnerRecord(kv.value.toString('utf8'));
    if (slot === undefined || record === undefined) continue;
    keys.set(slot, { record, revision: Number(kv.mod_revision) });
    owners[slot] = record.partition;
  }
  return { owners, keys };
}

/**
 * Writes an owner key for every slot that has none, naming the partition that serves it now
 * (from the claims), so that from then on the keys alone decide and a partition created for a
 * new layout can start beside the current owners. Returns how many keys it wrote.
 */
export async function seedOwnerKeys(etcd: Etcd3): Promise<number> {
  const { owners, keys } = await readSlotOwners(etcd);
  const missing = owners.flatMap((owner, slot) => (owner !== '' && !keys.has(slot) ? [slot] : []));
  for (let i = 0; i < missing.length; i += maxSlotsPerMove) {
    const batch = missing.slice(i, i + maxSlotsPerMove);
    let txn = etcd.if(slotOwnerKey(batch[0]!), 'Create', '==', 0);
    for (const slot of batch.slice(1)) txn = txn.and(slotOwnerKey(slot), 'Create', '==', 0);
    const res = await txn
      .then(...batch.map((slot) => etcd.put(slotOwnerKey(slot)).value(JSON.stringify({ partition: owners[slot], epoch: 1 }))))
      .commit();
    if (!res.succeeded) throw new MoveConflictError(`owner keys of slots ${batch[0]}-${batch.at(-1)} appeared while seeding them`);
  }
  return missing.length;
}

/**
 * Moves one chunk: if every slot of it is still owned by `move.from`, swaps every owner key to
 * `move.to` (epoch + 1) in one transaction with `extra` puts; a chunk already at `move.to` is
 * done. Returns the revision of the swap (0 when there was nothing to do).
 */
export async function moveChunk(etcd: Etcd3, move: SlotMove, extra: { key: string; value: string }[] = []): Promise<number> {
  const slots = rangesToSlots(move.slots);
  if (slots.length === 0 || slots.length > maxSlotsPerMove) throw new RangeError(`a move carries 1 to ${maxSlotsPerMove} slots`);
  const res = await etcd
    .if(slotOwnerPrefix, 'Mod', '!=', -1)
    .then(...slots.map((slot) => etcd.get(slotOwnerKey(slot))))
    .commit();
  const seen = res.responses.map((r) => r.response_range.kvs[0]);
  const current = seen.map((kv) => (kv === undefined ? undefined : parseSlotOwnerRecord(kv.value.toString('utf8'))));
  if (current.every((owner) => owner?.partition === move.to)) return 0;
  const wrong = slots.filter((_slot, i) => current[i]?.partition !== move.from);
  if (wrong.length > 0) {
    throw new MoveConflictError(`slot ${wrong[0]} of ${describeMove(move)} is not owned by ${move.from} by its owner key`);
  }
  let txn = etcd.if(slotOwnerKey(slots[0]!), 'Mod', '==', Number(seen[0]!.mod_revision));
  slots.slice(1).forEach((slot, i) => {
    txn = txn.and(slotOwnerKey(slot), 'Mod', '==', Number(seen[i + 1]!.mod_revision));
  });
  const swap = await txn
    .then(
      ...slots.map((slot, i) =>
        etcd.put(slotOwnerKey(slot)).value(JSON.stringify({ partition: move.to, epoch: current[i]!.epoch + 1 } satisfies SlotOwnerRecord)),
      ),
      ...extra.map((e) => etcd.put(e.key).value(e.value)),
    )
    .commit();
  if (!swap.succeeded) throw new MoveConflictError(`the owner keys of ${describeMove(move)} changed while it was being swapped`);
  return Number(swap.header.revision);
}

/** The key of the plan a Mesh is running. */
export function movePlanKey(mesh: string): string {
  return `${movePlansPrefix}${mesh}`;
}

/** The plan a Mesh is running, if any (a new operator leader continues it). */
export async function readRecordedPlan(etcd: Etcd3, mesh: string): Promise<RecordedPlan | undefined> {
  const text = await etcd.get(movePlanKey(mesh)).string();
  return text === null ? undefined : (JSON.parse(text) as RecordedPlan);
}

/**
 * Runs `plan` for `mesh` chunk by chunk, recording progress with each swap, and deletes the
 * record when every chunk is done. `onMoved` hears each chunk. Seeds the owner keys first. A plan
 * recorded by an earlier run that did not finish is continued instead of `plan`: plan again after.
 */
export async function runMovePlan(
  etcd: Etcd3,
  mesh: string,
  plan: Pick<MovePlan, 'moves'>,
  onMoved: (move: SlotMove, revision: number) => void = () => undefined,
): Promise<void> {
  await seedOwnerKeys(etcd);
  const key = movePlanKey(mesh);
  // A plan a former leader left unfinished is finished first: its chunks are what the owners are in the middle of.
  let recorded = await readRecordedPlan(etcd, mesh);
  if (recorded === undefined) {
    recorded = { moves: plan.moves, done: 0, startedAt: new Date().toISOString() };
    await etcd.put(key).value(JSON.stringify(recorded));
  }
  for (let i = recorded.done; i < recorded.moves.length; i++) {
    const move = recorded.moves[i]!;
    const progress = { key, value: JSON.stringify({ ...recorded, done: i + 1 } satisfies RecordedPlan) };
    onMoved(move, await moveChunk(etcd, move, [progress]));
  }
  await etcd.delete().key(key);
}
