// Which Meshes and foreign MeshPartitions share a Mesh's etcd, as a table: the Mesh runs no slot
// move while any does (ADR 63).
import { describe, expect, it } from 'vitest';
import { sampleMesh, samplePartition } from '../api/fixtures.ts';
import type { Mesh, MeshPartition } from '../api/v1alpha1.ts';
import { describeSharedEtcd, sharedEtcd } from './shared-etcd.ts';

function meshOn(name: string, endpoints: string[], namespace = 'mesh'): Mesh {
  const m = sampleMesh(name, {}, namespace);
  m.metadata.uid = `uid-${namespace}-${name}`;
  m.spec.stores.etcd.endpoints = endpoints;
  return m;
}

function partitionOn(name: string, endpoints: string[], controlledBy?: Mesh): MeshPartition {
  const p = samplePartition(name);
  p.spec.stores.etcd.endpoints = endpoints;
  if (controlledBy) {
    Object.assign(p.metadata, {
      ownerReferences: [
        {
          apiVersion: 'meshwork.io/v1alpha1',
          kind: 'Mesh',
          name: controlledBy.metadata.name,
          uid: controlledBy.metadata.uid,
          controller: true,
        },
      ],
    });
  }
  return p;
}

const a = meshOn('a', ['http://etcd-a:2379']);

describe('sharedEtcd', () => {
  it.each([
    { case: 'alone', meshes: [a], partitions: [], shared: undefined },
    { case: 'its own partitions', meshes: [a], partitions: [partitionOn('a-p0', ['http://etcd-a:2379'], a)], shared: undefined },
    { case: 'another Mesh on another etcd', meshes: [a, meshOn('b', ['http://etcd-b:2379'])], partitions: [], shared: undefined },
    {
      case: 'another Mesh in another namespace on one of the same endpoints, written with a slash',
      meshes: [a, meshOn('b', ['http://etcd-b:2379', 'HTTP://etcd-a:2379/'], 'other')],
      partitions: [],
      shared: { meshes: ['other/b'], partitions: [] },
    },
    {
      case: "a MeshPartition no Mesh controls, and another Mesh's partition (counted through its Mesh)",
      meshes: [a, meshOn('b', ['http://etcd-a:2379'])],
      partitions: [partitionOn('p0', ['http://etcd-a:2379']), partitionOn('b-p0', ['http://etcd-a:2379'], meshOn('b', []))],
      shared: { meshes: ['mesh/b'], partitions: ['mesh/p0'] },
    },
  ])('$case', ({ meshes, partitions, shared }) => {
    expect(sharedEtcd(a, meshes, partitions)).toEqual(shared);
  });

  it('leaves out a Mesh being deleted', () => {
    const b = meshOn('b', ['http://etcd-a:2379']);
    b.metadata.deletionTimestamp = '2026-01-01T00:00:00Z';
    expect(sharedEtcd(a, [a, b], [])).toBeUndefined();
  });

  it('names what shares the etcd and what the Mesh does not do meanwhile', () => {
    expect(describeSharedEtcd({ meshes: ['other/b'], partitions: ['mesh/p0'] })).toBe(
      'The etcd of this Mesh is also used by Mesh other/b and MeshPartition mesh/p0: slots do not move and no surplus partition is deleted until each Mesh has its own etcd',
    );
  });
});
