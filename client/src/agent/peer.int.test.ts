// Peer-first downloads in the sync engine (ADR 55), against a real partition, etcd and MinIO:
// device A syncs a file, announces itself and serves its blocks from its peer listener; device
// B fetches the file from A, not from the cloud, and counts where the bytes came from; with A's
// listener gone, B falls back to the cloud at once. Grants come from the service once it signs
// them: until then this test adds them to the partition's real `sources` answer with a test key,
// through the engine's `peer.sources` seam.
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type EtcdServer } from '../../../e2e/harness/etcd.ts';
import { startMinio, type MinioServer } from '../../../e2e/harness/minio.ts';
import { waitFor } from '../../../e2e/harness/wait.ts';
import { startPartition, unthrottledEnv, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';
import { MeshworkClient } from '../client.ts';
import { createPeerIdentity } from '../p2p/certificate.ts';
import { staticGrantKeys } from '../p2p/grant.ts';
import { signGrant } from '../testing/grants.ts';
import { createPeerHandler, startPeerListener, type PeerListener } from '../p2p/peer-server.ts';
import type { Sources } from '../types.ts';
import { openAgent, type SyncAgentShape } from './index.ts';

const MiB = 1024 * 1024;
const service = generateKeyPairSync('ed25519');
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

let etcd: EtcdServer;
let minio: MinioServer;
let partition: RunningPartition;
let root: string;
let objectId: string;
let laptop: MeshworkClient & { deviceId: string };
let phone: MeshworkClient & { deviceId: string };
let listener: PeerListener;
let a: SyncAgentShape;
let b: SyncAgentShape;
const identity = createPeerIdentity();
const stopA = new AbortController();
let runA: Promise<void>;
/** The paths the phone asked the sources of, in order. */
const askedSources: string[] = [];

/** What the service will answer once it signs grants: the real sources, each device with its fingerprint and a blocks grant. */
async function sourcesWithGrants(o: string, path: string, version: string, signal: AbortSignal): Promise<Sources> {
  const answer = await phone.sources(o, path, { version, signal });
  const entry = (await phone.getEntry(o, path, { signal })) as { notModified: false; entry: { blocks: { sha256: string }[] } };
  const iat = Math.floor(Date.now() / 1000);
  return {
    ...answer,
    sources: answer.sources.map((s) =>
      s.kind !== 'device'
        ? s
        : {
            ...s,
            fingerprint: s.deviceId === laptop.deviceId ? identity.fingerprint : undefined,
            grant: signGrant(
              {
                v: 1,
                kid: 'test',
                aud: s.deviceId,
                sub: phone.deviceId,
                iat,
                exp: iat + 300,
                scope: { kind: 'blocks', objectId: o, blocks: entry.entry.blocks.map((x) => x.sha256) },
              },
              service.privateKey,
            ),
          },
    ),
  };
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'meshwork-agent-peer-'));
  [etcd, minio] = await Promise.all([startEtcd({ name: 'etcd-agent-peer' }), startMinio({ bucket: 'agent-peer' })]);
  partition = await startPartition({ etcdEndpoint: etcd.endpoint, minio }, { partition: 'agent-peer', env: { ...unthrottledEnv } });
  const admin = new MeshworkClient({ baseUrl: partition.url, token: partition.adminToken });
  const alice = admin.as((await admin.createUser('alice')).token);
  laptop = await alice.registerDeviceClient('laptop');
  phone = await alice.registerDeviceClient('phone');
  objectId = (await laptop.createObject({ name: 'Photos' })).id;
  a = await openAgent({
    client: laptop,
    dir: join(root, 'laptop'),
    objectId,
    statePath: join(root, 'state', 'laptop.db'),
    deviceName: 'laptop',
    peer: { deviceId: laptop.deviceId },
  });
  const handler = createPeerHandler({
    deviceId: laptop.deviceId,
    keys: staticGrantKeys({ test: service.publicKey }),
    content: { locateBlock: (o, s) => a.locateBlock(o, s) },
    onServed: (n) => a.countServed(n),
  });
  listener = await startPeerListener(identity, handler, '127.0.0.1', 0);
  await a.close();
  // Opened again with what presence announces, now that the listener's port is known.
  a = await openAgent({
    client: laptop,
    dir: join(root, 'laptop'),
    objectId,
    statePath: join(root, 'state', 'laptop.db'),
    deviceName: 'laptop',
    peer: { deviceId: laptop.deviceId, announce: { endpoints: [`https://127.0.0.1:${listener.port}`], fingerprint: identity.fingerprint } },
  });
  b = await openAgent({
    client: phone,
    dir: join(root, 'phone'),
    objectId,
    statePath: join(root, 'state', 'phone.db'),
    deviceName: 'phone',
    peer: {
      deviceId: phone.deviceId,
      sources: (o, path, version, signal) => {
        askedSources.push(path);
        return sourcesWithGrants(o, path, version, signal);
      },
      connectTimeoutMs: 1000,
    },
  });
});

afterAll(async () => {
  stopA.abort();
  await runA?.catch(() => undefined);
  await listener?.close();
  await Promise.allSettled([a?.close(), b?.close()]);
  await partition?.stop();
  await Promise.all([etcd?.stop(), minio?.stop()]);
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('peer-first downloads', () => {
  it('fetches a file from the device that holds it, not from the cloud, and falls back to the cloud when that device is gone', async () => {
    const content = randomBytes(9 * MiB + 77);
    writeFileSync(join(root, 'laptop', 'video.bin'), content);
    await a.syncOnce();
    // A announces itself (the fingerprint is dropped if the server predates it) holding the object through its cursor.
    runA = a.run(stopA.signal);
    await waitFor(
      async () => (await phone.sources(objectId, 'video.bin')).sources.some((s) => s.kind === 'device' && s.deviceId === laptop.deviceId),
      { description: 'the laptop to be listed as a source', timeoutMs: 30_000 },
    );

    await b.syncOnce();
    expect(sha(readFileSync(join(root, 'phone', 'video.bin')))).toBe(sha(content));
    expect(b.status().transfer).toMatchObject({ fromPeers: content.length, fromCloud: 0 });
    expect(a.status().transfer.served).toBe(content.length);

    // A file of one block up to 64 KiB comes from the cloud without asking for its sources; one
    // byte more and it is asked of the laptop first (ADR 81).
    const small = randomBytes(64 * 1024);
    const justOver = randomBytes(64 * 1024 + 1);
    writeFileSync(join(root, 'laptop', 'small.txt'), small);
    writeFileSync(join(root, 'laptop', 'just-over.txt'), justOver);
    await a.syncOnce();
    askedSources.length = 0;
    await b.syncOnce();
    expect(sha(readFileSync(join(root, 'phone', 'small.txt')))).toBe(sha(small));
    expect(sha(readFileSync(join(root, 'phone', 'just-over.txt')))).toBe(sha(justOver));
    expect(askedSources).toEqual(['just-over.txt']);
    expect(b.status().transfer).toMatchObject({ fromPeers: content.length + justOver.length, fromCloud: small.length });

    // The laptop's listener goes away while its presence lasts: the phone drops it and takes the cloud.
    await listener.close();
    const second = randomBytes(5 * MiB);
    writeFileSync(join(root, 'laptop', 'second.bin'), second);
    await a.syncOnce();
    const started = performance.now();
    await b.syncOnce();
    expect(performance.now() - started).toBeLessThan(20_000);
    expect(sha(readFileSync(join(root, 'phone', 'second.bin')))).toBe(sha(second));
    expect(b.status().transfer).toMatchObject({
      fromPeers: content.length + justOver.length,
      fromRelays: 0,
      fromCloud: small.length + second.length,
    });
  });

  it('waits for a device that holds a peer-to-peer-only file, and fetches it from the device as soon as it serves again', async () => {
    const p2pId = (await laptop.createObject({ name: 'Private', cloudStorage: false })).id;
    const open = (device: MeshworkClient & { deviceId: string }, name: string, peer: Parameters<typeof openAgent>[0]['peer']) =>
      openAgent({
        client: device,
        dir: join(root, `${name}-private`),
        objectId: p2pId,
        statePath: join(root, 'state', `${name}-private.db`),
        deviceName: name,
        peer,
      });
    // The laptop serves on a port of its own, chosen now and announced; it is closed for the first part.
    const probe = await startPeerListener(identity, { handle: () => undefined }, '127.0.0.1', 0);
    const port = probe.port;
    await probe.close();
    const a2 = await open(laptop, 'laptop', {
      deviceId: laptop.deviceId,
      announce: { endpoints: [`https://127.0.0.1:${port}`], fingerprint: identity.fingerprint },
    });
    const b2 = await open(phone, 'phone', {
      deviceId: phone.deviceId,
      sources: sourcesWithGrants,
      connectTimeoutMs: 1000,
      waitingRetryMs: 300,
    });
    const stop = new AbortController();
    let listener2: PeerListener | undefined;
    try {
      const content = randomBytes(6 * MiB);
      writeFileSync(join(root, 'laptop-private', 'diary.bin'), content);
      await a2.syncOnce();
      const runA2 = a2.run(stop.signal);
      await waitFor(
        async () => (await phone.sources(p2pId, 'diary.bin')).sources.some((s) => s.kind === 'device' && s.deviceId === laptop.deviceId),
        { description: 'the laptop to be listed as a source', timeoutMs: 30_000 },
      );
      expect((await phone.sources(p2pId, 'diary.bin')).sources.some((s) => s.kind === 'cloud')).toBe(false);

      // The laptop is announced but does not answer: the phone waits, and says so.
      await b2.syncOnce();
      const waiting = b2.status().problems.find((p) => p.path === 'diary.bin');
      expect(waiting).toMatchObject({ code: 'waiting' });
      expect(waiting?.message).toMatch(/^waiting for a device that holds it/);
      expect(b2.status().pending).toEqual([{ path: 'diary.bin', direction: 'down' }]);

      // The phone syncs continuously; the laptop starts serving: the file comes from it, without a notification.
      const runB2 = b2.run(stop.signal);
      listener2 = await startPeerListener(
        identity,
        createPeerHandler({
          deviceId: laptop.deviceId,
          keys: staticGrantKeys({ test: service.publicKey }),
          content: { locateBlock: (o, s) => a2.locateBlock(o, s) },
        }),
        '127.0.0.1',
        port,
      );
      await waitFor(() => b2.status().problems.length === 0 && b2.status().pending.length === 0, {
        description: 'the phone to fetch the file',
        timeoutMs: 30_000,
      });
      expect(sha(readFileSync(join(root, 'phone-private', 'diary.bin')))).toBe(sha(content));
      expect(b2.status().transfer).toMatchObject({ fromPeers: content.length, fromCloud: 0 });
      stop.abort();
      await Promise.all([runA2, runB2]);
    } finally {
      stop.abort();
      await listener2?.close();
      await Promise.allSettled([a2.close(), b2.close()]);
    }
  });
});
