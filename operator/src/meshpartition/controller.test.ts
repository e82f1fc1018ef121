import { describe, expect, it } from 'vitest';
import { ownerKey } from './controller.ts';

// What any controller reference maps to is controllerOwnerKey's table (controller/wiring.test.ts).
describe('ownerKey', () => {
  const owner = { apiVersion: 'meshwork.io/v1alpha1', kind: 'MeshPartition', name: 'p0', uid: 'u', controller: true };
  it.each([
    { case: 'an owned StatefulSet', obj: { metadata: { namespace: 'mesh', name: 'p0', ownerReferences: [owner] } }, key: 'mesh/p0' },
    {
      case: 'a pod, through its partition label',
      obj: { metadata: { namespace: 'mesh', name: 'p0-1', labels: { 'meshwork.io/partition': 'p0' } } },
      key: 'mesh/p0',
    },
    {
      case: 'an object owned by something else',
      obj: { metadata: { namespace: 'mesh', name: 'x', ownerReferences: [{ ...owner, kind: 'Deployment', apiVersion: 'apps/v1' }] } },
      key: undefined,
    },
    {
      case: 'a labelled pod with no namespace',
      obj: { metadata: { name: 'p0-1', labels: { 'meshwork.io/partition': 'p0' } } },
      key: undefined,
    },
  ])('maps $case to $key', ({ obj, key }) => {
    expect(ownerKey(obj)).toBe(key);
  });
});
