// The state database's rules that crash safety leans on: an older answer never replaces a newer
// entry, a relist records what it no longer names as deleted, and the status reads back from
// another (read-only) connection.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Entry } from '../types.ts';
import { StateDb, compareVersions, readStatusFrom } from './state.ts';

let dir: string;
let state: StateDb;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'meshwork-state-'));
  state = new StateDb(join(dir, 'agent.db'));
});

afterEach(() => {
  state.close();
  rmSync(dir, { recursive: true, force: true });
});

const entry = (path: string, version: string, deleted = false): Entry => ({
  path,
  kind: 'file',
  size: 1,
  blocks: deleted ? [] : [{ sha256: 'a'.repeat(64), size: 1 }],
  contentHash: 'h',
  modifiedBy: 'd1',
  mtime: '2026-01-01T00:00:00.000Z',
  deleted,
  version,
});

describe('compareVersions', () => {
  it.each([
    ['9', '10', -1],
    ['10', '9', 1],
    ['123456789012345678901', '123456789012345678900', 1],
    ['7', '7', 0],
  ])('%s vs %s → %i', (a, b, expected) => {
    expect(compareVersions(a, b)).toBe(expected);
  });
});

describe('the remote record', () => {
  it('keeps the newest version of each path whatever order answers arrive in', () => {
    state.putRemote([entry('a', '12')]);
    state.putRemote([entry('a', '9', true)]);
    expect(state.allRemote().get('a')).toMatchObject({ version: '12', deleted: false });
    state.putRemote([entry('a', '13', true)]);
    expect(state.allRemote().get('a')).toMatchObject({ version: '13', deleted: true });
  });

  it('records what a relist no longer names as deleted', () => {
    state.putRemote([entry('kept', '5'), entry('gone', '6')]);
    state.replaceRemote([entry('kept', '5'), entry('new', '20')]);
    const remote = state.allRemote();
    expect(remote.get('gone')).toMatchObject({ deleted: true });
    expect(remote.get('kept')).toMatchObject({ deleted: false });
    expect(remote.get('new')).toMatchObject({ version: '20' });
  });
});

describe('the rows kept in memory', () => {
  const baseRow = (path: string, version: string) => ({
    path,
    kind: 'file' as const,
    size: 1,
    mtimeMs: 1,
    ino: 2,
    mode: 0o100644,
    blocks: [{ sha256: 'a'.repeat(64), size: 1 }],
    contentHash: 'h',
    version,
  });
  /** What the database itself holds, through a connection of its own. */
  const fromDisk = (): StateDb => new StateDb(join(dir, 'agent.db'));

  it('answer what the database holds after every kind of write, as a fresh connection reads it', () => {
    expect(state.allBase().size).toBe(0);
    expect(state.allRemote().size).toBe(0);
    state.putBase(baseRow('a', '1'));
    state.putBase(baseRow('b', '1'));
    state.putBase(baseRow('a', '2'));
    state.deleteBase('b');
    state.putRemote([entry('x', '5'), entry('y', '1')]);
    state.putRemote([entry('x', '4')]);
    state.replaceRemote([entry('z', '1')]);
    const disk = fromDisk();
    try {
      expect(state.allBase()).toEqual(disk.allBase());
      expect(state.allRemote()).toEqual(disk.allRemote());
      expect([...state.allBase().keys()]).toEqual(['a']);
      expect(state.allBase().get('a')?.version).toBe('2');
      expect(state.allRemote().get('x')).toMatchObject({ version: '5', deleted: true });
      expect(state.allRemote().get('z')?.deleted).toBe(false);
    } finally {
      disk.close();
    }
  });

  it('forget what a transaction wrote when it rolls back', () => {
    state.putBase(baseRow('kept', '1'));
    state.putRemote([entry('kept', '1')]);
    expect(state.allBase().size).toBe(1);
    expect(() =>
      state.transaction(() => {
        state.putBase(baseRow('lost', '1'));
        state.deleteBase('kept');
        state.putRemote([entry('lost', '1')]);
        throw new Error('cut short');
      }),
    ).toThrow('cut short');
    expect([...state.allBase().keys()]).toEqual(['kept']);
    expect([...state.allRemote().keys()]).toEqual(['kept']);
  });

  it('hand out copies of the maps and rows no caller can change for the others', () => {
    state.putBase(baseRow('a', '1'));
    state.putRemote([entry('a', '1')]);
    const base = state.allBase();
    base.delete('a');
    expect(state.allBase().has('a')).toBe(true);
    const row = state.allBase().get('a')!;
    expect(() => {
      (row as { version: string }).version = '9';
    }).toThrow(TypeError);
    expect(() => row.blocks.push({ sha256: 'b'.repeat(64), size: 1 })).toThrow(TypeError);
    const remote = state.allRemote().get('a')!;
    expect(() => {
      (remote as { deleted: boolean }).deleted = true;
    }).toThrow(TypeError);
    expect(state.allRemote().get('a')?.deleted).toBe(false);
  });
});

describe('readStatusFrom', () => {
  it('reads the status through a read-only connection while the agent holds the database', () => {
    state.setMeta('cursor', '42');
    state.putProblem('x', 'symlink', 'symbolic links are not followed', '', new Date('2026-01-01T00:00:00Z'));
    state.addConflict('p.txt', 'p (conflict from a 2026-01-01 000000).txt', new Date('2026-01-01T00:00:00Z'));
    state.setPending([{ path: 'up.txt', direction: 'up' }]);
    state.recordStopped('unauthorized', 'revoked', new Date('2026-01-02T00:00:00Z'));
    expect(readStatusFrom(join(dir, 'agent.db'))).toMatchObject({
      cursor: '42',
      pending: [{ path: 'up.txt', direction: 'up' }],
      problems: [{ path: 'x', code: 'symlink', since: '2026-01-01T00:00:00.000Z' }],
      conflicts: [{ path: 'p.txt', copy: 'p (conflict from a 2026-01-01 000000).txt' }],
      stopped: { code: 'unauthorized', message: 'revoked', at: '2026-01-02T00:00:00.000Z' },
    });
  });

  it('says so when the agent never ran', () => {
    expect(() => readStatusFrom(join(dir, 'none.db'))).toThrow(/no agent state/);
  });
});
