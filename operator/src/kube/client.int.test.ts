// The client's delete and merge patch against a real API server.
import { randomBytes } from 'node:crypto';
import type { V1ConfigMap } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { KubeClient } from './client.ts';
import { loadKubeconfigFile } from './credentials.ts';

const stack = inject('stack');
const namespace = `client-${randomBytes(3).toString('hex')}`;
const client = new KubeClient(loadKubeconfigFile(stack.controlPlane.adminKubeconfig));
const configMaps = { apiVersion: 'v1', resource: 'configmaps', namespace };

describe('KubeClient delete and mergePatch', () => {
  beforeAll(async () => {
    await client.create({ apiVersion: 'v1', resource: 'namespaces' }, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  });

  afterAll(async () => {
    await client.delete({ apiVersion: 'v1', resource: 'namespaces', name: namespace });
    client.close();
  });

  it('deletes only the object with the given uid, and says when it was already gone', async () => {
    const made = await client.create<V1ConfigMap>(configMaps, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a' }, data: { k: 'v' } });
    expect(await client.delete({ ...configMaps, name: 'a' }, { uid: '00000000-0000-4000-8000-000000000000' })).toBe(false);
    expect(await client.get({ ...configMaps, name: 'a' })).toBeDefined();
    expect(await client.delete({ ...configMaps, name: 'a' }, { uid: made.metadata!.uid!, gracePeriodSeconds: 0 })).toBe(true);
    expect(await client.get({ ...configMaps, name: 'a' })).toBeUndefined();
    expect(await client.delete({ ...configMaps, name: 'a' })).toBe(false);
  });

  it('keeps its pooled connection usable after a delete with options (the body is sent with its length)', async () => {
    for (let i = 0; i < 5; i++) {
      await client.create(configMaps, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `b-${i}` } });
      expect(await client.delete({ ...configMaps, name: `b-${i}` }, { gracePeriodSeconds: 0 })).toBe(true);
      // Without a Content-Length the server ignored the delete's body and read it as the next request: 400.
      await client.create(configMaps, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `c-${i}` } });
    }
  });

  it('merges labels in and takes them out with null', async () => {
    await client.create(configMaps, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'd', labels: { keep: 'yes' } } });
    await client.mergePatch({ ...configMaps, name: 'd' }, { metadata: { labels: { 'unsuitable.meshwork.io/x.p0': '123' } } });
    expect((await client.get<V1ConfigMap>({ ...configMaps, name: 'd' }))!.metadata!.labels).toEqual({ keep: 'yes', 'unsuitable.meshwork.io/x.p0': '123' });
    await client.mergePatch({ ...configMaps, name: 'd' }, { metadata: { labels: { 'unsuitable.meshwork.io/x.p0': null } } });
    expect((await client.get<V1ConfigMap>({ ...configMaps, name: 'd' }))!.metadata!.labels).toEqual({ keep: 'yes' });
  });
});
