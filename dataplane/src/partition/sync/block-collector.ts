// Collects blocks no entry names any more (ADR 24). What to do with one block is a pure
// decision (planBlockCollection, table-tested) over its etcd records and the entries its
// references point at; collectBlock only reads, runs the plan and repeats. Safety against a
// racing commit comes from etcd transactions: a block is marked `deleting` only if no
// reference exists and no holder was written since the records were read, and a commit writes
// its references only if the block's state did not move since its possession was proved. The
// S3 delete happens after the mark won, and the state becomes `deleted` after S3 answered.
import type { Logger } from 'pino';
import type { SlotRange } from '../../slots.ts';
import type { BlockStore } from '../../stores/block-store.ts';
import type { BlockRecords, MetadataStore } from '../../stores/metadata-store.ts';

/** What the collector found about one reference of a block. */
export interface RefCheck {
  objectId: string;
  path: string;
  /** The reference key's revision when read. */
  version: number;
  /** The entry's revision when read (0: absent). */
  entryVersion: number;
  /** Whether the entry (live, or a version that can still be read) names the block. */
  names: boolean;
  /** Whether the object record exists. */
  objectPresent: boolean;
}

/** What to do with one block. */
export type BlockPlan =
  | { kind: 'keep'; reason: 'referenced' | 'held' | 'being_deleted' }
  /** Nothing recorded is left to collect: the block was deleted and nobody uploaded it since. */
  | { kind: 'gone' }
  /** References whose entries no longer name the block: drop them, then look again. */
  | { kind: 'drop_refs'; refs: RefCheck[] }
  /** Nothing names the block and no upload is within its grace period: mark it `deleting`. */
  | { kind: 'mark' }
  /** A mark older than `takeoverSeconds` (its collector died): delete from S3 and record it. */
  | { kind: 'finish'; markVersion: number };

/** Timing of the collector's decisions. */
export interface CollectorTiming {
  /** How long an uploaded block that nothing names is kept. */
  graceSeconds: number;
  /** After how long another collector finishes a deletion that was marked and not finished. */
  takeoverSeconds: number;
}

/** The plan for one block from its records, what its references point at, and the time. */
export function planBlockCollection(records: BlockRecords, refs: readonly RefCheck[], now: number, timing: CollectorTiming): BlockPlan {
  const state = records.state;
  if (state?.value.state === 'deleting') {
    const age = now - Date.parse(state.value.since);
    return age >= timing.takeoverSeconds * 1000
      ? { kind: 'finish', markVersion: state.version }
      : { kind: 'keep', reason: 'being_deleted' };
  }
  if (refs.some((r) => r.names)) return { kind: 'keep', reason: 'referenced' };
  if (refs.length > 0) return { kind: 'drop_refs', refs: [...refs] };
  if (records.holders.some((h) => now - Date.parse(h.createdAt) < timing.graceSeconds * 1000)) return { kind: 'keep', reason: 'held' };
  if (state?.value.state === 'deleted' && records.holders.length === 0) return { kind: 'gone' };
  return { kind: 'mark' };
}

/** What the collector needs. */
export interface CollectorDeps {
  metadata: Pick<
    MetadataStore,
    'readBlock' | 'getEntry' | 'getObject' | 'dropStaleRef' | 'markBlockDeleting' | 'markBlockDeleted' | 'listBlocks'
  >;
  blocks: Pick<BlockStore, 'delete'>;
  timing: CollectorTiming;
}

/** What happened to one block. */
export type BlockOutcome = 'deleted' | 'kept' | 'gone';

// A default comfortably beyond one S3 call's deadline: a collector still running its own
// deletion is never overtaken.
/** After how long a mark that was not finished is taken over by another collector. */
export const defaultTakeoverSeconds = 600;

// Drops of stale references, then a new look: a block rarely needs more than two.
const roundsPerBlock = 4;

async function checkRefs(metadata: CollectorDeps['metadata'], sha256: string, records: BlockRecords): Promise<RefCheck[]> {
  return Promise.all(
    records.refs.map(async (ref) => {
      const entry = await metadata.getEntry(ref.objectId, ref.path);
      const objectPresent = entry !== undefined || (await metadata.getObject(ref.objectId)) !== undefined;
      // A tombstone names no blocks (a delete clears them), so only a live entry counts.
      const names = entry !== undefined && !entry.value.deleted && entry.value.blocks.some((b) => b.sha256 === sha256);
      return { ...ref, entryVersion: entry?.version ?? 0, names, objectPresent };
    }),
  );
}

async function finish(
  deps: CollectorDeps,
  sha256: string,
  markVersion: number,
  markedAt: number,
  holders: readonly string[],
): Promise<BlockOutcome> {
  // A collector paused past the takeover time leaves the deletion to whoever took it over.
  if (Date.now() - markedAt >= (deps.timing.takeoverSeconds * 1000) / 2) return 'kept';
  await deps.blocks.delete(sha256);
  await deps.metadata.markBlockDeleted(sha256, markVersion, new Date(), holders);
  return 'deleted';
}

/** Collects one block if nothing names it and no upload of it is within its grace period. */
export async function collectBlock(deps: CollectorDeps, sha256: string, now = Date.now()): Promise<BlockOutcome> {
  for (let round = 0; round < roundsPerBlock; round++) {
    const records = await deps.metadata.readBlock(sha256);
    const refs = records.state?.value.state === 'deleting' ? [] : await checkRefs(deps.metadata, sha256, records);
    const plan = planBlockCollection(records, refs, now, deps.timing);
    switch (plan.kind) {
      case 'keep':
        return 'kept';
      case 'gone':
        return 'gone';
      case 'drop_refs':
        for (const ref of plan.refs) await deps.metadata.dropStaleRef(sha256, ref, ref.entryVersion, ref.objectPresent);
        break;
      case 'mark': {
        const markedAt = Date.now();
        const markVersion = await deps.metadata.markBlockDeleting(sha256, records, new Date(markedAt));
        if (markVersion === undefined) break;
        return finish(
          deps,
          sha256,
          markVersion,
          markedAt,
          records.holders.map((h) => h.userId),
        );
      }
      case 'finish':
        // The mark is old: this collector's own clock starts now.
        return finish(deps, sha256, plan.markVersion, Date.now(), records.state?.value.holders ?? []);
    }
  }
  return 'kept';
}

/** Runs the collector over every block recorded in `slots`; how many blocks it deleted. */
export async function collectBlocks(deps: CollectorDeps, slots: readonly SlotRange[], now = Date.now()): Promise<number> {
  let deleted = 0;
  for (const range of slots) {
    for (let slot = range.first; slot <= range.last; slot++) {
      for (const sha256 of await deps.metadata.listBlocks(slot)) {
        if ((await collectBlock(deps, sha256, now)) === 'deleted') deleted++;
      }
    }
  }
  return deleted;
}

/** Collects every `intervalSeconds` until stopped; failures are logged and retried next time. */
export function startBlockCollector(deps: CollectorDeps, slots: readonly SlotRange[], intervalSeconds: number, logger: Logger): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    collectBlocks(deps, slots)
      .then((deleted) => {
        if (deleted > 0) logger.info({ deleted }, 'Collected unreferenced blocks');
      })
      .catch((err: unknown) => logger.warn({ err }, 'Failed to collect blocks; will retry'))
      .finally(() => {
        running = false;
      });
  }, intervalSeconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
