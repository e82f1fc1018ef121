import { describe, expect, it } from 'vitest';
import { controllerOwnerKey } from './wiring.ts';

describe('controllerOwnerKey', () => {
  const owner = { apiVersion: 'meshwork.io/v1alpha1', kind: 'Mesh', name: 'm', uid: 'u', controller: true };
  it.each([
    {
      case: 'an object the kind controls',
      obj: { metadata: { namespace: 'mesh', name: 'm-p0', ownerReferences: [owner] } },
      key: 'mesh/m',
    },
    {
      case: 'an object another kind controls',
      obj: { metadata: { namespace: 'mesh', name: 'm-p0', ownerReferences: [{ ...owner, kind: 'MeshPartition', name: 'm-p0' }] } },
      key: undefined,
    },
    {
      case: 'an object of the same kind in another API group',
      obj: { metadata: { namespace: 'mesh', name: 'x', ownerReferences: [{ ...owner, apiVersion: 'apps/v1' }] } },
      key: undefined,
    },
    {
      case: 'a non-controller reference',
      obj: { metadata: { namespace: 'mesh', name: 'x', ownerReferences: [{ ...owner, controller: false }] } },
      key: undefined,
    },
    { case: 'no namespace', obj: { metadata: { name: 'x', ownerReferences: [owner] } }, key: undefined },
  ])('maps $case to $key', ({ obj, key }) => {
    expect(controllerOwnerKey(obj, 'Mesh')).toBe(key);
  });
});
