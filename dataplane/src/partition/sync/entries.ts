// Entries of a mesh object as the sync protocol sees them (ADR 0004): commit a block list or a
// directory under a precondition, delete to a tombstone, read the live entry, and list the live
// entries page by page at one snapshot. No HTTP here: routes parse and answer.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { ApiError } from '@meshwork/contract';
import { formatCursor, formatPageToken, type PageToken } from '../../cursor.ts';
import type { WritePrecondition } from '../../http/preconditions.ts';
import type { BlockStore } from '../../stores/block-store.ts';
import {
  inlineRefLimit,
  type BlockToReference,
  type EntryRecord,
  type EntryRefs,
  type MetadataStore,
  type Versioned,
} from '../../stores/metadata-store.ts';
import { contentHashOf } from '../content-plan.ts';
import { invalidRequest, notFound } from '../errors.ts';
import type { CommitEntryBody } from '../schemas.ts';
import { blocksMissing, isOrphanHolder, proveBlocks, uploadBlock, type BlockDeps, type BlockProof } from './blocks.ts';
import type { PossessionCache } from './possession-cache.ts';
import { conditionalWrite, entryView, type EntryWriteDeps } from './conditional-write.ts';

/** Who writes: the user whose access is checked, and the device (or user) recorded as `modifiedBy`. */
export interface Writer {
  userId: string;
  modifiedBy: string;
}

/** Which of `blocks` the store lacks (409 `blocks_missing`) or holds at another size (400); the entry's size otherwise. */
export function checkCommittedBlocks(blocks: CommitEntryBody & { kind: 'file' }, sizes: ReadonlyMap<string, number | undefined>): number {
  const missing = [...sizes].filter(([, s]) => s === undefined).map(([sha]) => sha);
  if (missing.length > 0) throw blocksMissing(missing);
  let size = 0;
  blocks.blocks.forEach((block, i) => {
    if (sizes.get(block.sha256) !== block.size) {
      throw invalidRequest(
        `body.blocks.${i}.size`,
        `body.blocks.${i}.size: block ${block.sha256} is ${sizes.get(block.sha256)} bytes, not ${block.size}`,
      );
    }
    size += block.size;
  });
  return size;
}

/** The record a commit writes. */
export function committedRecord(path: string, body: CommitEntryBody, size: number, modifiedBy: string, now: Date): EntryRecord {
  return {
    path,
    kind: body.kind,
    size,
    blocks: body.kind === 'file' ? body.blocks : [],
    contentHash: body.kind === 'file' ? contentHashOf(body.blocks) : null,
    modifiedBy,
    mtime: body.mtime ?? now.toISOString(),
    deleted: false,
  };
}

/** What the entry service needs: the metadata store (entries, block possession and references), the access rule and the block store's sizes. */
export interface EntryDeps extends EntryWriteDeps {
  metadata: Pick<
    MetadataStore,
    'getEntry' | 'putEntry' | 'listEntries' | 'readBlock' | 'readBlocks' | 'listMemberships' | 'addBlockRefs' | 'refEpoch' | 'dropHolder'
  >;
  blocks: Pick<BlockStore, 'sizesOf'>;
  /** Proofs remembered from this process's uploads (none: every proof is read from the store). */
  possession?: PossessionCache;
}

/**
 * The caller's proofs of possession of `shas` and the blocks' sizes: remembered from the
 * caller's uploads through this process where possible, read from etcd and S3 otherwise.
 */
async function proofsAndSizes(
  deps: EntryDeps,
  userId: string,
  shas: readonly string[],
  useRemembered: boolean,
): Promise<{ proofs: Map<string, BlockProof | undefined>; sizes: Map<string, number | undefined>; remembered: boolean }> {
  const proofs = new Map<string, BlockProof | undefined>();
  const sizes = new Map<string, number | undefined>();
  const unknown: string[] = [];
  for (const sha256 of new Set(shas)) {
    const known = useRemembered ? deps.possession?.recall(userId, sha256) : undefined;
    if (known === undefined) {
      unknown.push(sha256);
      proofs.set(sha256, undefined);
    } else {
      proofs.set(sha256, { sha256, stateVersion: known.stateVersion });
      sizes.set(sha256, known.size);
    }
  }
  if (unknown.length > 0) {
    const [read, readSizes] = await Promise.all([proveBlocks(deps.metadata, userId, unknown), deps.blocks.sizesOf(unknown)]);
    for (const [sha256, proof] of read) proofs.set(sha256, proof);
    for (const [sha256, size] of readSizes) sizes.set(sha256, size);
  }
  return { proofs, sizes, remembered: unknown.length < proofs.size };
}

/**
 * The record of a file in a peer-to-peer only object (`cloudStorage: false`): its content never
 * reaches the service, so only the block list's shape and sizes are checked (by the body's
 * schema), no proof of possession is asked and no block reference is written. Without a
 * reference the entry gives nobody possession of a block in the store (ADR 24): naming a hash
 * in such an object proves nothing, so it must grant nothing.
 */
export function peerToPeerRecord(path: string, body: CommitEntryBody & { kind: 'file' }, modifiedBy: string, now: Date): EntryRecord {
  return committedRecord(
    path,
    body,
    body.blocks.reduce((n, b) => n + b.size, 0),
    modifiedBy,
    now,
  );
}

/**
 * Commits a file's block list or a directory; the caller's write access was checked already.
 * Every block must be one the caller proved possession of (409 `blocks_missing` otherwise),
 * unless the object is peer-to-peer only (`peerToPeerOnly`, see peerToPeerRecord).
 * The entry's block references are written first, each only if its block was not marked for
 * collection since the proof, and the entry's transaction checks none was dropped (ADR 24).
 */
export async function commitEntry(
  deps: EntryDeps,
  request: {
    objectId: string;
    path: string;
    body: CommitEntryBody;
    precondition: WritePrecondition;
    writer: Writer;
    peerToPeerOnly?: boolean;
  },
): Promise<{ entry: Versioned<EntryRecord>; created: boolean }> {
  const { objectId, path, body, precondition, writer } = request;
  if (body.kind !== 'file') {
    const record = committedRecord(path, body, 0, writer.modifiedBy, new Date());
    return conditionalWrite(deps, { objectId, userId: writer.userId, path, precondition, build: () => record, blind: true });
  }
  if (request.peerToPeerOnly === true) {
    // Like a directory: no references to keep.
    const record = peerToPeerRecord(path, body, writer.modifiedBy, new Date());
    return conditionalWrite(deps, { objectId, userId: writer.userId, path, precondition, build: () => record, blind: true });
  }
  try {
    return await commitFile(deps, request, body, true);
  } catch (err) {
    // A remembered proof went stale (the block was marked since): forget them, prove from the store.
    if (!(err instanceof ApiError && err.code === 'blocks_missing') || deps.possession === undefined) throw err;
    const shas = body.blocks.map((b) => b.sha256);
    if (!shas.some((sha) => deps.possession?.recall(writer.userId, sha) !== undefined)) throw err;
    deps.possession.forget(writer.userId, shas);
    return commitFile(deps, request, body, false);
  }
}

/**
 * Writes a file whose whole content is `bytes`, at most one block, in one call (ADR 86): the
 * bytes are stored as the writer's block exactly as a block upload stores them (verified,
 * deduplicated, the holder recorded), then the file naming that block is committed exactly as
 * commitEntry commits it, under the same precondition. An empty file names no block.
 */
export async function writeFileContent(
  deps: { entries: EntryDeps; uploads: BlockDeps },
  request: { objectId: string; path: string; bytes: Buffer; mtime?: string; precondition: WritePrecondition; writer: Writer },
): Promise<{ entry: Versioned<EntryRecord>; created: boolean }> {
  const { bytes, mtime, writer } = request;
  const blocks: { sha256: string; size: number }[] = [];
  if (bytes.length > 0) {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    await uploadBlock(deps.uploads, writer.userId, sha256, bytes.length, Readable.from([bytes]));
    blocks.push({ sha256, size: bytes.length });
  }
  const body: CommitEntryBody = { kind: 'file', blocks, ...(mtime === undefined ? {} : { mtime }) };
  return commitEntry(deps.entries, { objectId: request.objectId, path: request.path, body, precondition: request.precondition, writer });
}

async function commitFile(
  deps: EntryDeps,
  request: { objectId: string; path: string; precondition: WritePrecondition; writer: Writer },
  body: CommitEntryBody & { kind: 'file' },
  useRemembered: boolean,
): Promise<{ entry: Versioned<EntryRecord>; created: boolean }> {
  const { objectId, path, precondition, writer } = request;
  const shas = body.blocks.map((b) => b.sha256);
  const { proofs, sizes } = await proofsAndSizes(deps, writer.userId, shas, useRemembered);
  const unproved = [...proofs].filter(([, proof]) => proof === undefined).map(([sha]) => sha);
  if (unproved.length > 0) throw blocksMissing(unproved);
  await dropOrphanHolders(deps, writer.userId, proofs, sizes);
  const size = checkCommittedBlocks(body, sizes);
  const record = committedRecord(path, body, size, writer.modifiedBy, new Date());
  const proved = [...proofs.values()]
    .filter((p): p is BlockProof => p !== undefined)
    .map((p): BlockToReference => ({ sha256: p.sha256, stateVersion: p.stateVersion }));
  // Most files fit in the entry's own transaction; a larger one writes its references first.
  const inline: EntryRefs = { kind: 'inline', blocks: proved };
  const prepare = async (): Promise<EntryRefs> => {
    if (proved.length <= inlineRefLimit) return inline;
    // The epoch is read before the references are written: a drop after this moves it.
    const epoch = await deps.metadata.refEpoch(objectId, path);
    const marked = await deps.metadata.addBlockRefs(objectId, path, proved);
    if (marked.length > 0) throw blocksMissing(marked);
    return { kind: 'written', epoch };
  };
  return conditionalWrite(deps, { objectId, userId: writer.userId, path, precondition, build: () => record, blind: true, prepare });
}

/**
 * Removes the caller's holder records that S3 lacks the bytes of and that no upload in flight can
 * have written (isOrphanHolder): left by a process that died between an upload's holder and
 * S3's answer (ADR 67). The commit still answers 409 `blocks_missing`; `missing` then lists them,
 * so the client uploads them again.
 */
async function dropOrphanHolders(
  deps: EntryDeps,
  userId: string,
  proofs: ReadonlyMap<string, BlockProof | undefined>,
  sizes: ReadonlyMap<string, number | undefined>,
): Promise<void> {
  const now = new Date();
  const orphans = [...proofs.values()].filter(
    (p): p is BlockProof & { holder: NonNullable<BlockProof['holder']> } =>
      p?.holder !== undefined && sizes.get(p.sha256) === undefined && isOrphanHolder(p.holder.createdAt, now),
  );
  // A holder that moved meanwhile (uploaded again) stays; the commit's answer is 409 either way.
  await Promise.all(orphans.map((p) => deps.metadata.dropHolder(p.sha256, userId, p.holder.version).catch(() => false)));
}

/** Deletes an entry to a tombstone (404 when there is no live entry). */
export async function deleteEntry(
  deps: EntryDeps,
  request: { objectId: string; path: string; precondition: WritePrecondition; writer: Writer },
): Promise<Versioned<EntryRecord>> {
  const { objectId, path, precondition, writer } = request;
  const stored = await deps.metadata.getEntry(objectId, path);
  if (stored === undefined || stored.value.deleted) throw notFound(`entry ${path}`);
  const { entry } = await conditionalWrite(deps, {
    objectId,
    userId: writer.userId,
    path,
    precondition,
    build: (current) => {
      if (current === undefined) throw notFound(`entry ${path}`);
      return {
        ...current.value,
        blocks: [],
        size: 0,
        contentHash: null,
        modifiedBy: writer.modifiedBy,
        mtime: new Date().toISOString(),
        deleted: true,
      };
    },
    blind: false,
  });
  return entry;
}

/** The live entry at `path`; 404 for a missing or deleted one. The caller's read access was checked already. */
export async function liveEntry(
  metadata: Pick<MetadataStore, 'getEntry'>,
  objectId: string,
  path: string,
): Promise<Versioned<EntryRecord>> {
  const entry = await metadata.getEntry(objectId, path);
  if (entry === undefined || entry.value.deleted) throw notFound(`entry ${path}`);
  return entry;
}

/** One page of a listing: live entries, the snapshot's cursor, and the next page's token. */
export interface ListingPage {
  entries: Record<string, unknown>[];
  cursor: string;
  next: string | null;
}

/**
 * A page of the live entries of an object; the first page fixes the snapshot every later page
 * reads at, and every page answers that snapshot as its cursor (etcd answers a read at an old
 * revision with the current one in its header, which would skip what changed in between).
 */
export async function listLiveEntries(
  metadata: Pick<MetadataStore, 'listEntries'>,
  objectId: string,
  page: PageToken | undefined,
  limit: number,
): Promise<ListingPage> {
  const live: Versioned<EntryRecord>[] = [];
  let after = page?.after ?? '';
  let snapshot = page?.snapshot;
  let more = true;
  // Tombstones are skipped, so keep reading until the page is full or the object ends.
  while (live.length < limit && more) {
    const batch = await metadata.listEntries(objectId, { snapshot, after, limit: limit - live.length });
    snapshot ??= batch.snapshot;
    more = batch.more;
    for (const entry of batch.entries) {
      after = entry.value.path;
      if (!entry.value.deleted) live.push(entry);
    }
  }
  return {
    entries: live.map(entryView),
    cursor: formatCursor(snapshot!),
    next: more ? formatPageToken({ snapshot: snapshot!, after, limit }) : null,
  };
}
