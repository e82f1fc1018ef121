// Content-addressed blocks as the service sees them, scoped per caller (ADR 24): a block is
// present for a caller only when the caller proved possession of it, by uploading it or through
// an entry of an object the caller is a member of that names it. Storage deduplicates
// underneath (one S3 object per sha256); possession and references live in etcd.
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import type { Readable } from 'node:stream';
import { ApiError } from '@meshwork/contract';
import type { BlockStore } from '../../stores/block-store.ts';
import { BlockHashMismatchError, BlockSizeMismatchError } from '../../stores/hash-verifier.ts';
import type { BlockRecords, BlockToReference, HolderWriteResult, MetadataStore } from '../../stores/metadata-store.ts';
import { invalidRequest, notFound } from '../errors.ts';
import { maxBlockBytes } from '../schemas.ts';
import type { PossessionCache } from './possession-cache.ts';
import type { QuotaCache } from './quota-cache.ts';

/** What a proof of possession reads. */
export type ProofMetadata = Pick<MetadataStore, 'readBlock' | 'readBlocks' | 'listMemberships' | 'getEntry'>;

/** What the block service needs from the metadata store. */
export type BlockMetadata = ProofMetadata & Pick<MetadataStore, 'readForUpload' | 'recordHolder' | 'dropHolder' | 'storageUsed'>;

/** What the block service needs. */
export interface BlockDeps {
  blocks: Pick<BlockStore, 'put' | 'sizeOf'>;
  metadata: BlockMetadata;
  /** The users' quotas, as recently read. */
  quotas: Pick<QuotaCache, 'quotaOf'>;
  /** Where an upload remembers its proof for the commit that follows (none: not remembered). */
  possession?: PossessionCache;
}

/** How a caller may possess a block, from its records alone: by upload, through these references, or not at all. */
export function possessionFromRecords(
  records: BlockRecords,
  userId: string,
  readableObjects: ReadonlySet<string>,
):
  | { kind: 'none' }
  | { kind: 'holder'; holder: { version: number; createdAt: string } }
  | { kind: 'refs'; refs: { objectId: string; path: string }[] } {
  // A block being deleted is missing for everyone: a commit naming it would lose the race.
  if (records.state?.value.state === 'deleting') return { kind: 'none' };
  const holder = records.holders.find((h) => h.userId === userId);
  if (holder !== undefined) return { kind: 'holder', holder: { version: holder.version, createdAt: holder.createdAt } };
  const refs = records.refs.filter((r) => readableObjects.has(r.objectId));
  return refs.length > 0 ? { kind: 'refs', refs } : { kind: 'none' };
}

/** A proof of possession; `holder` when it rests on the caller's holder record (its revision and when it was written). */
export interface BlockProof extends BlockToReference {
  holder?: { version: number; createdAt: string };
}

/** The objects a caller may read: every object it is a member of, looked up once per request. */
export function readableObjectsOf(metadata: Pick<MetadataStore, 'listMemberships'>, userId: string): () => Promise<ReadonlySet<string>> {
  let objects: Promise<ReadonlySet<string>> | undefined;
  return () => (objects ??= metadata.listMemberships(userId).then((ms) => new Set(ms.map((m) => m.objectId))));
}

/**
 * The proof that `userId` possesses block `sha256` (the state version it was checked at), or
 * undefined when the caller has not proved possession. A reference counts only when its entry
 * still names the block: a reference may outlive its entry until the collector drops it.
 */
export async function proveBlock(
  metadata: ProofMetadata,
  userId: string,
  sha256: string,
  readable: () => Promise<ReadonlySet<string>>,
): Promise<BlockProof | undefined> {
  return proveFromRecords(metadata, userId, sha256, await metadata.readBlock(sha256), readable);
}

/** proveBlock, given the block's records already read. */
async function proveFromRecords(
  metadata: ProofMetadata,
  userId: string,
  sha256: string,
  records: BlockRecords,
  readable: () => Promise<ReadonlySet<string>>,
): Promise<BlockProof | undefined> {
  const proof = { sha256, stateVersion: records.state?.version ?? 0 };
  const possession = possessionFromRecords(records, userId, records.refs.length > 0 ? await readable() : new Set());
  if (possession.kind === 'holder') return { ...proof, holder: possession.holder };
  if (possession.kind === 'none') return undefined;
  for (const ref of possession.refs) {
    const entry = await metadata.getEntry(ref.objectId, ref.path);
    if (entry !== undefined && !entry.value.deleted && entry.value.blocks.some((b) => b.sha256 === sha256)) return proof;
  }
  return undefined;
}

/**
 * Proofs for each distinct block of `shas` (undefined for each one the caller has not proved).
 * The blocks' records are read together (readBlocks: one etcd round trip per 42 blocks).
 */
export async function proveBlocks(
  metadata: ProofMetadata,
  userId: string,
  shas: readonly string[],
): Promise<Map<string, BlockProof | undefined>> {
  const unique = [...new Set(shas)];
  const readable = readableObjectsOf(metadata, userId);
  const records = unique.length === 0 ? [] : await metadata.readBlocks(unique);
  // In the order asked, whatever order the lookups finish in.
  const proofs = await inParallel(unique, (sha, i) => proveFromRecords(metadata, userId, sha, records[i]!, readable));
  return new Map(unique.map((sha, i) => [sha, proofs[i]]));
}

/** Which of `shas` the caller has not proved possession of, each once, in the order asked: those it must upload. */
export async function missingBlocks(metadata: ProofMetadata, userId: string, shas: readonly string[]): Promise<string[]> {
  const proofs = await proveBlocks(metadata, userId, shas);
  return [...proofs].filter(([, proof]) => proof === undefined).map(([sha]) => sha);
}

/** 409 `blocks_missing` naming the blocks a commit must upload first. */
export function blocksMissing(missing: readonly string[]): ApiError {
  const message = `${missing.length} of the entry's blocks were not uploaded by the caller nor are readable to it; upload them and commit again`;
  return new ApiError('blocks_missing', message, { details: { missing: [...missing] } });
}

/** What an upload of at most one block is: a block (never empty), or a file written whole (ADR 86; may be empty). */
const uploadKinds = {
  block: { name: 'a block upload', minimum: 1, tooLarge: `a block is at most ${maxBlockBytes} bytes` },
  whole: {
    name: 'a file written whole',
    minimum: 0,
    tooLarge: `a file written whole is at most ${maxBlockBytes} bytes; upload its blocks and commit them instead`,
  },
} as const;

/**
 * The size of an upload of at most one block from its Content-Length: 411 without one, 400
 * unless a whole number of at least 1 byte (a block) or 0 (a file written whole), 413 over a
 * block's size.
 */
export function uploadSize(contentLength: string | undefined, kind: keyof typeof uploadKinds = 'block'): number {
  const { name, minimum, tooLarge } = uploadKinds[kind];
  if (contentLength === undefined) throw new ApiError('length_required', `Content-Length is required for ${name}`);
  const size = Number(contentLength);
  if (!Number.isSafeInteger(size) || size < minimum) {
    throw invalidRequest('Content-Length', `Content-Length: must be a ${minimum === 1 ? 'positive' : 'non-negative'} integer`);
  }
  if (size > maxBlockBytes) throw new ApiError('too_large', tooLarge);
  return size;
}

/**
 * Stores a block streamed from `body`: 422 when it does not hash to its name, 400 when it is not
 * `size` bytes. `onVerified` runs once the body hashed to its name, before S3 answers.
 */
export async function storeBlock(
  blocks: Pick<BlockStore, 'put'>,
  sha256: string,
  size: number,
  body: Readable,
  onVerified?: () => void,
): Promise<void> {
  try {
    await blocks.put(sha256, size, body, onVerified);
  } catch (err) {
    if (err instanceof BlockHashMismatchError)
      throw new ApiError('hash_mismatch', `the body does not hash to ${sha256}; nothing was stored`, { cause: err });
    if (err instanceof BlockSizeMismatchError)
      throw new ApiError('invalid_request', `body: ${err.message}`, { details: { field: 'body' }, cause: err });
    throw err;
  }
}

function beingDeleted(sha256: string): ApiError {
  return new ApiError('busy', `block ${sha256} is being collected; upload it again in a moment`, { headers: { 'Retry-After': '1' } });
}

/**
 * Uploads a block for `userId`: the bytes are verified and stored (deduplicated under the
 * block's name), then the caller's possession is recorded, only if the collector did not mark
 * the block since before the bytes went out (503 `busy` otherwise: the client uploads again).
 *
 * A user without a quota reads nothing first: the holder record is written in one transaction
 * if the block never had a state record (it was never collected, so nothing deleted its bytes).
 * A block collected once is checked after the fact: its bytes must be in S3 now and its state
 * unchanged since it was read, which proves they were stored after the collector deleted them.
 */
export async function uploadBlock(
  deps: BlockDeps,
  userId: string,
  sha256: string,
  size: number,
  body: Readable,
  now = new Date(),
): Promise<void> {
  const quota = await deps.quotas.quotaOf(userId);
  let stateVersion = 0;
  if (quota !== null) {
    const before = await deps.metadata.readForUpload(sha256, userId);
    if (before.state?.value.state === 'deleting') throw beingDeleted(sha256);
    // A block the caller holds already costs nothing more; anything else is checked before a byte is stored.
    if (!before.holds) await checkQuota(deps.metadata, userId, quota, size);
    stateVersion = before.state?.version ?? 0;
  }
  // The holder is written as soon as the body proved to hash to its name (the caller has the
  // content), while S3 is still storing it: the two round trips overlap. The upload is
  // acknowledged only once both succeeded; if S3 fails, the holder is removed again.
  let early: Promise<HolderWriteResult> | undefined;
  // Called from inside the store's call; bound to the upload's own context, so that the holder
  // write is a step of the request (its trace span a sibling of the S3 call's, not its child).
  const recordEarly = AsyncLocalStorage.bind((): void => {
    // Dated when the body was verified: a holder older than orphanHolderMs whose bytes S3 lacks is no upload in flight.
    early = deps.metadata.recordHolder(sha256, userId, stateVersion, verifiedAt(now), size);
    // Awaited below on every path; this only keeps a rejection from counting as unhandled meanwhile.
    early.catch(() => undefined);
  });
  try {
    await storeBlock(deps.blocks, sha256, size, body, recordEarly);
  } catch (err) {
    if (early !== undefined) await undoHolder(deps.metadata, sha256, userId, early);
    throw err;
  }
  let recorded = await (early ?? deps.metadata.recordHolder(sha256, userId, stateVersion, now, size));
  if (!recorded.ok && quota === null && recorded.state !== undefined && recorded.state.value.state === 'deleted') {
    // Collected before: the bytes in S3 now were stored after its deletion, and stay unless it is marked again.
    const state = recorded.state;
    if ((await deps.blocks.sizeOf(sha256)) !== size) throw beingDeleted(sha256);
    stateVersion = state.version;
    recorded = await deps.metadata.recordHolder(sha256, userId, stateVersion, now, size);
  }
  if (!recorded.ok) throw beingDeleted(sha256);
  deps.possession?.remember(userId, sha256, { stateVersion, size });
}

/** When the body of an upload that started at `started` was verified: now, unless the caller fixed the time (tests). */
function verifiedAt(started: Date): Date {
  const now = new Date();
  return now > started ? now : started;
}

/**
 * How old a holder record must be before a commit that finds its block absent from S3 removes
 * it: an upload writes its holder once the body is verified and S3 answers within this, so an
 * older one was left by a process that died in between, or by a failed removal (ADR 67).
 */
export const orphanHolderMs = 5 * 60_000;

/** Whether a holder record written at `createdAt`, whose block S3 lacks, was left behind (see orphanHolderMs). */
export function isOrphanHolder(createdAt: string, now: Date): boolean {
  const written = Date.parse(createdAt);
  return Number.isFinite(written) && now.getTime() - written > orphanHolderMs;
}

/** Removes the holder an upload wrote early when its bytes did not reach S3 (a failure to do so is left to the commit, see proveBlock). */
async function undoHolder(metadata: BlockMetadata, sha256: string, userId: string, written: Promise<HolderWriteResult>): Promise<void> {
  try {
    const result = await written;
    if (result.ok) await metadata.dropHolder(sha256, userId, result.version);
  } catch {
    // The upload fails with its own error either way.
  }
}

/** Whether `size` more bytes fit in a quota (null or absent: unlimited) with `used` bytes in use. */
export function quotaAllows(used: number, size: number, quotaBytes: number | null | undefined): boolean {
  return quotaBytes === null || quotaBytes === undefined || used + size <= quotaBytes;
}

async function checkQuota(metadata: BlockMetadata, userId: string, quota: number, size: number): Promise<void> {
  const used = await metadata.storageUsed(userId);
  if (!quotaAllows(used, size, quota)) {
    throw new ApiError('insufficient_storage', `the upload needs ${size} bytes; ${used} of the user's ${quota} bytes are in use`, {
      details: { usedBytes: used, quotaBytes: quota },
    });
  }
}

/**
 * The blocks of `shas` the caller may read, each once in the order asked, with their sizes, and
 * the others (not proved, or absent from the store), which are told apart no more than
 * readableBlockSize tells them.
 */
export async function readableBlockSizes(
  deps: { blocks: Pick<BlockStore, 'sizesOf'>; metadata: ProofMetadata },
  userId: string,
  shas: readonly string[],
): Promise<{ readable: { sha256: string; size: number }[]; unreadable: string[] }> {
  const proofs = await proveBlocks(deps.metadata, userId, shas);
  const proved = [...proofs].filter(([, proof]) => proof !== undefined).map(([sha]) => sha);
  const sizes = await deps.blocks.sizesOf(proved);
  const readable: { sha256: string; size: number }[] = [];
  const unreadable: string[] = [];
  for (const sha of proofs.keys()) {
    const size = sizes.get(sha);
    if (size === undefined) unreadable.push(sha);
    else readable.push({ sha256: sha, size });
  }
  return { readable, unreadable };
}

/** The size of a block the caller may read (it proved possession); 404, as for an absent block, otherwise. */
export async function readableBlockSize(deps: Pick<BlockDeps, 'blocks' | 'metadata'>, userId: string, sha256: string): Promise<number> {
  const proof = await proveBlock(deps.metadata, userId, sha256, readableObjectsOf(deps.metadata, userId));
  const size = proof === undefined ? undefined : await deps.blocks.sizeOf(sha256);
  if (size === undefined) throw notFound(`block ${sha256}`);
  return size;
}

/** Where uploads may go straight to the store (ADR 80): its address as clients reach it, how long a URL holds, and the key of the upload tags. */
export interface UploadRedirect {
  endpoint: URL;
  expiresInSeconds: number;
  /** HMAC key of uploadTagOf. */
  tagKey: KeyObject;
}

/** The key of the upload tags, derived from a secret every replica of the service shares. */
export function uploadTagKey(secret: string): KeyObject {
  return createSecretKey(createHmac('sha256', secret).update('meshwork block upload tag').digest());
}

/**
 * The tag a presigned block PUT given to `userId` writes as the object's metadata: the same for
 * every URL given to that user, telling no one who the user is, and not to be made by anyone
 * without the key. A store object carrying the caller's tag was written through a URL given to
 * the caller: the caller sent those bytes (the store checked them against the block's name).
 */
export function uploadTagOf(key: KeyObject, userId: string): string {
  return createHmac('sha256', key).update(userId).digest('base64url').slice(0, 32);
}

/** A block to upload, and where: a presigned URL at the store and the headers to send with it, or (neither) `PUT /v1/blocks/{sha256}`. */
export interface UploadTarget {
  sha256: string;
  size: number;
  url?: string;
  headers?: Record<string, string>;
}

/** The distinct blocks of `refs` in the order given; 400 when one block is named with two sizes. */
function distinctRefs(refs: readonly { sha256: string; size: number }[]): { sha256: string; size: number }[] {
  const bySha = new Map<string, { sha256: string; size: number }>();
  for (const ref of refs) {
    const seen = bySha.get(ref.sha256);
    if (seen === undefined) bySha.set(ref.sha256, { sha256: ref.sha256, size: ref.size });
    else if (seen.size !== ref.size)
      throw invalidRequest('blocks', `blocks: ${ref.sha256} is named with sizes ${seen.size} and ${ref.size}`);
  }
  return [...bySha.values()];
}

/**
 * The blocks of `refs` the caller has not proved possession of (as `missingBlocks` answers them),
 * each once in the order asked, with where to upload each: with `redirect`, for a caller without a
 * quota, a presigned PUT at the store (ADR 80), confirmed afterwards with `confirmUploads`;
 * otherwise through the partition. A caller with a quota uploads through the partition, which
 * checks the quota before a byte is stored. With `redirect` and `checkStore`, the store is asked
 * about each such block first (one HEAD each): one it holds through a URL given to the caller
 * (sent before a crash, and never confirmed) is confirmed here and not listed, so its bytes are
 * not sent twice.
 */
export async function blockUploads(
  deps: Omit<BlockDeps, 'blocks'> & { blocks: Pick<BlockStore, 'presignedPut' | 'describe'> },
  userId: string,
  refs: readonly { sha256: string; size: number }[],
  redirect: UploadRedirect | undefined,
  options: { checkStore?: boolean; date?: Date } = {},
): Promise<{ uploads: UploadTarget[]; expiresAt?: string }> {
  const { checkStore = false, date = new Date() } = options;
  const distinct = distinctRefs(refs);
  const missing = new Set(
    await missingBlocks(
      deps.metadata,
      userId,
      distinct.map((r) => r.sha256),
    ),
  );
  let uploads = distinct.filter((r) => missing.has(r.sha256));
  if (redirect === undefined || uploads.length === 0 || (await deps.quotas.quotaOf(userId)) !== null) return { uploads };
  const tag = uploadTagOf(redirect.tagKey, userId);
  // One HEAD per block, asked for only by a client that may have sent some before (a request to
  // the store per block that nearly always answers 404); the ones already there are confirmed.
  const sent = checkStore ? await inParallel(uploads, async (r) => (await deps.blocks.describe(r.sha256))?.uploadTag === tag) : [];
  const again = uploads.filter((_, i) => sent[i] === true);
  if (again.length > 0) {
    const confirmed = new Set((await confirmUploads(deps, userId, again, tag, date)).confirmed.map((r) => r.sha256));
    uploads = uploads.filter((r) => !confirmed.has(r.sha256));
  }
  const presigned = await Promise.all(
    uploads.map(async (r) => ({
      ...r,
      ...(await deps.blocks.presignedPut(r.sha256, r.size, tag, redirect.endpoint, redirect.expiresInSeconds, date)),
    })),
  );
  return uploads.length === 0
    ? { uploads: [] }
    : { uploads: presigned, expiresAt: new Date(date.getTime() + redirect.expiresInSeconds * 1000).toISOString() };
}

/**
 * `task` of each item, at most 16 at once (one request's possession checks, etcd reads or S3
 * HEADs), answered in the items' order.
 */
async function inParallel<T, R>(items: readonly T[], task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = Array.from({ length: items.length });
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(16, items.length) }, worker));
  return results;
}

/** Why a block upload was not confirmed: its code and a sentence. */
export interface UnconfirmedUpload {
  sha256: string;
  code: 'not_uploaded' | 'busy' | 'insufficient_storage';
  message: string;
}

/**
 * Records the caller's possession of each block of `refs` it PUT through a URL from
 * `blockUploads` (ADR 80), and answers which were confirmed and why the others were not. A
 * block is confirmed when the store holds it with the declared size, the sha256 checksum it
 * checked the bytes against names it, and the caller's upload tag (so a URL given to the caller
 * wrote it); its holder record is then written as an upload through the partition writes it.
 * The block's state is read before the store is asked and compared when the holder is written:
 * a state that did not move in between (never collected, or collected before: its deletion
 * finished) means no deletion ran meanwhile, so the bytes the store showed are still there.
 */
export async function confirmUploads(
  deps: Omit<BlockDeps, 'blocks'> & { blocks: Pick<BlockStore, 'describe'> },
  userId: string,
  refs: readonly { sha256: string; size: number }[],
  tag: string,
  now = new Date(),
): Promise<{ confirmed: { sha256: string; size: number }[]; unconfirmed: UnconfirmedUpload[] }> {
  const distinct = distinctRefs(refs);
  const quota = distinct.length === 0 ? null : await deps.quotas.quotaOf(userId);
  const confirmOne = async ({ sha256, size }: { sha256: string; size: number }): Promise<UnconfirmedUpload | undefined> => {
    const before = await deps.metadata.readForUpload(sha256, userId);
    if (quota !== null && !before.holds) {
      const used = await deps.metadata.storageUsed(userId);
      if (!quotaAllows(used, size, quota))
        return {
          sha256,
          code: 'insufficient_storage',
          message: `the block needs ${size} bytes; ${used} of the user's ${quota} bytes are in use`,
        };
    }
    const stored = await deps.blocks.describe(sha256);
    // One answer whatever the store holds: whether anyone stored a block is not the caller's to learn (ADR 24).
    if (stored === undefined || stored.size !== size || !stored.storeChecked || stored.uploadTag !== tag) {
      const message = `the store holds no ${size} bytes of block ${sha256} written through a URL given to the caller; PUT them to the block's URL, or to the partition, and confirm again`;
      return { sha256, code: 'not_uploaded', message };
    }
    // Told only to the caller whose bytes these are: anyone else learned above only that it has none there.
    if (before.state?.value.state === 'deleting')
      return { sha256, code: 'busy', message: `block ${sha256} is being collected; upload it again in a moment` };
    const stateVersion = before.state?.version ?? 0;
    const recorded = await deps.metadata.recordHolder(sha256, userId, stateVersion, now, size);
    if (!recorded.ok) return { sha256, code: 'busy', message: `block ${sha256} is being collected; upload it again in a moment` };
    deps.possession?.remember(userId, sha256, { stateVersion, size });
    return undefined;
  };
  const results = await inParallel(distinct, confirmOne);
  return {
    confirmed: distinct.filter((_, i) => results[i] === undefined),
    unconfirmed: results.filter((r): r is UnconfirmedUpload => r !== undefined),
  };
}
