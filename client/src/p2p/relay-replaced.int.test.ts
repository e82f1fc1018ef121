// Two relays of one device (two `meshwork sync` processes on it) against a real partition: the
// newer one holds the relay, the older one is told it was replaced and stays away, rather than
// both taking the relay from each other in turn (ADR 52).
import type { ServerHttp2Stream } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type EtcdServer } from '../../../e2e/harness/etcd.ts';
import { startMinio, type MinioServer } from '../../../e2e/harness/minio.ts';
import { waitFor } from '../../../e2e/harness/wait.ts';
import { startPartition, unthrottledEnv, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';
import { MeshworkClient, type DeviceClient } from '../client.ts';
import { startRelay } from './relay.ts';

describe('two relays of one device', () => {
  let etcd: EtcdServer;
  let minio: MinioServer;
  let partition: RunningPartition;
  let account: MeshworkClient;
  let device: DeviceClient;

  beforeAll(async () => {
    [etcd, minio] = await Promise.all([startEtcd({ name: 'relay-replaced' }), startMinio({ bucket: 'relay-replaced' })]);
    partition = await startPartition({ etcdEndpoint: etcd.endpoint, minio }, { partition: 'relay-replaced', env: { ...unthrottledEnv } });
    const user = await new MeshworkClient({ baseUrl: partition.url, token: partition.adminToken }).createUser('two-syncs');
    account = new MeshworkClient({ baseUrl: partition.url, token: user.token });
    device = await account.registerDeviceClient('laptop');
  });

  afterAll(async () => {
    await partition?.stop();
    await Promise.allSettled([etcd?.stop(), minio?.stop()]);
  });

  it('leave the newer one holding the relay; the older one stops without reconnecting', async () => {
    const start = (name: string) => {
      const states: { connected: boolean; reason?: string; retryInMs?: number }[] = [];
      const relay = startRelay({
        url: `${partition.url.replace(/^http/, 'ws')}/v1/devices/${device.deviceId}/relay`,
        token: device.token!,
        handler: {
          handle: (stream: ServerHttp2Stream) => {
            stream.respond({ ':status': 200, 'content-type': 'application/json' });
            stream.end(JSON.stringify({ objects: [{ objectId: name, name }] }));
          },
        },
        onState: (s) => states.push(s),
      });
      return { relay, states };
    };
    const remoteName = async (): Promise<string | undefined> => {
      const res = await fetch(`${partition.url}/v1/devices/${device.deviceId}/remote/files/`, {
        headers: { authorization: `Bearer ${account.token}` },
      });
      return res.ok ? ((await res.json()) as { objects: { name: string }[] }).objects[0]?.name : undefined;
    };

    const first = start('first');
    await waitFor(async () => (await remoteName()) === 'first' || undefined, {
      description: 'the first relay to answer',
      timeoutMs: 20_000,
    });
    const second = start('second');
    await waitFor(async () => (await remoteName()) === 'second' || undefined, {
      description: 'the second relay to answer',
      timeoutMs: 20_000,
    });
    await waitFor(() => first.states.some((s) => !s.connected) || undefined, {
      description: 'the first relay to be told',
      timeoutMs: 20_000,
    });
    expect(first.states.at(-1)?.connected).toBe(false);
    expect(first.states.at(-1)?.reason).toContain('replaced');
    expect(first.states.at(-1)?.retryInMs).toBeUndefined();
    // Well past the first reconnect delay (at most 1 s): the second still answers, the first never came back.
    for (let i = 0; i < 5; i++) expect(await remoteName()).toBe('second');
    await new Promise<void>((resolve) => setTimeout(resolve, 1500));
    expect(await remoteName()).toBe('second');
    expect(first.states.filter((s) => s.connected)).toHaveLength(1);
    await Promise.all([first.relay.close(), second.relay.close()]);
  });
});
