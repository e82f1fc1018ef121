import { describe, expect, it } from 'vitest';
import { meshOwnerKey } from './controller.ts';

// What any controller reference maps to is controllerOwnerKey's table (controller/wiring.test.ts).
describe('meshOwnerKey', () => {
  const owner = { apiVersion: 'meshwork.io/v1alpha1', kind: 'Mesh', name: 'm', uid: 'u', controller: true };
  it.each([
    { case: 'an owned MeshPartition', obj: { metadata: { namespace: 'mesh', name: 'm-p0', ownerReferences: [owner] } }, key: 'mesh/m' },
    {
      case: "a partition's StatefulSet",
      obj: { metadata: { namespace: 'mesh', name: 'm-p0', ownerReferences: [{ ...owner, kind: 'MeshPartition', name: 'm-p0' }] } },
      key: undefined,
    },
  ])('maps $case to $key', ({ obj, key }) => {
    expect(meshOwnerKey(obj)).toBe(key);
  });
});
