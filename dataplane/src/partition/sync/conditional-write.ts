// Optimistic concurrency for entry writes (ADR 0004): If-Match / If-None-Match: * decide
// whether a write may happen, a lost race is 412 with what is there, never a silent overwrite.
// The decisions are pure functions (table-tested); conditionalWrite only runs them against
// the store, retrying when the object record moved under the write.
import { ApiError } from '@meshwork/contract';
import { parseWritePrecondition, preconditionHolds, strongEtag, type WritePrecondition } from '../../http/preconditions.ts';
import type { EntryRecord, EntryRefs, EntryWriteResult, MetadataStore, Versioned } from '../../stores/metadata-store.ts';
import { invalidRequest } from '../errors.ts';
import type { ObjectAccess } from './access.ts';
import { blocksMissing } from './blocks.ts';

// A commit retries by itself when only the object record moved (a rename or share meanwhile).
const commitAttempts = 5;

/** The public view of an entry version. */
export function entryView(entry: Versioned<EntryRecord>): Record<string, unknown> {
  return { ...entry.value, version: String(entry.version) };
}

/** The precondition of a write: 428 without one, 400 for an If-Match with no strong tag. */
export function requirePrecondition(ifMatch: string | undefined, ifNoneMatch: string | undefined): WritePrecondition {
  const precondition = parseWritePrecondition(ifMatch, ifNoneMatch);
  if (precondition.kind === 'none') {
    throw new ApiError('precondition_required', 'send If-Match with the version you have, or If-None-Match: * to create');
  }
  if (precondition.kind === 'match' && precondition.versions.length === 0) {
    throw invalidRequest('If-Match', 'If-Match: must list strong entity tags such as "42"');
  }
  return precondition;
}

/** The entry revision a blind write can assume, or undefined when it must read first. */
export function blindExpectation(precondition: WritePrecondition): number | undefined {
  if (precondition.kind === 'create') return 0;
  const [only, ...others] = precondition.kind === 'match' ? precondition.versions : [];
  if (only !== undefined && others.length === 0 && /^[1-9]\d{0,14}$/.test(only)) return Number(only);
  return undefined;
}

/** 412 with the live entry (or null) and its ETag, so the client can merge and retry. */
export function preconditionFailed(path: string, current: Versioned<EntryRecord> | undefined): ApiError {
  const live = current !== undefined && !current.value.deleted ? current : undefined;
  return new ApiError('precondition_failed', live ? `entry ${path} is at version ${live.version}` : `entry ${path} does not exist`, {
    details: { currentVersion: live ? String(live.version) : null, current: live ? entryView(live) : null },
    headers: live ? { ETag: strongEtag(String(live.version)) } : {},
  });
}

/** What a write expects to replace: the revision its transaction compares, and the live entry. */
export interface WriteExpectation {
  expected: number;
  created: boolean;
  live: Versioned<EntryRecord> | undefined;
}

/** The expectation of a write that read the stored entry first; 412 when the precondition fails. */
export function expectationFromStored(
  precondition: WritePrecondition,
  path: string,
  stored: Versioned<EntryRecord> | undefined,
): WriteExpectation {
  const live = stored !== undefined && !stored.value.deleted ? stored : undefined;
  if (!preconditionHolds(precondition, live === undefined ? undefined : String(live.version))) throw preconditionFailed(path, stored);
  return { expected: stored?.version ?? 0, created: live === undefined, live };
}

/** What to do after one attempt of a conditional write. */
export type WriteStep =
  | { kind: 'done'; version: number }
  /** The object record moved: forget the cached record and try again. */
  | { kind: 'retry_object' }
  /** A blind guess missed: try again, reading the entry this time. */
  | { kind: 'read_entry' }
  /** A block reference of the entry was dropped meanwhile (ADR 24): prepare the write again. */
  | { kind: 'retry_refs' }
  | { kind: 'failed'; error: ApiError };

/** The step after a write attempt whose transaction answered `result`; `blind` when it guessed the revision. */
export function nextWriteStep(result: EntryWriteResult, blind: boolean, path: string): WriteStep {
  if (result.ok) return { kind: 'done', version: result.version };
  if (result.reason === 'object') return { kind: 'retry_object' };
  if (result.reason === 'refs') return { kind: 'retry_refs' };
  if (result.reason === 'blocks') return { kind: 'failed', error: blocksMissing(result.marked) };
  // A blind guess missed (a tombstone under a create, or a lost race): decide on what is there.
  if (blind) return { kind: 'read_entry' };
  return { kind: 'failed', error: preconditionFailed(path, result.current) };
}

/** 503 `busy` when the object kept changing through every attempt. */
export function objectKeptChanging(objectId: string): ApiError {
  return new ApiError('busy', `object ${objectId} kept changing; retry`, { headers: { 'Retry-After': '1' } });
}

/** What conditional writes need: entry reads and writes, and the object access rule with its cache. */
export interface EntryWriteDeps {
  metadata: Pick<MetadataStore, 'getEntry' | 'putEntry'>;
  access: ObjectAccess;
}

/** One conditional write of an entry. */
export interface ConditionalWrite {
  objectId: string;
  userId: string;
  path: string;
  precondition: WritePrecondition;
  /** The new record, given the live entry (undefined for a blind write or an absent entry). */
  build: (current: Versioned<EntryRecord> | undefined) => EntryRecord;
  /**
   * True when the new value does not depend on the current one: with If-None-Match: * or a
   * single If-Match version the entry is not read, the transaction's compare on its revision
   * is the check, and only a failed compare reads it back.
   */
  blind: boolean;
  /**
   * Run before each attempt, after access was checked: how the entry's block references are
   * kept, having written them first when they do not fit in the entry's transaction.
   */
  prepare?: () => Promise<EntryRefs>;
}

/** Writes `build(current)` under the caller's preconditions, retrying when only the object moved. */
export async function conditionalWrite(
  deps: EntryWriteDeps,
  write: ConditionalWrite,
): Promise<{ entry: Versioned<EntryRecord>; created: boolean }> {
  const { objectId, userId, path, precondition, build } = write;
  let guess = write.blind ? blindExpectation(precondition) : undefined;
  for (let attempt = 0; attempt < commitAttempts; attempt++) {
    // The cached record is safe here: the transaction compares its revision.
    const object = await deps.access.loadForWrite(userId, objectId, 'writer');
    const refs = await write.prepare?.();
    const expectation: WriteExpectation =
      guess !== undefined
        ? { expected: guess, created: guess === 0, live: undefined }
        : expectationFromStored(precondition, path, await deps.metadata.getEntry(objectId, path));
    const next = build(expectation.live);
    const step = nextWriteStep(await deps.metadata.putEntry(object, expectation.expected, next, refs), guess !== undefined, path);
    switch (step.kind) {
      case 'done':
        return { entry: { value: next, version: step.version }, created: expectation.created };
      case 'retry_object':
        deps.access.forget(objectId);
        break;
      case 'read_entry':
        guess = undefined;
        break;
      case 'retry_refs':
        break;
      case 'failed':
        throw step.error;
    }
  }
  throw objectKeptChanging(objectId);
}
