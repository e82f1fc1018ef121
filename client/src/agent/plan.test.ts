// The three-way planner's decisions, one row per case of ADR 36: who changed what since the
// base decides; a modification beats a delete; an unchanged old copy never brings back a delete.
import { describe, expect, it } from 'vitest';
import { conflictCopyPath, invalidNameReason, planPath, planSync, type Action, type PathStates } from './plan.ts';

const file = (hash: string) => ({ kind: 'file' as const, hash });
const dir = { kind: 'directory' as const, hash: null };
const base = (hash: string, version = '10') => ({ ...file(hash), version });
const live = (hash: string, version = '10') => ({ ...file(hash), version, deleted: false });
const tomb = (version = '11') => ({ ...file(''), version, deleted: true });

describe('planPath', () => {
  it.each<[string, PathStates, Action]>([
    ['nothing anywhere', {}, { type: 'nothing' }],
    ['in sync', { base: base('a'), local: file('a'), remote: live('a') }, { type: 'nothing' }],
    ['new local file', { local: file('a') }, { type: 'upload', precondition: { ifNoneMatch: '*' } }],
    ['new local file over a tombstone', { local: file('a'), remote: tomb() }, { type: 'upload', precondition: { ifNoneMatch: '*' } }],
    ['new remote file', { remote: live('a') }, { type: 'download' }],
    ['local edit', { base: base('a'), local: file('b'), remote: live('a') }, { type: 'upload', precondition: { ifMatch: '10' } }],
    ['remote edit', { base: base('a'), local: file('a'), remote: live('b', '12') }, { type: 'download' }],
    ['local delete', { base: base('a'), remote: live('a') }, { type: 'delete-remote', ifMatch: '10' }],
    [
      'remote delete, local unchanged: deleted here (no resurrection)',
      { base: base('a'), local: file('a'), remote: tomb() },
      { type: 'delete-local' },
    ],
    ['remote delete seen as absence (relist)', { base: base('a'), local: file('a') }, { type: 'delete-local' }],
    ['both deleted', { base: base('a'), remote: tomb() }, { type: 'record' }],
    ['both edited the same way', { base: base('a'), local: file('b'), remote: live('b', '12') }, { type: 'record' }],
    ['same file on both sides, never synced', { local: file('a'), remote: live('a') }, { type: 'record' }],
    ['same content, newer version', { base: base('a'), local: file('a'), remote: live('a', '12') }, { type: 'record' }],
    ['both edited differently: keep both', { base: base('a'), local: file('b'), remote: live('c', '12') }, { type: 'conflict' }],
    ['both created differently: keep both', { local: file('b'), remote: live('c') }, { type: 'conflict' }],
    ['local delete vs remote edit: the edit wins', { base: base('a'), remote: live('b', '12') }, { type: 'download' }],
    [
      'local edit vs remote delete: the edit wins',
      { base: base('a'), local: file('b'), remote: tomb() },
      { type: 'upload', precondition: { ifNoneMatch: '*' } },
    ],
    ['new local directory', { local: dir }, { type: 'upload', precondition: { ifNoneMatch: '*' } }],
    ['new remote directory', { remote: { ...dir, version: '3', deleted: false } }, { type: 'download' }],
    ['directories on both sides', { local: dir, remote: { ...dir, version: '3', deleted: false } }, { type: 'record' }],
    ['file here, directory there', { local: file('a'), remote: { ...dir, version: '3', deleted: false } }, { type: 'conflict' }],
  ])('%s', (_name, states, action) => {
    expect(planPath(states)).toEqual(action);
  });

  it.each<[string, PathStates, Action]>([
    ['local edit', { base: base('a'), local: file('b'), remote: live('a') }, { type: 'read-only' }],
    ['local delete', { base: base('a'), remote: live('a') }, { type: 'read-only' }],
    ['remote edit still arrives', { base: base('a'), local: file('a'), remote: live('b', '12') }, { type: 'download' }],
    ['both edited: the local copy is kept aside', { base: base('a'), local: file('b'), remote: live('c', '12') }, { type: 'conflict' }],
  ])('for a reader, %s', (_name, states, action) => {
    expect(planPath(states, true)).toEqual(action);
  });
});

describe('planSync', () => {
  it('orders parents before children for writes, children before parents for deletes, uploads before remote deletes', () => {
    const paths = new Map<string, PathStates>([
      ['gone', { base: base('g'), remote: live('g') }],
      ['old/x', { base: base('x'), remote: live('x') }],
      ['old', { base: { ...dir, version: '1' }, remote: { ...dir, version: '1', deleted: false } }],
      ['new/y', { local: file('y') }],
      ['new', { local: dir }],
      ['in', { remote: live('i') }],
    ]);
    expect(planSync(paths).map((a) => `${a.action.type} ${a.path}`)).toEqual([
      'download in',
      'upload new',
      'upload new/y',
      'delete-remote old/x',
      'delete-remote gone',
      'delete-remote old',
    ]);
  });

  it('commits a renamed file with the blocks it already has', () => {
    const paths = new Map<string, PathStates>([
      ['a.txt', { base: base('h'), remote: live('h') }],
      ['b.txt', { local: file('h') }],
      ['c.txt', { local: file('other') }],
    ]);
    const plan = planSync(paths, { blocksKnown: new Map([['h', 'a.txt']]) });
    expect(plan).toEqual([
      { path: 'b.txt', action: { type: 'upload', precondition: { ifNoneMatch: '*' } }, reuseBlocksOf: 'a.txt' },
      { path: 'c.txt', action: { type: 'upload', precondition: { ifNoneMatch: '*' } } },
      { path: 'a.txt', action: { type: 'delete-remote', ifMatch: '10' } },
    ]);
  });
});

describe('conflictCopyPath', () => {
  const at = new Date('2026-12-05T02:45:07Z');
  it.each([
    ['report.txt', 'report (conflict from laptop 2026-12-05 024507).txt'],
    ['docs/q3.final.pdf', 'docs/q3.final (conflict from laptop 2026-12-05 024507).pdf'],
    ['Makefile', 'Makefile (conflict from laptop 2026-12-05 024507)'],
    ['.bashrc', '.bashrc (conflict from laptop 2026-12-05 024507)'],
  ])('%s → %s', (path, copy) => {
    expect(conflictCopyPath(path, 'laptop', at)).toBe(copy);
  });

  it('counts up while a name is taken', () => {
    const taken = new Set(['a (conflict from laptop 2026-12-05 024507).txt']);
    expect(conflictCopyPath('a.txt', 'laptop', at, (p) => taken.has(p))).toBe('a (conflict from laptop 2026-12-05 024507 2).txt');
  });

  it('keeps a device name from adding a directory', () => {
    expect(conflictCopyPath('a', 'my/phone', at)).toBe('a (conflict from my_phone 2026-12-05 024507)');
  });
});

describe('invalidNameReason', () => {
  it.each([
    ['ok/name.txt', undefined],
    ['a\u0001b', 'the path holds a control character'],
    [`${'x'.repeat(256)}`, 'a name is over 255 bytes'],
    [`${'abcdefgh/'.repeat(120)}z`, 'the path is over 1024 bytes'],
    [Array.from({ length: 65 }, () => 'a').join('/'), 'the path is more than 64 levels deep'],
  ])('%j → %s', (path, reason) => {
    expect(invalidNameReason(path)).toBe(reason);
  });
});
