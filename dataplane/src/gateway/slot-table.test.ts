// Building the slot table from owner records: replicas, coverage, a newer claim winning, bad records left out.
import { describe, expect, it } from 'vitest';
import type { SlotMapRecord } from '@meshwork/contract';
import { buildSlotTable } from './slot-table.ts';

const record = (partition: string, replica: string, slots: string, url = `http://${replica}:8080`): SlotMapRecord => ({
  partition,
  replica,
  slots,
  url,
  instance: replica,
  registeredAt: '2026-01-01T00:00:00Z',
});

describe('buildSlotTable', () => {
  it('maps each slot to its partition with every replica as a member', () => {
    const table = buildSlotTable([
      { record: record('a', 'a-1', '0-2047'), revision: 3 },
      { record: record('a', 'a-0', '0-2047'), revision: 2 },
      { record: record('b', 'b-0', '2048-4095'), revision: 4 },
    ]);
    expect(table.ownerOf(0)?.name).toBe('a');
    expect(table.ownerOf(4095)?.name).toBe('b');
    expect(table.ownerOf(10)?.members.map((m) => m.replica)).toEqual(['a-0', 'a-1']);
    expect(table.coveredSlots).toBe(4096);
  });

  it('gives a slot claimed twice to the claim written last', () => {
    const table = buildSlotTable([
      { record: record('new', 'n-0', '100-199'), revision: 9 },
      { record: record('old', 'o-0', '0-1023'), revision: 5 },
    ]);
    expect(table.ownerOf(150)?.name).toBe('new');
    expect(table.ownerOf(99)?.name).toBe('old');
    expect(table.ownerOf(2000)).toBeUndefined();
    expect(table.coveredSlots).toBe(1024);
  });

  it('routes a slot with an owner key to the partition the key names, whatever the claims say', () => {
    const table = buildSlotTable(
      [
        { record: record('a', 'a-0', '0-2047'), revision: 2 },
        { record: record('b', 'b-0', '2048-4095'), revision: 3 },
        { record: record('c', 'c-0', '1000-1999'), revision: 4 },
      ],
      new Map([
        [1500, { partition: 'a', epoch: 1 }],
        [10, { partition: 'c', epoch: 2 }],
        [3000, { partition: 'gone', epoch: 2 }],
      ]),
    );
    expect(table.ownerOf(1500)?.name).toBe('a');
    expect(table.ownerOf(1400)?.name).toBe('c');
    expect(table.ownerOf(10)?.name).toBe('c');
    expect(table.ownerOf(11)?.name).toBe('a');
    // A key naming a partition with no member: no owner to send to (503), never the claim's.
    expect(table.ownerOf(3000)).toBeUndefined();
    expect(table.coveredSlots).toBe(4095);
    expect(table.owning.map((p) => p.name)).toEqual(['a', 'b', 'c']);
    expect(table.served()).toEqual({ a: '0-9,11-999,1500,2000-2047', b: '2048-2999,3001-4095', c: '10,1000-1499,1501-1999' });
  });

  it('sends requests for any partition only to partitions that own a slot', () => {
    const table = buildSlotTable(
      [
        { record: record('a', 'a-0', '0-4095'), revision: 2 },
        { record: record('new', 'new-0', '2730-4095'), revision: 3 },
      ],
      new Map(Array.from({ length: 4096 }, (_, slot) => [slot, { partition: 'a', epoch: 1 }] as const)),
    );
    expect(table.partitions.has('new')).toBe(true);
    expect(table.owning.map((p) => p.name)).toEqual(['a']);
  });

  it('leaves out records whose slots or URL do not parse', () => {
    const table = buildSlotTable([
      { record: record('x', 'x-0', 'nonsense'), revision: 1 },
      { record: record('y', 'y-0', '0-10', 'ftp://y'), revision: 2 },
    ]);
    expect(table.partitions.size).toBe(0);
    expect(table.records).toEqual([]);
  });
});
