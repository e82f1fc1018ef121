// `meshwork remote ls|get` as a person runs it, against a real partition (etcd, MinIO) and a
// real `meshwork sync` on another device of the same user, its relay on: the device's objects
// and a directory listed, a file downloaded byte-exact (by the device's name), a download
// continued from a .part file, the file to stdout; what the device's .meshworkignore leaves out
// is neither listed nor served; a user who is not a member is refused; a device whose `sync`
// stopped is said to be offline (exit 75).
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type EtcdServer } from '../../../e2e/harness/etcd.ts';
import { startMinio, type MinioServer } from '../../../e2e/harness/minio.ts';
import { waitFor } from '../../../e2e/harness/wait.ts';
import { startPartition, unthrottledEnv, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';
import { MeshworkClient } from '../index.ts';

const program = join(dirname(fileURLToPath(import.meta.url)), 'meshwork.ts');
const MiB = 1024 * 1024;
const film = randomBytes(6 * MiB + 123);
const note = Buffer.from('remote access works\n');
const ignoreRules = 'private.txt\nsecrets/\n*.key\n';
const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

let etcd: EtcdServer;
let minio: MinioServer;
let partition: RunningPartition;
let temp: string;
let laptopId: string;
let objectId: string;
let syncing: ChildProcess | undefined;
let syncLog = '';

interface Device {
  configDir: string;
  stateDir: string;
  cwd: string;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  bytes: Buffer;
}

function device(name: string): Device {
  const root = join(temp, name);
  const d = { configDir: join(root, 'config'), stateDir: join(root, 'state'), cwd: join(root, 'work') };
  mkdirSync(d.cwd, { recursive: true });
  return d;
}

function envOf(dev: Device): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: join(dev.cwd, 'home'),
    MESHWORK_CONFIG_DIR: dev.configDir,
    MESHWORK_STATE_DIR: dev.stateDir,
    MESHWORK_PEER_LISTEN: '127.0.0.1:0',
  };
}

function meshwork(dev: Device, args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [program, ...args], { cwd: dev.cwd, env: envOf(dev), stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) => {
      const bytes = Buffer.concat(out);
      resolve({ code, stdout: bytes.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), bytes });
    });
  });
}

function json<T = Record<string, unknown>>(run: Run): T {
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as T;
}

let laptop: Device;
let phone: Device;
let stranger: Device;
let phoneClient: MeshworkClient;

beforeAll(async () => {
  temp = mkdtempSync(join(tmpdir(), 'meshwork-remote-'));
  [etcd, minio] = await Promise.all([startEtcd({ name: 'etcd-remote' }), startMinio({ bucket: 'remote' })]);
  partition = await startPartition({ etcdEndpoint: etcd.endpoint, minio }, { partition: 'remote', env: unthrottledEnv });
  const admin = new MeshworkClient({ baseUrl: partition.url, token: partition.adminToken });
  const a = await admin.createUser('alice');
  const b = await admin.createUser('bob');
  writeFileSync(join(temp, 'alice.token'), a.token, { mode: 0o600 });
  writeFileSync(join(temp, 'bob.token'), b.token, { mode: 0o600 });
  [laptop, phone, stranger] = [device('laptop'), device('phone'), device('bob')];
  const login = (dev: Device, name: string, token: string): Promise<Run> =>
    meshwork(dev, ['login', '--server', partition.url, '--name', name, '--token-file', join(temp, token), '--json']);
  const [l, p, s] = await Promise.all([
    login(laptop, 'laptop', 'alice.token'),
    login(phone, 'phone', 'alice.token'),
    login(stranger, 'bob-pc', 'bob.token'),
  ]);
  laptopId = json<{ deviceId: string }>(l).deviceId;
  json(p);
  json(s);
  const phoneToken = (JSON.parse(readFileSync(join(phone.configDir, 'config.json'), 'utf8')) as { deviceToken: string }).deviceToken;
  phoneClient = new MeshworkClient({ baseUrl: partition.url, token: phoneToken, retry: { maxAttempts: 1 } });
  // A peer-to-peer-only object: its content lives on the laptop alone.
  objectId = json<{ id: string }>(await meshwork(laptop, ['objects', 'create', 'Films', '--no-cloud', '--json'])).id;
  const dir = join(laptop.cwd, 'Films');
  mkdirSync(join(dir, 'summer'), { recursive: true });
  writeFileSync(join(dir, 'summer', 'film.bin'), film);
  writeFileSync(join(dir, 'note.txt'), note);
  // Kept on the laptop alone: not synced, so not reachable from elsewhere either.
  writeFileSync(join(dir, '.meshworkignore'), ignoreRules);
  writeFileSync(join(dir, 'private.txt'), 'not for the phone');
  mkdirSync(join(dir, 'secrets'));
  writeFileSync(join(dir, 'secrets', 'a.txt'), 'not for the phone either');
  writeFileSync(join(dir, 'summer', 'wallet.key'), 'nor this');
  syncing = spawn(process.execPath, [program, 'sync', dir, '--object', objectId], { cwd: laptop.cwd, env: envOf(laptop), stdio: 'pipe' });
  syncing.stderr!.on('data', (c: Buffer) => (syncLog += c.toString('utf8')));
  syncing.stdout!.resume();
  await waitFor(
    async () => {
      const res = await phoneClient.raw('GET', `/v1/devices/${laptopId}/remote/files/`);
      if (res.status !== 200) throw new Error(`${res.status} ${res.text}`);
      return true;
    },
    {
      description: "the laptop's relay to be usable",
      timeoutMs: 30_000,
      intervalMs: 200,
      abortIf: () => (syncing?.exitCode != null ? syncLog : undefined),
    },
  );
}, 120_000);

afterAll(async () => {
  if (syncing !== undefined && syncing.exitCode === null) {
    syncing.kill('SIGTERM');
    await once(syncing, 'exit');
  }
  await partition?.stop();
  await Promise.all([etcd?.stop(), minio?.stop()]);
  if (temp) rmSync(temp, { recursive: true, force: true });
});

describe('meshwork remote', () => {
  it("lists the device's objects and directories, by the device's name or id", async () => {
    const objects = json<{ deviceId: string; objects: { objectId: string; name: string }[] }>(
      await meshwork(phone, ['remote', 'ls', 'laptop', '--json']),
    );
    expect(objects).toEqual({ deviceId: laptopId, objects: [{ objectId, name: 'Films' }] });
    const top = json<{ kind: string; entries: { name: string; kind: string; size: number }[] }>(
      await meshwork(phone, ['remote', 'ls', laptopId, objectId, '--json']),
    );
    expect(top.kind).toBe('dir');
    expect(top.entries.map(({ name, kind, size }) => ({ name, kind, size }))).toEqual([
      { name: '.meshworkignore', kind: 'file', size: ignoreRules.length },
      { name: 'note.txt', kind: 'file', size: note.length },
      { name: 'summer', kind: 'dir', size: 0 },
    ]);
    const sub = await meshwork(phone, ['remote', 'ls', 'laptop', `${objectId}:summer`]);
    expect(sub.code, sub.stderr).toBe(0);
    expect(sub.stdout).toMatch(/film\.bin/);
    const file = json<{ kind: string; size: number }>(
      await meshwork(phone, ['remote', 'ls', 'laptop', `${objectId}:summer/film.bin`, '--json']),
    );
    expect(file).toMatchObject({ kind: 'file', size: film.length });
  });

  it('downloads a file byte-exact, continues a download from its .part file, and writes to stdout', async () => {
    const got = json<{ bytes: number; resumedFrom: number; file: string }>(
      await meshwork(phone, ['remote', 'get', 'laptop', `${objectId}:summer/film.bin`, '--json']),
    );
    expect(got).toMatchObject({ bytes: film.length, resumedFrom: 0, file: join(phone.cwd, 'film.bin') });
    expect(sha(readFileSync(join(phone.cwd, 'film.bin')))).toBe(sha(film));

    // An interrupted download left the first 2 MiB (named by the file's ETag on the device).
    const listing = await phoneClient.remoteList(laptopId, objectId, 'summer/film.bin');
    if (listing.kind !== 'file' || listing.etag === undefined) throw new Error('expected a file with an ETag');
    const tag = createHash('sha256').update(listing.etag).digest('hex').slice(0, 16);
    writeFileSync(join(phone.cwd, `.again.bin.${tag}.meshwork-part`), film.subarray(0, 2 * MiB));
    const again = json<{ bytes: number; resumedFrom: number }>(
      await meshwork(phone, ['remote', 'get', 'laptop', `${objectId}:summer/film.bin`, 'again.bin', '--json']),
    );
    expect(again).toMatchObject({ bytes: film.length, resumedFrom: 2 * MiB });
    expect(sha(readFileSync(join(phone.cwd, 'again.bin')))).toBe(sha(film));
    expect(readdirSync(phone.cwd).filter((n) => n.endsWith('.meshwork-part'))).toEqual([]);

    const exists = await meshwork(phone, ['remote', 'get', 'laptop', `${objectId}:summer/film.bin`]);
    expect(exists.code).toBe(65);
    expect(exists.stderr).toMatch(/exists already/);

    const out = await meshwork(phone, ['remote', 'get', laptopId, `${objectId}:note.txt`, '-']);
    expect(out.code, out.stderr).toBe(0);
    expect(out.bytes.equals(note)).toBe(true);

    const missing = await meshwork(phone, ['remote', 'get', 'laptop', `${objectId}:nope.bin`]);
    expect(missing.code).toBe(65);
    expect(missing.stderr).toMatch(/no such file/);
    const dir = await meshwork(phone, ['remote', 'get', 'laptop', `${objectId}:summer`]);
    expect(dir.code).toBe(65);
    expect(dir.stderr).toMatch(/is a directory/);
  });

  it("neither lists nor serves what the device's .meshworkignore leaves out", async () => {
    const summer = json<{ entries: { name: string }[] }>(await meshwork(phone, ['remote', 'ls', 'laptop', `${objectId}:summer`, '--json']));
    expect(summer.entries.map((e) => e.name)).toEqual(['film.bin']);
    for (const path of ['private.txt', 'secrets/a.txt', 'summer/wallet.key']) {
      const get = await meshwork(phone, ['remote', 'get', 'laptop', `${objectId}:${path}`, '-']);
      expect(get.code, path).toBe(65);
      expect(get.stderr).toMatch(/no such file/);
      expect(get.bytes.length).toBe(0);
    }
    const secrets = await meshwork(phone, ['remote', 'ls', 'laptop', `${objectId}:secrets`]);
    expect(secrets.code).toBe(65);
    expect(secrets.stdout).not.toMatch(/a\.txt/);
  });

  it('refuses a user who is not a member of the object', async () => {
    const ls = await meshwork(stranger, ['remote', 'ls', laptopId, '--json']);
    expect(ls.code).toBe(65);
    expect(JSON.parse(ls.stderr)).toMatchObject({ error: { code: 'bad_input' } });
    expect(ls.stderr).toMatch(/not found/);
    const get = await meshwork(stranger, ['remote', 'get', laptopId, `${objectId}:note.txt`]);
    expect(get.code).toBe(65);
    expect(get.stderr).toMatch(/not found/);
    expect(readdirSync(stranger.cwd)).not.toContain('note.txt');
    // A name is only ever one of the caller's own devices: bob has no device called laptop.
    const byName = await meshwork(stranger, ['remote', 'ls', 'laptop']);
    expect(byName.code).toBe(65);
  });

  it('says a device whose sync stopped is offline', async () => {
    syncing!.kill('SIGTERM');
    await once(syncing!, 'exit');
    await waitFor(
      async () => {
        const res = await phoneClient.raw('GET', `/v1/devices/${laptopId}/remote/files/`);
        return res.status === 503;
      },
      { description: 'the service to see the relay gone', timeoutMs: 15_000, intervalMs: 100 },
    );
    const ls = await meshwork(phone, ['remote', 'ls', 'laptop']);
    expect(ls.code).toBe(75);
    expect(ls.stderr).toMatch(/device laptop \(.+\) is offline: it has no connection to the server/);
    const get = await meshwork(phone, ['remote', 'get', 'laptop', `${objectId}:note.txt`, '--json']);
    expect(get.code).toBe(75);
    expect(JSON.parse(get.stderr)).toMatchObject({ error: { code: 'temporary' } });
  });
});
