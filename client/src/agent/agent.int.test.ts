// The sync engine against a real partition, etcd and MinIO, with in-process agents on temp
// folders: two-way sync of creates, edits, deletes, renames and empty directories; conflicts
// keep both versions; a modification beats a delete; an offline device with an old copy does
// not bring a delete back; a rename sends no block; a reader's edit is reported, not uploaded;
// names the server refuses, symlinks and over-large files are problems; an agent cut short
// mid-upload converges on reopening; revocation and removal stop `run` for good.
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  renameSync,
  unlinkSync,
  watch,
} from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { DatabaseSync } from 'node:sqlite';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type EtcdServer } from '../../../e2e/harness/etcd.ts';
import { startMinio, type MinioServer } from '../../../e2e/harness/minio.ts';
import { waitFor } from '../../../e2e/harness/wait.ts';
import { startPartition, unthrottledEnv, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';
import { MeshworkClient } from '../client.ts';
import { AgentStopped, openAgent, readStatus, type AgentEvent, type SyncAgentShape } from './index.ts';

const MiB = 1024 * 1024;
const here = fileURLToPath(new URL('.', import.meta.url));

let etcd: EtcdServer;
let minio: MinioServer;
let partition: RunningPartition;
let root: string;
let alice: MeshworkClient;
let bob: MeshworkClient;
let bobId: string;
let objectId: string;
const devices = new Map<string, MeshworkClient>();
const tokens = new Map<string, string>();
const open: SyncAgentShape[] = [];

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'meshwork-agent-'));
  [etcd, minio] = await Promise.all([startEtcd({ name: 'etcd-agent' }), startMinio({ bucket: 'agent' })]);
  partition = await startPartition(
    { etcdEndpoint: etcd.endpoint, minio },
    // A small maximum entry size, so that "too large" is a 9-block file of zeros (one distinct block).
    { partition: 'agent', env: { ...unthrottledEnv, MESHWORK_THROTTLE_MAX_ENTRY_BYTES: '32Mi' } },
  );
  const admin = new MeshworkClient({ baseUrl: partition.url, token: partition.adminToken });
  const a = await admin.createUser('alice');
  alice = admin.as(a.token);
  const b = await admin.createUser('bob');
  bob = admin.as(b.token);
  bobId = b.id;
  for (const name of ['laptop', 'phone', 'tablet']) {
    const token = (await alice.registerDevice(name)).token;
    tokens.set(name, token);
    devices.set(name, alice.as(token));
  }
  devices.set('bob-pc', bob.as((await bob.registerDevice('bob-pc')).token));
  objectId = (await devices.get('laptop')!.createObject({ name: 'Documents' })).id;
  await alice.setMember(objectId, bobId, 'reader');
});

afterAll(async () => {
  await Promise.allSettled(open.map((a) => a.close()));
  await partition?.stop();
  await Promise.all([etcd?.stop(), minio?.stop()]);
  if (root) rmSync(root, { recursive: true, force: true });
});

interface Device {
  name: string;
  dir: string;
  statePath: string;
  agent: SyncAgentShape;
  events: AgentEvent[];
  /** Called with each event as it happens (synchronously, inside the agent). */
  hook?: (event: AgentEvent) => void;
}

async function device(name: string, client = devices.get(name)!): Promise<Device> {
  const d: Omit<Device, 'agent'> = { name, dir: join(root, name, 'folder'), statePath: join(root, name, 'state', 'agent.db'), events: [] };
  const agent = await openAgent({
    client,
    dir: d.dir,
    objectId,
    statePath: d.statePath,
    deviceName: name,
    scanIntervalMs: 2000,
    onEvent: (e) => {
      d.events.push(e);
      d.hook?.(e);
    },
  });
  open.push(agent);
  return Object.assign(d, { agent });
}

async function reopen(d: Device): Promise<Device> {
  await d.agent.close();
  return device(d.name);
}

/** The folder as path → sha256 (directories as 'dir'), without the agent's own files. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const s = statSync(join(dir, path));
      if (s.isDirectory()) {
        out[path] = 'dir';
        walk(path);
      } else
        out[path] = createHash('sha256')
          .update(readFileSync(join(dir, path)))
          .digest('hex');
    }
  };
  walk('');
  return out;
}

const sha = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** Syncs the devices in turn until a round changes nothing anywhere (bounded). */
async function settle(...ds: Device[]): Promise<void> {
  for (let round = 0; round < 6; round++) {
    let moved = 0;
    for (const d of ds) {
      const r = await d.agent.syncOnce();
      moved += r.uploaded + r.downloaded + r.deletedLocal + r.deletedRemote + r.conflicts;
    }
    if (moved === 0) return;
  }
  throw new Error('the devices did not settle within 6 rounds');
}

function write(d: Device, path: string, data: string | Uint8Array): void {
  mkdirSync(join(d.dir, path, '..'), { recursive: true });
  writeFileSync(join(d.dir, path), data);
}

let laptop: Device;
let phone: Device;

describe('two devices of one user', () => {
  beforeAll(async () => {
    laptop = await device('laptop');
    phone = await device('phone');
  });

  it('syncs new files, a multi-block file, nested and empty directories', async () => {
    write(laptop, 'notes.txt', 'hello');
    write(laptop, 'photos/big.bin', randomBytes(9 * MiB));
    mkdirSync(join(laptop.dir, 'empty/inner'), { recursive: true });
    const up = await laptop.agent.syncOnce();
    expect(up.uploaded).toBe(5); // notes.txt, photos, photos/big.bin, empty, empty/inner
    expect(up.uploadedBlocks).toBe(4); // 1 + 3
    const down = await phone.agent.syncOnce();
    expect(down.downloaded).toBe(5);
    expect(tree(phone.dir)).toEqual(tree(laptop.dir));
    expect(tree(phone.dir)['empty/inner']).toBe('dir');
    expect(laptop.agent.status()).toMatchObject({ objectId, pending: [], problems: [], stopped: null });
  });

  it("syncs an edit and a delete back the other way, keeping a replaced file's executable bit", async () => {
    write(phone, 'run.sh', 'echo one\n');
    await settle(phone, laptop);
    chmodSync(join(laptop.dir, 'run.sh'), 0o755);
    write(phone, 'notes.txt', 'hello again');
    write(phone, 'run.sh', '#!/bin/sh\necho hi\n');
    rmSync(join(phone.dir, 'empty/inner'), { recursive: true });
    await settle(phone, laptop);
    expect(tree(laptop.dir)).toEqual(tree(phone.dir));
    expect(readFileSync(join(laptop.dir, 'notes.txt'), 'utf8')).toBe('hello again');
    expect(readFileSync(join(laptop.dir, 'run.sh'), 'utf8')).toBe('#!/bin/sh\necho hi\n');
    expect(statSync(join(laptop.dir, 'run.sh')).mode & 0o777).toBe(0o755);
    expect(existsSync(join(laptop.dir, 'empty/inner'))).toBe(false);
    const remote = await devices
      .get('laptop')!
      .getEntry(objectId, 'empty/inner')
      .catch((e: unknown) => e);
    expect(remote).toMatchObject({ status: 404 });
  });

  it('commits a renamed file without sending a block', async () => {
    const before = tree(laptop.dir)['photos/big.bin'];
    renameSync(join(laptop.dir, 'photos/big.bin'), join(laptop.dir, 'photos/renamed.bin'));
    const r = await laptop.agent.syncOnce();
    expect(r).toMatchObject({ uploaded: 1, deletedRemote: 1, uploadedBlocks: 0 });
    await phone.agent.syncOnce();
    expect(tree(phone.dir)['photos/renamed.bin']).toBe(before);
    expect(tree(phone.dir)['photos/big.bin']).toBeUndefined();
  });

  it('commits a renamed directory without sending a block', async () => {
    const before = tree(laptop.dir);
    renameSync(join(laptop.dir, 'photos'), join(laptop.dir, 'pictures'));
    const r = await laptop.agent.syncOnce();
    expect(r).toMatchObject({ uploaded: 2, deletedRemote: 2, uploadedBlocks: 0 });
    await phone.agent.syncOnce();
    expect(tree(phone.dir)['pictures/renamed.bin']).toBe(before['photos/renamed.bin']);
    expect(existsSync(join(phone.dir, 'photos'))).toBe(false);
    expect(tree(phone.dir)).toEqual(tree(laptop.dir));
  });

  it('keeps both versions of a file edited on both devices', async () => {
    write(laptop, 'plan.md', 'v1');
    await settle(laptop, phone);
    write(laptop, 'plan.md', 'laptop edit');
    write(phone, 'plan.md', 'phone edit, longer');
    await laptop.agent.syncOnce();
    const r = await phone.agent.syncOnce();
    expect(r.conflicts).toBe(1);
    await settle(laptop, phone);
    const files = tree(phone.dir);
    expect(files).toEqual(tree(laptop.dir));
    expect(files['plan.md']).toBe(sha('laptop edit'));
    const copies = Object.keys(files).filter((p) => /^plan \(conflict from phone \d{4}-\d\d-\d\d \d{6}\)\.md$/.test(p));
    expect(copies).toHaveLength(1);
    expect(files[copies[0]!]).toBe(sha('phone edit, longer'));
    expect(phone.agent.status().conflicts[0]).toMatchObject({ path: 'plan.md', copy: copies[0] });
  });

  it('never overwrites a local edit made after the scan: it becomes a conflict', async () => {
    write(laptop, 'race.txt', 'base');
    await settle(laptop, phone);
    write(laptop, 'race.txt', 'remote edit');
    await laptop.agent.syncOnce();
    // The phone's edit lands just after its scan saw the old file, before the download replaces it.
    phone.hook = (e) => {
      if (e.type === 'scan') {
        phone.hook = undefined;
        write(phone, 'race.txt', 'local edit made during the pass');
      }
    };
    const r = await phone.agent.syncOnce();
    expect(r.conflicts).toBe(1);
    await settle(laptop, phone);
    const files = tree(phone.dir);
    expect(files).toEqual(tree(laptop.dir));
    expect(files['race.txt']).toBe(sha('remote edit'));
    expect(
      Object.entries(files).filter(([p, h]) => p.startsWith('race (conflict from phone') && h === sha('local edit made during the pass')),
    ).toHaveLength(1);
  });

  it('lets a modification win over a delete, whichever syncs first', async () => {
    write(laptop, 'a.txt', 'a');
    write(laptop, 'b.txt', 'b');
    await settle(laptop, phone);
    // a: deleted on the laptop first, modified on the phone after.
    rmSync(join(laptop.dir, 'a.txt'));
    write(phone, 'a.txt', 'a modified');
    // b: modified on the phone first, deleted on the laptop after.
    write(phone, 'b.txt', 'b modified');
    rmSync(join(laptop.dir, 'b.txt'));
    await laptop.agent.syncOnce();
    await settle(phone, laptop);
    expect(readFileSync(join(laptop.dir, 'a.txt'), 'utf8')).toBe('a modified');
    expect(readFileSync(join(laptop.dir, 'b.txt'), 'utf8')).toBe('b modified');
    expect(tree(laptop.dir)).toEqual(tree(phone.dir));
  });

  it('keeps a file deleted the moment its download lands deleted, and sends the delete', async () => {
    write(laptop, 'vanishing.txt', 'here and gone');
    await settle(laptop);
    // A person (or a program) removes the file as soon as it appears on the phone, while the
    // agent is still making the rename durable and recording it.
    const watcher = watch(phone.dir, (_event, name) => {
      if (name === 'vanishing.txt' && existsSync(join(phone.dir, 'vanishing.txt'))) unlinkSync(join(phone.dir, 'vanishing.txt'));
    });
    try {
      const down = await phone.agent.syncOnce();
      expect(down.downloaded).toBe(1);
    } finally {
      watcher.close();
    }
    expect(existsSync(join(phone.dir, 'vanishing.txt'))).toBe(false);
    await settle(phone, laptop);
    // The delete went out: the file is gone on both devices and on the server, not downloaded again.
    expect(existsSync(join(phone.dir, 'vanishing.txt'))).toBe(false);
    expect(existsSync(join(laptop.dir, 'vanishing.txt'))).toBe(false);
    expect(tree(laptop.dir)).toEqual(tree(phone.dir));
  });

  it('does not bring back a delete from a device that was offline with an old copy', async () => {
    let tablet = await device('tablet');
    write(laptop, 'old.txt', 'stale');
    await settle(laptop, tablet);
    expect(existsSync(join(tablet.dir, 'old.txt'))).toBe(true);
    await tablet.agent.close(); // offline
    rmSync(join(laptop.dir, 'old.txt'));
    await laptop.agent.syncOnce();
    tablet = await device('tablet');
    const r = await tablet.agent.syncOnce();
    expect(r).toMatchObject({ deletedLocal: 1, uploaded: 0 });
    expect(existsSync(join(tablet.dir, 'old.txt'))).toBe(false);
    const entry = await devices
      .get('laptop')!
      .getEntry(objectId, 'old.txt')
      .catch((e: unknown) => e);
    expect(entry).toMatchObject({ status: 404 });
    await settle(laptop, phone, tablet);
    expect(tree(tablet.dir)).toEqual(tree(laptop.dir));
    await tablet.agent.close();
  });

  it('deletes a directory deleted elsewhere even when the OS dropped a .DS_Store in it', async () => {
    write(laptop, 'trip/day1.txt', 'sun');
    await settle(laptop, phone);
    write(phone, 'trip/.DS_Store', 'finder state');
    rmSync(join(laptop.dir, 'trip'), { recursive: true });
    await settle(laptop, phone);
    expect(existsSync(join(phone.dir, 'trip'))).toBe(false);
    expect(existsSync(join(laptop.dir, 'trip'))).toBe(false);
  });

  it('reports names the server refuses, symlinks and over-large files, and syncs the rest', async () => {
    write(laptop, 'bad\u0001name.txt', 'x');
    symlinkSync('/etc/hostname', join(laptop.dir, 'link'));
    write(laptop, 'zeros.bin', new Uint8Array(33 * MiB));
    write(laptop, 'fine.txt', 'fine');
    write(laptop, 'editor.swp', 'ignored');
    write(laptop, '.meshworkignore', 'build/\n');
    write(laptop, 'build/out.o', 'ignored too');
    await laptop.agent.syncOnce();
    const problems = Object.fromEntries(laptop.agent.status().problems.map((p) => [p.path, p.code]));
    expect(problems).toEqual({ 'bad\u0001name.txt': 'invalid_name', link: 'symlink', 'zeros.bin': 'too_large' });
    // Not retried while the file is unchanged: a second pass sends nothing.
    const again = await laptop.agent.syncOnce();
    expect(again).toMatchObject({ uploaded: 0, uploadedBlocks: 0 });
    await phone.agent.syncOnce();
    const files = tree(phone.dir);
    expect(files['fine.txt']).toBe(sha('fine'));
    expect(files['.meshworkignore']).toBeDefined();
    for (const p of ['bad\u0001name.txt', 'link', 'zeros.bin', 'editor.swp', 'build/out.o', 'build']) expect(files[p]).toBeUndefined();
    expect(
      readStatus(laptop.statePath)
        .problems.map((p) => p.code)
        .sort(),
    ).toEqual(['invalid_name', 'symlink', 'too_large']);
    rmSync(join(laptop.dir, 'bad\u0001name.txt'));
    rmSync(join(laptop.dir, 'link'));
    rmSync(join(laptop.dir, 'zeros.bin'));
    rmSync(join(laptop.dir, 'editor.swp'));
    rmSync(join(laptop.dir, 'build'), { recursive: true });
    await laptop.agent.syncOnce();
    expect(laptop.agent.status().problems).toEqual([]);
  });

  it('converges after an agent is cut short in the middle of an upload', async () => {
    const data = randomBytes(14 * MiB);
    write(laptop, 'video.mp4', data);
    const cut = new AbortController();
    const agent = laptop.agent as SyncAgentShape & { syncOnce(signal?: AbortSignal): ReturnType<SyncAgentShape['syncOnce']> };
    // Cut at the first block sent, from inside the agent, so the commit cannot have happened.
    laptop.hook = (e) => {
      if (e.type === 'upload' && e.path === 'video.mp4') cut.abort();
    };
    const cutShort = await agent.syncOnce(cut.signal).then(
      () => false,
      () => true,
    );
    expect(cutShort).toBe(true);
    laptop = await reopen(laptop);
    const r = await laptop.agent.syncOnce();
    expect(r.uploaded).toBeGreaterThanOrEqual(1);
    // The blocks the store got before the cut are not sent again.
    expect(r.uploadedBlocks).toBeLessThan(4);
    await phone.agent.syncOnce();
    expect(tree(phone.dir)['video.mp4']).toBe(sha(data));
    expect(tree(phone.dir)).toEqual(tree(laptop.dir));
  });

  it('relists when the stored cursor is refused (410 cursor_expired) and carries on', async () => {
    await laptop.agent.close();
    const db = new DatabaseSync(laptop.statePath);
    db.prepare("UPDATE meta SET value = '999999999999' WHERE key = 'cursor'").run();
    db.close();
    laptop = await device('laptop');
    write(phone, 'after-relist.txt', 'relisted');
    await phone.agent.syncOnce();
    const r = await laptop.agent.syncOnce();
    expect(r.downloaded).toBe(1);
    expect(r.cursor).not.toBe('999999999999');
    expect(tree(laptop.dir)).toEqual(tree(phone.dir));
  });

  it('loses nothing when the agent process is killed (SIGKILL) in the middle of an upload', async () => {
    const data = randomBytes(24 * MiB);
    write(laptop, 'killed.bin', data);
    await laptop.agent.close();
    // The agent in a process of its own, killed at its first block upload.
    const script = join(root, 'agent-child.ts');
    writeFileSync(
      script,
      [
        `import { MeshworkClient } from ${JSON.stringify(join(here, '../client.ts'))};`,
        `import { openAgent } from ${JSON.stringify(join(here, 'index.ts'))};`,
        `const client = new MeshworkClient({ baseUrl: process.env.URL, token: process.env.TOKEN });`,
        `const agent = await openAgent({ client, dir: process.env.DIR, objectId: process.env.OBJECT, statePath: process.env.STATE,`,
        // Stdout to a pipe is written synchronously; the process then stands still until it is killed, mid-upload.
        `  deviceName: 'laptop', onEvent: (e) => { if (e.type === 'upload') { process.stdout.write('upload\\n'); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000); } } });`,
        `await agent.syncOnce();`,
        `process.stdout.write('done\\n');`,
      ].join('\n'),
    );
    const child = spawn(process.execPath, [script], {
      env: {
        PATH: process.env.PATH,
        URL: partition.url,
        TOKEN: tokens.get('laptop'),
        DIR: laptop.dir,
        OBJECT: objectId,
        STATE: laptop.statePath,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('upload')) child.kill('SIGKILL');
    });
    expect(await exited).toBe('SIGKILL');
    expect(out).not.toContain('done');
    laptop = await device('laptop');
    const r = await laptop.agent.syncOnce();
    expect(r.uploaded).toBeGreaterThanOrEqual(1);
    // 6 blocks in all; at least the one reported before the kill is not sent again.
    expect(r.uploadedBlocks).toBeLessThan(6);
    await phone.agent.syncOnce();
    expect(tree(phone.dir)['killed.bin']).toBe(sha(data));
    expect(tree(phone.dir)).toEqual(tree(laptop.dir));
  });

  it('syncs continuously: a file written on one device appears on the other', async () => {
    const stop = new AbortController();
    const runs = [laptop.agent.run(stop.signal), phone.agent.run(stop.signal)];
    try {
      write(laptop, 'live.txt', 'pushed by run');
      await waitFor(
        () => existsSync(join(phone.dir, 'live.txt')) && readFileSync(join(phone.dir, 'live.txt'), 'utf8') === 'pushed by run',
        {
          description: 'live.txt to reach the phone',
          timeoutMs: 60_000,
        },
      );
      rmSync(join(phone.dir, 'live.txt'));
      await waitFor(() => !existsSync(join(laptop.dir, 'live.txt')), { description: 'the delete to reach the laptop', timeoutMs: 60_000 });
    } finally {
      stop.abort();
      await Promise.all(runs);
    }
  });
  it('asks for notifications again once per pass, not once per commit', async () => {
    // The phone counts its notification polls while another device commits a burst of files.
    let polls = 0;
    const counting: typeof fetch = async (input, init) => {
      if (new URL(input instanceof Request ? input.url : String(input)).pathname === '/v1/notifications') polls++;
      return fetch(input, init);
    };
    await phone.agent.close();
    phone = await device('phone', new MeshworkClient({ baseUrl: partition.url, token: tokens.get('phone')!, fetch: counting }));
    const tablet = devices.get('tablet')!;
    const stop = new AbortController();
    const run = phone.agent.run(stop.signal);
    try {
      await waitFor(() => phone.events.some((e) => e.type === 'idle'), { description: 'the phone to sync', timeoutMs: 60_000 });
      const burst = 40;
      const before = polls;
      const passesBefore = phone.events.filter((e) => e.type === 'idle').length;
      for (let i = 0; i < burst; i++) {
        await tablet.upload(objectId, `burst/${i}.txt`, new TextEncoder().encode(`commit ${i}`), { ifNoneMatch: '*' });
      }
      await waitFor(
        () => existsSync(join(phone.dir, 'burst', `${burst - 1}.txt`)) && readdirSync(join(phone.dir, 'burst')).length === burst,
        {
          description: 'the burst to reach the phone',
          timeoutMs: 60_000,
        },
      );
      // Every notification set off a pass, and the next poll waited for that pass to end.
      const passes = phone.events.filter((e) => e.type === 'idle' || e.type === 'retry').length - passesBefore;
      expect(polls - before).toBeLessThanOrEqual(passes + 2);
    } finally {
      stop.abort();
      await run;
    }
    await phone.agent.close();
    phone = await device('phone');
  });

  it('honours Retry-After when throttled and converges afterwards', async () => {
    // The phone's requests are answered 429 (Retry-After: 1) for a while, longer than the client's own retries last.
    let throttledUntil = 0;
    let refused = 0;
    const throttling: typeof fetch = async (input, init) => {
      if (Date.now() < throttledUntil) {
        refused++;
        const body = { error: { code: 'rate_limited', reason: 'device_rate', retryAfterSeconds: 1, message: 'slow down' } };
        return new Response(JSON.stringify(body), { status: 429, headers: { 'content-type': 'application/json', 'retry-after': '1' } });
      }
      return fetch(input, init);
    };
    const client = new MeshworkClient({ baseUrl: partition.url, token: tokens.get('phone')!, fetch: throttling });
    await phone.agent.close();
    phone = await device('phone', client);
    const stop = new AbortController();
    const runs = [laptop.agent.run(stop.signal), phone.agent.run(stop.signal)];
    try {
      await waitFor(() => phone.events.some((e) => e.type === 'idle'), { description: 'the phone to sync', timeoutMs: 60_000 });
      throttledUntil = Date.now() + 6000;
      write(phone, 'throttled.txt', 'sent after the throttle');
      await waitFor(() => existsSync(join(laptop.dir, 'throttled.txt')), {
        description: 'throttled.txt to reach the laptop',
        timeoutMs: 90_000,
      });
      expect(refused).toBeGreaterThan(3);
      const retries = phone.events.filter((e): e is Extract<AgentEvent, { type: 'retry' }> => e.type === 'retry');
      expect(retries.length).toBeGreaterThan(0);
      expect(Math.min(...retries.map((r) => r.delayMs))).toBeGreaterThanOrEqual(1000);
    } finally {
      stop.abort();
      await Promise.all(runs);
    }
    await phone.agent.close();
    phone = await device('phone');
  });

  it('waits out a partition restart and resumes', async () => {
    const stop = new AbortController();
    const runs = [laptop.agent.run(stop.signal), phone.agent.run(stop.signal)];
    try {
      await partition.stop();
      write(laptop, 'offline.txt', 'written while the server was down');
      await waitFor(() => laptop.events.some((e) => e.type === 'retry'), { description: 'the laptop to back off', timeoutMs: 60_000 });
      await waitFor(() => readStatus(laptop.statePath).pending.some((p) => p.path === 'offline.txt' && p.direction === 'up'), {
        description: 'offline.txt to be pending',
        timeoutMs: 60_000,
      });
      partition = await startPartition(
        { etcdEndpoint: etcd.endpoint, minio },
        {
          partition: 'agent',
          port: partition.port,
          adminToken: partition.adminToken,
          env: { ...unthrottledEnv, MESHWORK_THROTTLE_MAX_ENTRY_BYTES: '32Mi' },
        },
      );
      await waitFor(() => existsSync(join(phone.dir, 'offline.txt')), { description: 'offline.txt to reach the phone', timeoutMs: 90_000 });
      expect(readFileSync(join(phone.dir, 'offline.txt'), 'utf8')).toBe('written while the server was down');
    } finally {
      stop.abort();
      await Promise.all(runs);
    }
  });
});

describe('a reader, revocation and removal', () => {
  it("reports a reader's local edit as read_only and uploads nothing", async () => {
    const reader = await device('bob-pc');
    await reader.agent.syncOnce();
    expect(readFileSync(join(reader.dir, 'notes.txt'), 'utf8')).toBe('hello again');
    write(reader, 'notes.txt', 'bob was here');
    write(reader, 'bob.txt', 'new');
    const r = await reader.agent.syncOnce();
    expect(r.uploaded).toBe(0);
    const problems = Object.fromEntries(reader.agent.status().problems.map((p) => [p.path, p.code]));
    expect(problems).toEqual({ 'notes.txt': 'read_only', 'bob.txt': 'read_only' });
    const entry = await devices.get('laptop')!.getEntry(objectId, 'notes.txt');
    expect(entry.notModified ? undefined : entry.entry.size).toBe('hello again'.length);
  });

  it('stops with object_gone when the user is removed from the object', async () => {
    const reader = await device('bob-pc');
    const stop = new AbortController();
    // Its outcome is taken at once: the stop can come before this test next awaits it.
    const outcome = reader.agent.run(stop.signal).then(
      () => undefined,
      (e: unknown) => e,
    );
    await waitFor(() => reader.events.some((e) => e.type === 'idle'), { description: 'the reader to sync', timeoutMs: 60_000 });
    await alice.removeMember(objectId, bobId);
    const err = await outcome;
    stop.abort();
    expect(err).toBeInstanceOf(AgentStopped);
    expect((err as AgentStopped).code).toBe('object_gone');
    expect(readStatus(reader.statePath).stopped).toMatchObject({ code: 'object_gone' });
  });

  it('stops with unauthorized when the device is revoked', async () => {
    const client = alice.as((await alice.registerDevice('old-laptop')).token);
    devices.set('old-laptop', client);
    const old = await device('old-laptop');
    const stop = new AbortController();
    // Its outcome is taken at once: the stop can come before this test next awaits it.
    const outcome = old.agent.run(stop.signal).then(
      () => undefined,
      (e: unknown) => e,
    );
    await waitFor(() => old.events.some((e) => e.type === 'idle'), { description: 'the device to sync', timeoutMs: 60_000 });
    const me = await client.me();
    await alice.deleteDevice(me.deviceId!);
    write(old, 'after-revocation.txt', 'x');
    const err = await outcome;
    stop.abort();
    expect(err).toBeInstanceOf(AgentStopped);
    expect((err as AgentStopped).code).toBe('unauthorized');
    expect(readStatus(old.statePath).stopped).toMatchObject({ code: 'unauthorized' });
  });
});
