// Peer-to-peer content and the relay across a real NAT (e2e/p2p/nat.ts): devices `lan-a` and
// `lan-b` sit on a home network behind a router that masquerades them; device `outside` is on
// the wide-area segment, where the service (one partition, its own etcd and MinIO) listens.
// Every device is a `meshwork sync` process inside its own network namespace.
//
// - Two LAN devices sync a 64 MiB file of a cloud object directly: the fetching agent counts
//   the bytes as from a peer, the serving agent as served, and the partition serves none.
// - A p2p-only object syncs between the LAN devices, and the bucket gains no object.
// - The outside device cannot open a connection to a LAN device, yet fetches its p2p-only file
//   through the relay, byte for byte.
// - A forged, expired or other-device grant is refused by the peer; a non-member cannot reach a
//   device's remote routes.
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshworkClient } from '@meshwork/client';
import { execIn, natSupport } from './nat.ts';
import { sha256, startP2pStack, type P2pStack } from './p2p-stack.ts';

const MiB = 1024 * 1024;

describe.runIf(natSupport().ok)('peer-to-peer content across a NAT', () => {
  let stack: P2pStack;

  beforeAll(async () => {
    stack = await startP2pStack('p2p');
  }, 180_000);

  afterAll(async () => {
    await stack?.stop();
  });

  it('syncs 64 MiB between two LAN devices directly: counted at the serving peer, not at the cloud', async () => {
    const objectId = await stack.createObject('a', 'photos', true);
    const data = randomBytes(64 * MiB);
    const dirA = join(stack.homes.a.dir, 'photos');
    const dirB = join(stack.homes.b.dir, 'photos');
    await mkdir(dirA, { recursive: true });
    await writeFile(join(dirA, 'video.bin'), data);
    await stack.startAgent('a', dirA, objectId);
    // A uploads (a cloud object) and announces that it holds the file; only then does B start.
    await stack.waitForHolder(objectId, 'video.bin', 'a');
    const before = { partition: await stack.partitionContentBytes(), served: (await stack.transfer('a', objectId)).served };
    await stack.startAgent('b', dirB, objectId);
    await stack.waitForFile(join(dirB, 'video.bin'), sha256(data), 'B to hold the 64 MiB file');
    const [tA, tB] = [await stack.transfer('a', objectId), await stack.transfer('b', objectId)];
    console.log(`LAN: B took ${tB.fromPeers} bytes from peers and ${tB.fromCloud} from the cloud; A served ${tA.served - before.served}`);
    expect(tB.fromPeers).toBe(64 * MiB);
    expect(tB.fromCloud).toBe(0);
    expect(tA.served - before.served).toBeGreaterThanOrEqual(64 * MiB);
    expect(await stack.partitionContentBytes()).toBe(before.partition);
    await stack.stopAgents();
  });

  it('syncs a p2p-only object between the LAN devices, and the bucket gains no object', async () => {
    const objectId = await stack.createObject('a', 'notes', false);
    const stored = await stack.bucketObjects();
    const data = randomBytes(3 * MiB);
    const dirA = join(stack.homes.a.dir, 'notes');
    const dirB = join(stack.homes.b.dir, 'notes');
    await mkdir(join(dirA, 'sub'), { recursive: true });
    await writeFile(join(dirA, 'sub', 'draft.txt'), data);
    await stack.startAgent('a', dirA, objectId);
    await stack.waitForHolder(objectId, 'sub/draft.txt', 'a');
    await stack.startAgent('b', dirB, objectId);
    await stack.waitForFile(join(dirB, 'sub', 'draft.txt'), sha256(data), 'B to hold the p2p-only file');
    expect((await stack.transfer('b', objectId)).fromCloud).toBe(0);
    expect(await stack.bucketObjects()).toEqual(stored);
    await stack.stopAgents();
  });

  it('fetches a p2p-only file of a LAN device from outside through the relay, which no direct connection reaches', async () => {
    const objectId = await stack.createObject('a', 'travel', false);
    const data = randomBytes(16 * MiB);
    const dirA = join(stack.homes.a.dir, 'travel');
    const dirC = join(stack.homes.outside.dir, 'travel');
    await mkdir(dirA, { recursive: true });
    await writeFile(join(dirA, 'map.bin'), data);
    await stack.startAgent('a', dirA, objectId);
    await stack.waitForHolder(objectId, 'map.bin', 'a');
    // From outside, A's announced address answers nothing (the router drops the attempt).
    const { sources } = await stack.observer.sources(objectId, 'map.bin');
    const endpoint = sources.flatMap((s) => (s.kind === 'device' ? s.endpoints : []))[0]!;
    const url = new URL(endpoint);
    const probe = `const s = require('node:net').connect({ host: ${JSON.stringify(url.hostname)}, port: ${url.port}, timeout: 1500 });
      s.on('connect', () => { console.log('connected'); process.exit(0); });
      s.on('timeout', () => { console.log('timeout'); process.exit(0); });
      s.on('error', (e) => { console.log(e.code); process.exit(0); });`;
    expect((await execIn(stack.hosts.outside.netns, process.execPath, ['-e', probe])).trim()).not.toBe('connected');

    const stored = await stack.bucketObjects();
    await stack.startAgent('outside', dirC, objectId);
    await stack.waitForFile(join(dirC, 'map.bin'), sha256(data), 'the outside device to hold the p2p-only file');
    const tC = await stack.transfer('outside', objectId);
    console.log(
      `Relay: the outside device took ${tC.fromRelays} bytes through relays, ${tC.fromPeers} from peers directly, ${tC.fromCloud} from the cloud`,
    );
    expect(tC.fromRelays).toBe(16 * MiB);
    expect(tC.fromPeers).toBe(0);
    expect(tC.fromCloud).toBe(0);
    expect(await stack.bucketObjects()).toEqual(stored);
    await stack.stopAgents();
  });

  it('refuses forged, expired and other-device grants at the peer, and a non-member at the remote routes', async () => {
    const objectId = await stack.createObject('a', 'vault', false);
    const dirA = join(stack.homes.a.dir, 'vault');
    await mkdir(dirA, { recursive: true });
    const data = randomBytes(64 * 1024);
    await writeFile(join(dirA, 'key.bin'), data);
    await stack.startAgent('a', dirA, objectId);
    await stack.waitForHolder(objectId, 'key.bin', 'a');
    // Another device of alice's asks for sources: a grant for it, to fetch from A.
    const b = await new MeshworkClient({ baseUrl: stack.partition.url, token: stack.userToken }).registerDeviceClient('b-probe');
    const { sources } = await b.sources(objectId, 'key.bin');
    const source = sources.find((s) => s.kind === 'device');
    if (source?.kind !== 'device') throw new Error(`A is not a source of key.bin: ${JSON.stringify(sources)}`);
    expect(typeof source.grant).toBe('string');
    expect(source.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    const block = sha256(data);
    const [head, signature] = source.grant!.split('.') as [string, string];
    const payload = JSON.parse(Buffer.from(head, 'base64url').toString('utf8')) as Record<string, unknown>;
    const forge = (changes: Record<string, unknown>): string =>
      `${Buffer.from(JSON.stringify({ ...payload, ...changes })).toString('base64url')}.${signature}`;
    const endpoint = new URL(source.endpoints[0]!);
    console.log(
      'DEBUG',
      JSON.stringify(payload),
      'A is',
      (await stack.observer.listDevices()).map((d) => `${d.name}=${d.id}`).join(' '),
      'block',
      block,
    );
    /** GET a block from A's peer listener (HTTP/2 over TLS), from B's namespace, pinning A's certificate: the status. */
    const fetchBlock = async (grant: string | undefined): Promise<number> => {
      const script = `
        const http2 = require('node:http2');
        const [url, path, fingerprint, grant] = process.argv.slice(1);
        const session = http2.connect(url, { rejectUnauthorized: false });
        session.on('error', (e) => { console.log(e.code); process.exit(0); });
        // Pinned: the request (and its grant) goes out only to the certificate presence announced.
        session.on('connect', () => {
          const seen = session.socket.getPeerCertificate().fingerprint256.replaceAll(':', '').toLowerCase();
          if (seen !== fingerprint) { console.log('pin'); process.exit(0); }
          const req = session.request({ ':path': path, ...(grant ? { authorization: 'Grant ' + grant } : {}) });
          let status = 0;
          req.on('response', (h) => (status = h[':status']));
          req.resume();
          req.on('end', () => { console.log(status); process.exit(0); });
          req.on('error', (e) => { console.log(e.code); process.exit(0); });
        });`;
      const out = await execIn(stack.hosts.b.netns, process.execPath, [
        '-e',
        script,
        endpoint.origin,
        `/p2p/v1/blocks/${block}`,
        source.fingerprint!,
        grant ?? '',
      ]);
      return Number(out.trim());
    };
    expect(await fetchBlock(source.grant)).toBe(200);
    expect(await fetchBlock(undefined)).toBe(401);
    expect(await fetchBlock(forge({ sub: 'someone-else', exp: (payload.exp as number) + 3600 }))).toBe(401);
    expect(await fetchBlock(forge({ exp: Math.floor(Date.now() / 1000) - 3600 }))).toBe(401);
    // A genuine grant for another serving device: b-probe announces that it holds the file too,
    // c-probe asks for sources and gets a grant for b-probe, which it presents to A.
    const answer = await stack.observer.getEntry(objectId, 'key.bin');
    expect(answer.notModified).toBe(false);
    if (answer.notModified) return;
    await b.setPresence(b.deviceId, {
      endpoints: ['https://198.51.100.99:7443'],
      holds: [{ objectId, path: 'key.bin', version: String(answer.entry.version) }],
    });
    const c = await new MeshworkClient({ baseUrl: stack.partition.url, token: stack.userToken }).registerDeviceClient('c-probe');
    const forB = (await c.sources(objectId, 'key.bin')).sources.find((s) => s.kind === 'device' && s.deviceId === b.deviceId);
    if (forB?.kind !== 'device' || forB.grant === undefined) throw new Error('b-probe is not listed with a grant');
    expect(await fetchBlock(forB.grant)).toBe(403);
    // A non-member's device cannot reach A's remote routes, nor A's relay.
    const admin = new MeshworkClient({ baseUrl: stack.partition.url, token: stack.partition.adminToken });
    const mallory = await new MeshworkClient({
      baseUrl: stack.partition.url,
      token: (await admin.createUser('mallory')).token,
    }).registerDeviceClient('laptop');
    const aId = (await stack.observer.listDevices()).find((d) => d.name === 'p2p-a')!.id;
    for (const path of [
      `/v1/devices/${aId}/remote/files/`,
      `/v1/devices/${aId}/remote/files/${objectId}/key.bin`,
      `/v1/devices/${aId}/relay`,
    ]) {
      const res = await fetch(`${stack.partition.url}${path}`, { headers: { authorization: `Bearer ${mallory.token}` } });
      expect([403, 404], `${path} answered ${res.status}`).toContain(res.status);
    }
    await stack.stopAgents();
  });
});
