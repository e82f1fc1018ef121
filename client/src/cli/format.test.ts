// What `meshwork` prints for people: sizes, rates, progress, tables, sync events and status.
import { describe, expect, it } from 'vitest';
import type { AgentEvent, AgentStatus } from '../agent/index.ts';
import type { Device, MeshObject } from '../types.ts';
import {
  formatBytes,
  formatDevices,
  formatEvent,
  formatObjects,
  formatRate,
  formatReport,
  formatStatus,
  formatTable,
  progressLine,
} from './format.ts';

const MiB = 1024 * 1024;

describe('sizes and rates', () => {
  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [1536, '1.5 KiB'],
    [5 * MiB, '5.0 MiB'],
    [3 * 1024 * MiB, '3.0 GiB'],
  ])('formatBytes(%d) is %s', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });

  it.each([
    [10 * MiB, 1000, '10.0 MiB/s'],
    [MiB, 500, '2.0 MiB/s'],
    [100, 0, '-'],
  ])('formatRate(%d, %d) is %s', (bytes, ms, text) => {
    expect(formatRate(bytes, ms)).toBe(text);
  });

  it.each([
    [0, 4 * MiB, 1000, 'f  [----------]   0%  0 B / 4.0 MiB  0 B/s'],
    [2 * MiB, 4 * MiB, 1000, 'f  [#####-----]  50%  2.0 MiB / 4.0 MiB  2.0 MiB/s'],
    [4 * MiB, 4 * MiB, 2000, 'f  [##########] 100%  4.0 MiB / 4.0 MiB  2.0 MiB/s'],
    [3 * MiB, undefined, 1000, 'f  3.0 MiB  3.0 MiB/s'],
  ])('progressLine(%d of %s)', (bytes, total, ms, line) => {
    expect(progressLine('f', bytes, total, ms, 10)).toBe(line);
  });
});

describe('tables', () => {
  it('aligns columns and leaves the last unpadded', () => {
    expect(
      formatTable(
        ['A', 'BB'],
        [
          ['xyz', '1'],
          ['', '22'],
        ],
      ),
    ).toBe('A    BB\nxyz  1\n     22\n');
  });

  it('lists objects, and says how to make the first', () => {
    const object: MeshObject = {
      id: 'o1',
      name: 'Documents',
      owner: 'u1',
      role: 'owner',
      members: [{ userId: 'u1', role: 'owner' }],
      cloudStorage: true,
      createdAt: '2026-01-01T00:00:00.000Z',
      version: '7',
    };
    expect(formatObjects([object])).toBe(
      'ID  NAME       ROLE   MEMBERS  CREATED\no1  Documents  owner  1        2026-01-01T00:00:00.000Z\n',
    );
    expect(formatObjects([])).toMatch(/meshwork objects create NAME/);
  });

  it('marks this device among the devices', () => {
    const devices: Device[] = [
      { id: 'd1', name: 'laptop', createdAt: '2026-01-01', online: true, current: true },
      { id: 'd2', name: 'phone', createdAt: '2026-01-02', online: false, current: false },
    ];
    const lines = formatDevices(devices).split('\n');
    expect(lines[1]).toMatch(/^d1\s+laptop\s+yes\s+2026-01-01\s+\(this device\)$/);
    expect(lines[2]).toMatch(/^d2\s+phone\s+no\s+2026-01-02$/);
  });
});

describe('sync events', () => {
  it.each<[AgentEvent, string | undefined]>([
    [{ type: 'scan', files: 10, changed: 2, ms: 15 }, 'scanned 10 files, 2 changed (15 ms)'],
    [{ type: 'upload', path: 'a', bytes: 1, totalBytes: 2 }, undefined],
    [{ type: 'download', path: 'a', bytes: 1, totalBytes: 2 }, undefined],
    [{ type: 'committed', path: 'a.txt', version: '3', direction: 'up' }, 'uploaded a.txt'],
    [{ type: 'committed', path: 'a.txt', version: '3', direction: 'down' }, 'downloaded a.txt'],
    [{ type: 'committed', path: 'a.txt', version: '3', direction: 'delete-up' }, 'deleted on the server a.txt'],
    [{ type: 'committed', path: 'a.txt', version: '3', direction: 'delete-down' }, 'deleted here a.txt'],
    [
      { type: 'conflict', path: 'a.txt', copy: 'a (conflict from phone 2026-01-01).txt' },
      'conflict on a.txt: the other version is kept as a (conflict from phone 2026-01-01).txt',
    ],
    [
      { type: 'problem', path: 'link', code: 'symlink', message: 'symlinks are not followed' },
      'problem with link (symlink): symlinks are not followed',
    ],
    [{ type: 'idle' }, 'up to date'],
    [{ type: 'retry', reason: 'store_unavailable', delayMs: 1500 }, 'retrying in 1.5 s: store_unavailable'],
  ])('%j', (event, line) => {
    expect(formatEvent(event)).toBe(line);
  });

  it('summarises a pass and points at status when paths have problems', () => {
    const report = { uploaded: 2, downloaded: 1, deletedRemote: 0, deletedLocal: 0, conflicts: 0, problems: 1, cursor: '9' };
    expect(formatReport(report)).toBe(
      'synced: 2 uploaded, 1 downloaded, 0 deleted on the server, 0 deleted here, 0 conflicts, 1 problems; see meshwork status\n',
    );
    expect(formatReport({ ...report, problems: 0 })).not.toMatch(/status/);
  });
});

describe('status', () => {
  const base: AgentStatus = {
    objectId: 'o1',
    dir: '/home/ada/Documents',
    cursor: '42',
    lastSyncAt: '2026-01-01T00:00:00.000Z',
    pending: [
      { path: 'a.txt', direction: 'up' },
      { path: 'b.txt', direction: 'down' },
    ],
    problems: [{ path: 'big.iso', code: 'too_large', message: 'over 5 GiB', since: '2026-01-01T00:00:00.000Z' }],
    conflicts: [{ path: 'c.txt', copy: 'c (conflict from phone 2026-01-01).txt', at: '2026-01-01T00:00:00.000Z' }],
    stopped: null,
    transfer: { fromPeers: 3, fromRelays: 4, fromCloud: 2, served: 1 },
  };

  it('shows pending, problems and conflicts', () => {
    const text = formatStatus(base);
    expect(text).toContain('/home/ada/Documents  <->  o1');
    expect(text).toContain('pending: 1 to upload, 1 to download');
    expect(text).toContain('↑ a.txt');
    expect(text).toContain('↓ b.txt');
    expect(text).toContain('big.iso (too_large, since 2026-01-01T00:00:00.000Z): over 5 GiB');
    expect(text).toContain('c.txt -> c (conflict from phone 2026-01-01).txt');
    expect(text).not.toContain('STOPPED');
    expect(text).toContain('bytes: 3 from peers, 4 through relays, 2 from the cloud, 1 served to peers');
  });

  it('says why a folder stopped', () => {
    const text = formatStatus({ ...base, stopped: { code: 'unauthorized', message: 'device revoked', at: '2026-01-02T00:00:00.000Z' } });
    expect(text).toContain('STOPPED (unauthorized) since 2026-01-02T00:00:00.000Z: device revoked');
  });

  it('cuts a long pending list', () => {
    const pending = Array.from({ length: 25 }, (_, i) => ({ path: `f${i}`, direction: 'up' as const }));
    expect(formatStatus({ ...base, pending })).toContain('… and 5 more');
  });
});
