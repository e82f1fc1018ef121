import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { OwnerRecordSighting } from './owner-leases.ts';
import { ownerLeaseOf, slimMemberPod } from './signals.ts';

const created = Date.parse('2026-01-01T12:00:00Z');
const pod = (ip?: string): V1Pod => ({ metadata: { name: 'p0-1' }, status: ip ? { podIP: ip } : {} });
const record = (over: Partial<{ present: boolean; url: string; registeredAt: number; goneAt: number }> = {}): OwnerRecordSighting => ({
  present: true,
  url: 'http://198.18.1.5:8080',
  registeredAt: created + 3000,
  ...over,
});

describe('ownerLeaseOf', () => {
  it.each<[string, V1Pod, OwnerRecordSighting | undefined, ReturnType<typeof ownerLeaseOf>]>([
    ['nothing known', pod('198.18.1.5'), undefined, undefined],
    ['a record of this pod, alive', pod('198.18.1.5'), record(), { live: true, registeredAt: created + 3000 }],
    [
      'a record of this pod, gone',
      pod('198.18.1.5'),
      record({ present: false, goneAt: created + 60_000 }),
      { live: false, registeredAt: created + 3000, goneAt: created + 60_000 },
    ],
    ['a record written from another address (an earlier pod)', pod('198.18.1.9'), record(), undefined],
    ['a record written before this pod existed', pod('198.18.1.5'), record({ registeredAt: created - 60_000 }), undefined],
    ['a pod without an address yet', pod(), record(), { live: true, registeredAt: created + 3000 }],
    [
      'no record since the first read, for a pod older than that read: it holds no lease',
      pod('198.18.1.5'),
      { present: false, url: '', registeredAt: NaN, goneAt: created + 60_000 },
      { live: false, registeredAt: NaN, goneAt: created + 60_000 },
    ],
    [
      'no record yet for a pod created after the first read: it may be starting',
      pod('198.18.1.5'),
      { present: false, url: '', registeredAt: NaN, goneAt: created - 60_000 },
      undefined,
    ],
  ])('%s', (_name, p, sighting, expected) => {
    expect(ownerLeaseOf(p, sighting, created)).toEqual(expected);
  });
});

describe('slimMemberPod', () => {
  it("keeps the scheduler's message of an unscheduled pod, and no other condition message", () => {
    const slim = slimMemberPod({
      metadata: { name: 'p0-1' },
      status: {
        conditions: [
          { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes are available: 3 Insufficient cpu.' },
          { type: 'Ready', status: 'False', reason: 'ContainersNotReady', message: 'containers with unready status: [partition]' },
        ],
      },
    });
    expect(slim.status?.conditions).toEqual([
      { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes are available: 3 Insufficient cpu.' },
      { type: 'Ready', status: 'False', reason: 'ContainersNotReady' },
    ]);
  });
});
