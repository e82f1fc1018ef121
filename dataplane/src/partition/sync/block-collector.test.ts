// What the collector does with one block, as a table over its records, what its references
// point at and the time: keep it while an entry names it or an upload is within its grace
// period, drop references whose entries moved on, mark it, or finish a mark that was abandoned.
import { describe, expect, it } from 'vitest';
import type { BlockRecords } from '../../stores/metadata-store.ts';
import { planBlockCollection, type RefCheck } from './block-collector.ts';

const now = Date.parse('2026-01-02T00:00:00.000Z');
const timing = { graceSeconds: 3600, takeoverSeconds: 600 };
const ago = (seconds: number): string => new Date(now - seconds * 1000).toISOString();

function records(overrides: Partial<BlockRecords>): BlockRecords {
  return { revision: 100, state: undefined, holders: [], refs: [], ...overrides };
}

function ref(overrides: Partial<RefCheck>): RefCheck {
  return { objectId: 'o1', path: 'a.bin', version: 50, entryVersion: 60, names: false, objectPresent: true, ...overrides };
}

const holder = (secondsAgo: number): BlockRecords['holders'][number] => ({ userId: 'u', createdAt: ago(secondsAgo), version: 80 });
const deleting = (secondsAgo: number): BlockRecords['state'] => ({ value: { state: 'deleting', since: ago(secondsAgo) }, version: 90 });
const deleted: BlockRecords['state'] = { value: { state: 'deleted', since: ago(7200) }, version: 91 };

describe('planBlockCollection', () => {
  it.each<[string, BlockRecords, RefCheck[], string]>([
    ['an entry names it', records({}), [ref({ names: true })], 'keep'],
    ['one entry names it, another moved on', records({}), [ref({ names: true }), ref({ path: 'b.bin' })], 'keep'],
    ['every reference is stale', records({}), [ref({}), ref({ path: 'b.bin', entryVersion: 0, objectPresent: false })], 'drop_refs'],
    ['stale references and a fresh upload: references go first', records({ holders: [holder(1)] }), [ref({})], 'drop_refs'],
    ['uploaded within the grace period', records({ holders: [{ userId: 'u', createdAt: ago(3599), version: 80 }] }), [], 'keep'],
    ['uploaded longer ago than the grace period', records({ holders: [{ userId: 'u', createdAt: ago(3600), version: 80 }] }), [], 'mark'],
    ['one upload old, one within the grace period', records({ holders: [holder(9000), { ...holder(5), userId: 'v' }] }), [], 'keep'],
    ['no records but its name (an upload in flight or leftovers)', records({}), [], 'mark'],
    ['being deleted by a collector that is still within its time', records({ state: deleting(10) }), [], 'keep'],
    ['being deleted, abandoned past the takeover time', records({ state: deleting(600) }), [], 'finish'],
    ['deleted and not uploaded since', records({ state: deleted }), [], 'gone'],
    ['deleted, uploaded again and now past its grace period', records({ state: deleted, holders: [holder(4000)] }), [], 'mark'],
    [
      'deleted, uploaded again within the grace period',
      records({ state: deleted, holders: [{ userId: 'u', createdAt: ago(10), version: 95 }] }),
      [],
      'keep',
    ],
  ])('%s', (_what, recorded, refs, kind) => {
    expect(planBlockCollection(recorded, refs, now, timing).kind).toBe(kind);
  });

  it('drops exactly the stale references, and finishes the mark it found', () => {
    const stale = [ref({}), ref({ path: 'b.bin' })];
    expect(planBlockCollection(records({}), stale, now, timing)).toEqual({ kind: 'drop_refs', refs: stale });
    expect(planBlockCollection(records({ state: deleting(700) }), [], now, timing)).toEqual({ kind: 'finish', markVersion: 90 });
  });

  it('with a zero grace period, marks a block uploaded this very moment', () => {
    const fresh = records({ holders: [{ userId: 'u', createdAt: ago(0), version: 80 }] });
    expect(planBlockCollection(fresh, [], now, { ...timing, graceSeconds: 0 }).kind).toBe('mark');
  });
});
