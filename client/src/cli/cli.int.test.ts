// The `meshwork` command as a person runs it: the real program as child processes (each with
// its own MESHWORK_CONFIG_DIR and MESHWORK_STATE_DIR, as two devices on one machine would be)
// against a real partition process with its own etcd and MinIO. Login and the 0600 file
// without the account token, whoami, objects, a byte-exact put/get round trip of a few MiB,
// the exit codes of missing paths and usage errors, revocation seen by the revoked device, and
// logout online and offline, the token prompt on a terminal. Until the sync engine lands,
// `sync` and `status` run in-process over a stand-in with the engine's surface (the last
// describe); end-to-end runs of them against a real folder wait for the engine.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type EtcdServer } from '../../../e2e/harness/etcd.ts';
import { startMinio, type MinioServer } from '../../../e2e/harness/minio.ts';
import { startPartition, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';
import { Writable } from 'node:stream';
import { AgentStopped, type AgentOptions, type AgentStatus, type SyncAgentShape, type SyncReport } from '../agent/index.ts';
import { MeshworkClient } from '../index.ts';
import { commands } from './args.ts';
import { stateFileName } from './config.ts';
import { main, type CliIo, type SyncEngine } from './main.ts';

const program = join(dirname(fileURLToPath(import.meta.url)), 'meshwork.ts');
const MiB = 1024 * 1024;

let etcd: EtcdServer;
let minio: MinioServer;
let partition: RunningPartition;
let temp: string;
let alice: MeshworkClient;
let aliceId: string;
let aliceTokenFile: string;
let bobId: string;
let bob: MeshworkClient;

/** A device on this machine: its own configuration and state directories. */
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

/** Runs `meshwork` (or another command line, with the device's environment) as a child process and collects what it printed. */
function meshwork(
  dev: Device,
  args: string[],
  options: { env?: Record<string, string>; input?: string | Buffer } = {},
  commandLine: string[] = [process.execPath, program, ...args],
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(commandLine[0]!, commandLine.slice(1), {
      cwd: dev.cwd,
      env: {
        PATH: process.env.PATH,
        HOME: join(dev.cwd, 'home'),
        MESHWORK_CONFIG_DIR: dev.configDir,
        MESHWORK_STATE_DIR: dev.stateDir,
        MESHWORK_PEER_LISTEN: '127.0.0.1:0',
        ...options.env,
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) => {
      const bytes = Buffer.concat(out);
      resolve({ code, stdout: bytes.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), bytes });
    });
    child.stdin.end(options.input ?? '');
  });
}

function json<T = Record<string, unknown>>(run: Run): T {
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as T;
}

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

beforeAll(async () => {
  temp = mkdtempSync(join(tmpdir(), 'meshwork-cli-'));
  [etcd, minio] = await Promise.all([startEtcd({ name: 'etcd-cli' }), startMinio({ bucket: 'cli' })]);
  partition = await startPartition({ etcdEndpoint: etcd.endpoint, minio }, { partition: 'cli' });
  const admin = new MeshworkClient({ baseUrl: partition.url, token: partition.adminToken });
  const a = await admin.createUser('alice');
  aliceId = a.id;
  alice = admin.as(a.token);
  aliceTokenFile = join(temp, 'alice.token');
  writeFileSync(aliceTokenFile, `${a.token}\n`, { mode: 0o600 });
  const b = await admin.createUser('bob');
  bobId = b.id;
  bob = admin.as(b.token);
});

afterAll(async () => {
  await partition?.stop();
  await Promise.all([etcd?.stop(), minio?.stop()]);
  if (temp) rmSync(temp, { recursive: true, force: true });
});

describe('meshwork', () => {
  let laptop: Device;
  let phone: Device;
  let laptopId: string;
  let phoneId: string;
  let objectId: string;

  it('logs in with --token-file, storing the device token alone in a 0600 file', async () => {
    laptop = device('laptop');
    const out = json<{ deviceId: string; userId: string; deviceName: string; server: string; configFile: string }>(
      await meshwork(laptop, ['login', '--server', partition.url, '--name', 'laptop', '--token-file', aliceTokenFile, '--json']),
    );
    expect(out).toMatchObject({ userId: aliceId, deviceName: 'laptop', server: partition.url });
    expect(out.configFile).toBe(join(laptop.configDir, 'config.json'));
    laptopId = out.deviceId;
    expect(statSync(out.configFile).mode & 0o777).toBe(0o600);
    expect(statSync(laptop.configDir).mode & 0o777).toBe(0o700);
    const text = readFileSync(out.configFile, 'utf8');
    expect(text).not.toContain(readFileSync(aliceTokenFile, 'utf8').trim());
    expect(text).not.toMatch(/mwu\./);
    expect(JSON.parse(text)).toMatchObject({
      deviceId: laptopId,
      userId: aliceId,
      deviceToken: expect.stringMatching(/^mwd\./) as unknown,
    });
  });

  it('logs in with the token on stdin, and with MESHWORK_ACCOUNT_TOKEN', async () => {
    phone = device('phone');
    const token = readFileSync(aliceTokenFile, 'utf8');
    const out = json<{ deviceId: string }>(
      await meshwork(phone, ['login', '--server', partition.url, '--name', 'phone', '--json'], { input: token }),
    );
    phoneId = out.deviceId;
    const tablet = device('tablet');
    const viaEnv = await meshwork(tablet, ['login', '--server', partition.url, '--name', 'tablet'], {
      env: { MESHWORK_ACCOUNT_TOKEN: token.trim() },
    });
    expect(viaEnv.code, viaEnv.stderr).toBe(0);
    expect(viaEnv.stdout).toMatch(/^logged in as device tablet/);
    expect(readFileSync(join(tablet.configDir, 'config.json'), 'utf8')).not.toContain(token.trim());
  });

  // util-linux `script` gives the program a terminal; `-E never` keeps script itself from echoing.
  it('prompts for the token on a terminal without echoing it', async () => {
    const pty = device('pty');
    const token = readFileSync(aliceTokenFile, 'utf8').trim();
    const command = `'${process.execPath}' '${program}' login --server ${partition.url} --name pty`;
    const child = spawn('/usr/bin/script', ['-qeE', 'never', '-c', command, '/dev/null'], {
      cwd: pty.cwd,
      env: { PATH: process.env.PATH, HOME: pty.cwd, MESHWORK_CONFIG_DIR: pty.configDir, MESHWORK_STATE_DIR: pty.stateDir },
    });
    let seen = '';
    child.stdout.on('data', (chunk: Buffer) => {
      const before = seen;
      seen += chunk.toString();
      if (!before.includes('Account token: ') && seen.includes('Account token: ')) child.stdin.write(`${token}\r`);
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, seen).toBe(0);
    expect(seen).toMatch(/Account token: /);
    expect(seen).toMatch(/logged in as device pty/);
    expect(seen).not.toContain(token);
    expect(existsSync(join(pty.configDir, 'config.json'))).toBe(true);
  });

  it('refuses a wrong account token (77), an empty one (64) and a second login over a working device (1)', async () => {
    const other = device('other');
    const wrong = await meshwork(other, ['login', '--server', partition.url], { input: 'mwu.nobody' });
    expect(wrong.code).toBe(77);
    expect(wrong.stderr).toMatch(/refused the account token/);
    expect(existsSync(join(other.configDir, 'config.json'))).toBe(false);
    const empty = await meshwork(other, ['login', '--server', partition.url], { input: '' });
    expect(empty.code).toBe(64);
    const again = await meshwork(laptop, ['login', '--server', partition.url, '--token-file', aliceTokenFile]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already logged in as laptop/);
  });

  it('answers whoami', async () => {
    const me = json(await meshwork(laptop, ['whoami', '--json']));
    expect(me).toMatchObject({ id: aliceId, name: 'alice', deviceId: laptopId, deviceName: 'laptop', server: partition.url });
    const human = await meshwork(laptop, ['whoami']);
    expect(human.stdout).toMatch(/user {4}alice/);
  });

  it('creates, lists, shares, unshares and removes objects', async () => {
    const created = json<{ id: string; name: string; role: string }>(await meshwork(laptop, ['objects', 'create', 'Documents', '--json']));
    expect(created).toMatchObject({ name: 'Documents', role: 'owner' });
    objectId = created.id;
    const scratch = json<{ id: string }>(await meshwork(laptop, ['objects', 'create', 'Scratch', '--json'])).id;
    const listed = json<{ objects: { id: string }[] }>(await meshwork(phone, ['objects', 'ls', '--json']));
    expect(listed.objects.map((o) => o.id).sort()).toEqual([objectId, scratch].sort());
    expect((await meshwork(laptop, ['objects', 'ls'])).stdout).toMatch(/Documents\s+owner/);

    const shared = json(await meshwork(laptop, ['objects', 'share', scratch, bobId, '--role', 'reader', '--json']));
    expect(shared).toEqual({ objectId: scratch, userId: bobId, role: 'reader' });
    expect((await bob.getObject(scratch)).role).toBe('reader');
    const nobody = await meshwork(laptop, ['objects', 'share', scratch, `${bobId.slice(0, -1)}${bobId.endsWith('x') ? 'y' : 'x'}`]);
    expect(nobody.code).toBe(65);
    expect(nobody.stderr).toMatch(/^meshwork: .+\n$/);
    expect(json(await meshwork(laptop, ['objects', 'unshare', scratch, bobId, '--json']))).toEqual({
      objectId: scratch,
      userId: bobId,
      removed: true,
    });
    await expect(bob.getObject(scratch)).rejects.toMatchObject({ code: 'not_found' });

    expect(json(await meshwork(laptop, ['objects', 'rm', scratch, '--json']))).toEqual({ objectId: scratch, deleted: true });
    const after = json<{ objects: { id: string }[] }>(await meshwork(laptop, ['objects', 'ls', '--json']));
    expect(after.objects.map((o) => o.id)).toEqual([objectId]);
    const gone = await meshwork(laptop, ['objects', 'rm', scratch]);
    expect(gone.code).toBe(65);
    expect(gone.stderr).toBe(`meshwork: no object ${scratch} (or you are not a member of it)\n`);
  });

  it('puts and gets a multi-block file byte for byte, with --force semantics', async () => {
    const data = randomBytes(5 * MiB + 4321);
    const local = join(laptop.cwd, 'big.bin');
    writeFileSync(local, data);
    const up = json<{ created: boolean; size: number; version: string; uploadedBlocks: number }>(
      await meshwork(laptop, ['put', local, `${objectId}:media/big.bin`, '--json']),
    );
    expect(up).toMatchObject({ created: true, size: data.length, uploadedBlocks: 2 });

    const exists = await meshwork(laptop, ['put', local, `${objectId}:media/big.bin`]);
    expect(exists.code).toBe(65);
    expect(exists.stderr).toBe(`meshwork: ${objectId}:media/big.bin exists already; use --force to replace it\n`);

    const changed = Buffer.concat([data, Buffer.from('more')]);
    writeFileSync(local, changed);
    const replaced = json<{ created: boolean; version: string; size: number }>(
      await meshwork(laptop, ['put', '--force', local, `${objectId}:media/big.bin`, '--json']),
    );
    expect(replaced.created).toBe(false);
    expect(replaced.size).toBe(changed.length);
    expect(Number(replaced.version)).toBeGreaterThan(Number(up.version));

    const got = json<{ bytes: number; file: string }>(await meshwork(phone, ['get', `${objectId}:media/big.bin`, '--json']));
    expect(got).toMatchObject({ bytes: changed.length, file: join(phone.cwd, 'big.bin') });
    expect(sha(readFileSync(join(phone.cwd, 'big.bin')))).toBe(sha(changed));
    // No partial file is left beside it.
    expect(existsSync(join(phone.cwd, `.big.bin.meshwork-${process.pid}.part`))).toBe(false);

    const kept = await meshwork(phone, ['get', `${objectId}:media/big.bin`]);
    expect(kept.code).toBe(65);
    expect(kept.stderr).toMatch(/big\.bin exists already; use --force to overwrite it/);
    writeFileSync(join(phone.cwd, 'small.bin'), 'old');
    expect((await meshwork(phone, ['get', '-f', `${objectId}:media/big.bin`, 'small.bin'])).code).toBe(0);
    expect(sha(readFileSync(join(phone.cwd, 'small.bin')))).toBe(sha(changed));

    const piped = await meshwork(phone, ['get', `${objectId}:media/big.bin`, '-']);
    expect(piped.code, piped.stderr).toBe(0);
    expect(sha(piped.bytes)).toBe(sha(changed));
    // Not a terminal: no progress on stderr.
    expect(piped.stderr).toBe('');

    // A reader that stops early closes the pipe: the command ends quietly.
    const early = await meshwork(phone, [], {}, [
      'bash',
      '-c',
      `'${process.execPath}' '${program}' get ${objectId}:media/big.bin - | head -c 10 >/dev/null; echo "\${PIPESTATUS[0]}"`,
    ]);
    expect(early.stdout).toBe('0\n');
    expect(early.stderr).toBe('');
  });

  it('exits 65 with a clear message for a missing path, a bad ID:PATH, a missing local file and an invalid path', async () => {
    const missing = await meshwork(phone, ['get', `${objectId}:nope.txt`]);
    expect(missing.code).toBe(65);
    expect(missing.stderr).toBe(`meshwork: no file ${objectId}:nope.txt (no such path, or no such object for you)\n`);
    expect(existsSync(join(phone.cwd, 'nope.txt'))).toBe(false);

    const noDir = await meshwork(phone, ['get', `${objectId}:media/big.bin`, 'no/such/dir/big.bin']);
    expect(noDir.code).toBe(65);
    expect(noDir.stderr).toMatch(/no directory .*no\/such\/dir to write big\.bin in/);

    const malformed = await meshwork(phone, ['get', 'no-colon']);
    expect(malformed.code).toBe(65);
    expect(malformed.stderr).toMatch(/expected ID:PATH/);

    const noLocal = await meshwork(laptop, ['put', join(laptop.cwd, 'absent'), `${objectId}:a`]);
    expect(noLocal.code).toBe(65);
    expect(noLocal.stderr).toMatch(/cannot read .*absent: no such file/);

    writeFileSync(join(laptop.cwd, 'x.txt'), 'x');
    const invalid = await meshwork(laptop, ['put', 'x.txt', `${objectId}:a/../b`, '--json']);
    expect(invalid.code).toBe(65);
    expect(invalid.stdout).toBe('');
    expect(JSON.parse(invalid.stderr)).toMatchObject({
      error: { exitCode: 65, code: 'bad_input', message: expect.stringMatching(/\.\. segments/) as unknown },
    });
    // A path the server refuses (a control character) is 65 too, with the server's code.
    const refused = await meshwork(laptop, ['put', 'x.txt', `${objectId}:a\u0001b`, '--json']);
    expect(refused.code).toBe(65);
    expect(JSON.parse(refused.stderr)).toMatchObject({ error: { exitCode: 65, code: 'invalid_path' } });
    expect(invalid.stderr).not.toMatch(/\n\s+at /);
  });

  it('lists devices and revokes one; the revoked device is told to log in again (77)', async () => {
    const listed = json<{ devices: { id: string; name: string; current: boolean }[] }>(await meshwork(laptop, ['devices', 'ls', '--json']));
    expect(listed.devices.map((d) => d.name).sort()).toEqual(['laptop', 'phone', 'pty', 'tablet']);
    expect(listed.devices.find((d) => d.current)?.id).toBe(laptopId);

    const revoked = json(await meshwork(laptop, ['devices', 'revoke', phoneId, '--token-file', aliceTokenFile, '--json']));
    expect(revoked).toEqual({ deviceId: phoneId, revoked: true });
    expect((await alice.listDevices()).map((d) => d.id)).not.toContain(phoneId);

    // Every process refuses a revoked token within 5 seconds (docs/api.md); this one at once.
    let after: Run | undefined;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      after = await meshwork(phone, ['whoami']);
      if (after.code !== 0) break;
    }
    expect(after?.code).toBe(77);
    expect(after?.stderr).toBe('meshwork: this device was revoked; run meshwork login again\n');
    expect((await meshwork(phone, ['objects', 'ls'])).code).toBe(77);

    // Logging in again replaces the revoked configuration.
    const again = json<{ deviceId: string }>(
      await meshwork(phone, ['login', '--server', partition.url, '--name', 'phone', '--token-file', aliceTokenFile, '--json']),
    );
    expect(again.deviceId).not.toBe(phoneId);
    expect(json(await meshwork(phone, ['whoami', '--json']))).toMatchObject({ deviceId: again.deviceId });
  });

  it('exits 65 revoking a device that is not the user’s', async () => {
    const run = await meshwork(laptop, ['devices', 'revoke', 'd-nonexistent', '--token-file', aliceTokenFile]);
    expect(run.code).toBe(65);
    expect(run.stderr).toMatch(/no device d-nonexistent/);
  });

  it('checks the object before syncing, and reports nothing synced yet', async () => {
    const noObject = await meshwork(laptop, ['sync', join(laptop.cwd, 'docs'), '--object', 'o-none', '--once']);
    expect(noObject.code).toBe(65);
    expect(noObject.stderr).toMatch(/no object o-none/);
    const status = await meshwork(laptop, ['status']);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^nothing synced yet/);
    expect(json(await meshwork(laptop, ['status', '--json']))).toEqual({ stateDir: laptop.stateDir, folders: [], unreadable: [] });
  });

  it('logs out: the device is deleted on the server and the configuration removed', async () => {
    const out = json(await meshwork(laptop, ['logout', '--json']));
    expect(out).toEqual({ deviceId: laptopId, deletedOnServer: true, configRemoved: true });
    expect(existsSync(join(laptop.configDir, 'config.json'))).toBe(false);
    expect((await alice.listDevices()).map((d) => d.id)).not.toContain(laptopId);
    const whoami = await meshwork(laptop, ['whoami']);
    expect(whoami.code).toBe(77);
    expect(whoami.stderr).toBe('meshwork: not logged in; run meshwork login --server URL\n');
    expect((await meshwork(laptop, ['logout'])).code).toBe(77);
  });

  it('revokes this device itself with its own token, and forgets it', async () => {
    const watch = device('watch');
    const login = json<{ deviceId: string }>(
      await meshwork(watch, ['login', '--server', partition.url, '--name', 'watch', '--token-file', aliceTokenFile, '--json']),
    );
    // No account token is given: a device may delete itself.
    const revoked = json(await meshwork(watch, ['devices', 'revoke', login.deviceId, '--json']));
    expect(revoked).toEqual({ deviceId: login.deviceId, revoked: true, configRemoved: true });
    expect(existsSync(join(watch.configDir, 'config.json'))).toBe(false);
    expect((await alice.listDevices()).map((d) => d.id)).not.toContain(login.deviceId);
  });

  it('logs out offline with a warning', async () => {
    const offline = device('offline');
    const port = await closedPort();
    mkdirSync(offline.configDir, { recursive: true });
    const config = {
      version: 1,
      server: `http://127.0.0.1:${port}`,
      userId: aliceId,
      deviceId: 'd-away',
      deviceName: 'away',
      deviceToken: 'mwd.x',
    };
    writeFileSync(join(offline.configDir, 'config.json'), JSON.stringify(config), { mode: 0o600 });
    const run = await meshwork(offline, ['logout']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/warning: could not reach .*d-away stays registered: revoke it with meshwork devices revoke d-away/);
    expect(existsSync(join(offline.configDir, 'config.json'))).toBe(false);
  });

  it('exits 69 when the server cannot be reached', async () => {
    const away = device('away');
    const port = await closedPort();
    const run = await meshwork(away, ['login', '--server', `http://127.0.0.1:${port}`], { input: 'mwu.x' });
    expect(run.code).toBe(69);
    expect(run.stderr).toMatch(/^meshwork: the server is unavailable: /);
  });
});

describe('the command line', () => {
  it.each([
    [['frobnicate']],
    [['objects']],
    [['whoami', '--bogus']],
    [['put', 'only-one']],
    [['sync', 'dir']],
    [['login']],
    [['objects', 'share', 'o', 'u', '--role', 'owner']],
  ])('%j is a usage error (64) with the usage on stderr', async (args) => {
    const run = await meshwork(device('usage'), args);
    expect(run.code).toBe(64);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^meshwork: /);
    expect(run.stderr).toMatch(/Usage:/);
  });

  it.each([...commands.map((c) => [c.name.split(' ')]), [['--help']], [['help']], [['help', 'objects']], [['objects', '--help']]])(
    '%j --help exits 0 with the usage on stdout',
    async (args) => {
      const run = await meshwork(device('help'), [...args, '--help']);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toMatch(/Usage: meshwork/);
      expect(run.stderr).toBe('');
    },
  );
});

// Until the sync engine lands, `sync` and `status` run in-process over a stand-in engine with the
// engine's public surface: what is tested is the command's side (the state file it names and
// indexes, the options it opens the engine with, events as lines, exit codes, signals, close).
describe('sync and status over a stand-in engine', () => {
  let desk: Device;
  let objectId: string;

  beforeAll(async () => {
    desk = device('desk');
    const login = await meshwork(desk, ['login', '--server', partition.url, '--name', 'desk', '--token-file', aliceTokenFile]);
    expect(login.code, login.stderr).toBe(0);
    objectId = (await alice.createObject({ name: 'Synced' })).id;
  });

  const report: SyncReport = { uploaded: 1, downloaded: 0, deletedRemote: 0, deletedLocal: 0, conflicts: 0, problems: 0, cursor: '5' };

  /** A stand-in engine: records how it was opened and closed; `run` and `syncOnce` do what the test says. */
  function standIn(behaviour: {
    syncOnce?: (options: AgentOptions) => Promise<SyncReport>;
    run?: (signal: AbortSignal, options: AgentOptions) => Promise<void>;
    status?: (statePath: string) => AgentStatus;
  }) {
    const calls = { opened: [] as AgentOptions[], closed: 0 };
    let resolveOpened: () => void = () => {};
    const opened = new Promise<void>((resolve) => (resolveOpened = resolve));
    const engine: SyncEngine = {
      openAgent: (options: AgentOptions): Promise<SyncAgentShape> => {
        calls.opened.push(options);
        // The real engine creates its database where it is told.
        writeFileSync(options.statePath, '');
        resolveOpened();
        return Promise.resolve({
          syncOnce: () => (behaviour.syncOnce ?? (() => Promise.resolve(report)))(options),
          run: (signal: AbortSignal) => (behaviour.run ?? (() => Promise.resolve()))(signal, options),
          locateBlock: () => [],
          countServed: () => undefined,
          ignores: () => false,
          status: () => {
            throw new Error('not used');
          },
          close: () => {
            calls.closed++;
            return Promise.resolve();
          },
        } as SyncAgentShape);
      },
      readStatus: (statePath: string) => {
        if (behaviour.status === undefined) throw new Error('no status here');
        return behaviour.status(statePath);
      },
    };
    return { engine, calls, opened };
  }

  function inProcess(engine: SyncEngine) {
    const out: string[] = [];
    const err: string[] = [];
    const handlers = new Set<(signal: string) => void>();
    const sink = (into: string[]) =>
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          into.push(chunk.toString());
          done();
        },
      });
    const io: CliIo = {
      stdout: sink(out),
      stderr: sink(err),
      stdin: process.stdin,
      env: { MESHWORK_CONFIG_DIR: desk.configDir, MESHWORK_STATE_DIR: desk.stateDir, MESHWORK_PEER_LISTEN: '127.0.0.1:0' },
      home: desk.cwd,
      onSignal(handler) {
        handlers.add(handler);
        return () => void handlers.delete(handler);
      },
      engine,
    };
    return { io, out: () => out.join(''), err: () => err.join(''), signal: (name: string) => handlers.forEach((h) => h(name)) };
  }

  it('sync --once opens the engine for the folder with its own state file, prints events as JSON lines, and exits 2 on problems', async () => {
    const dir = join(desk.cwd, 'Documents');
    const { engine, calls } = standIn({
      syncOnce: (options) => {
        options.onEvent?.({ type: 'scan', files: 3, changed: 1, ms: 4 });
        options.onEvent?.({ type: 'committed', path: 'a.txt', version: '9', direction: 'up' });
        options.onEvent?.({ type: 'problem', path: 'link', code: 'symlink', message: 'symlinks are not followed' });
        return Promise.resolve({ ...report, problems: 1 });
      },
    });
    const run = inProcess(engine);
    const code = await main(['sync', dir, '--object', objectId, '--once', '--json'], run.io);
    expect(code, run.err()).toBe(2);
    expect(calls.opened).toHaveLength(1);
    const options = calls.opened[0]!;
    expect(options).toMatchObject({ dir, objectId, deviceName: 'desk', statePath: join(desk.stateDir, stateFileName(dir, objectId)) });
    expect(options.client.token).toMatch(/^mwd\./);
    expect(statSync(dir).isDirectory()).toBe(true);
    expect(calls.closed).toBe(1);
    const lines = run
      .out()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string });
    expect(lines.map((l) => l.type)).toEqual(['scan', 'committed', 'problem', 'report']);
    expect(lines[3]).toMatchObject({ type: 'report', problems: 1 });
    const index = JSON.parse(readFileSync(join(desk.stateDir, 'index.json'), 'utf8')) as { databases: Record<string, unknown> };
    expect(index.databases[stateFileName(dir, objectId)]).toEqual({ dir, objectId });
  });

  it('sync --once prints events for people and exits 0 without problems', async () => {
    const { engine } = standIn({
      syncOnce: (options) => {
        options.onEvent?.({ type: 'committed', path: 'a.txt', version: '9', direction: 'up' });
        options.onEvent?.({ type: 'conflict', path: 'b.txt', copy: 'b (conflict from phone 2026-01-01).txt' });
        return Promise.resolve(report);
      },
    });
    const run = inProcess(engine);
    expect(await main(['sync', join(desk.cwd, 'Documents'), '--object', objectId, '--once'], run.io)).toBe(0);
    expect(run.out()).toBe(
      'uploaded a.txt\nconflict on b.txt: the other version is kept as b (conflict from phone 2026-01-01).txt\n' +
        'synced: 1 uploaded, 0 downloaded, 0 deleted on the server, 0 deleted here, 0 conflicts, 0 problems\n',
    );
  });

  it('sync runs until SIGINT, then aborts the run, closes the engine and exits 0', async () => {
    const { engine, calls, opened } = standIn({
      run: (signal) => new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true })),
    });
    const run = inProcess(engine);
    const done = main(['sync', join(desk.cwd, 'Documents'), '--object', objectId], run.io);
    await opened;
    // The handler is subscribed right after the engine opens; wait for it with a deadline.
    const deadline = Date.now() + 5000;
    while (!run.err().includes('Ctrl-C stops') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    run.signal('SIGINT');
    expect(await done).toBe(0);
    expect(calls.closed).toBe(1);
    expect(run.err()).toMatch(/stopped\n$/);
  });

  it('sync exits 77 with the revoked message when the engine stops for good', async () => {
    const { engine, calls } = standIn({ run: () => Promise.reject(new AgentStopped('unauthorized', 'the server answered 401')) });
    const run = inProcess(engine);
    expect(await main(['sync', join(desk.cwd, 'Documents'), '--object', objectId], run.io)).toBe(77);
    expect(run.err()).toMatch(/meshwork: this device was revoked; run meshwork login again\n$/);
    expect(calls.closed).toBe(1);
  });

  it('status reads every state database, names its folder, and filters by object', async () => {
    const dir = join(desk.cwd, 'Documents');
    const status = (): AgentStatus => ({
      objectId,
      dir,
      cursor: '5',
      lastSyncAt: '2026-01-01T00:00:00.000Z',
      pending: [{ path: 'new.txt', direction: 'up' }],
      problems: [{ path: 'link', code: 'symlink', message: 'symlinks are not followed', since: '2026-01-01T00:00:00.000Z' }],
      conflicts: [],
      stopped: null,
      transfer: { fromPeers: 0, fromRelays: 0, fromCloud: 0, served: 0 },
    });
    const human = inProcess(standIn({ status }).engine);
    expect(await main(['status'], human.io)).toBe(0);
    expect(human.out()).toContain(`${dir}  <->  ${objectId}`);
    expect(human.out()).toContain('link (symlink, since 2026-01-01T00:00:00.000Z): symlinks are not followed');

    const asJson = inProcess(standIn({ status }).engine);
    expect(await main(['status', '--json', '--object', objectId], asJson.io)).toBe(0);
    const doc = JSON.parse(asJson.out()) as { folders: (AgentStatus & { statePath: string })[] };
    expect(doc.folders.map((f) => f.statePath)).toEqual([join(desk.stateDir, stateFileName(dir, objectId))]);

    const other = inProcess(standIn({ status }).engine);
    expect(await main(['status', '--object', 'o-other'], other.io)).toBe(0);
    expect(other.out()).toMatch(/^nothing synced yet/);

    const broken = inProcess(standIn({}).engine);
    expect(await main(['status'], broken.io)).toBe(0);
    expect(broken.out()).toContain(`${dir}  <->  ${objectId}\n  cannot read its state: no status here`);
  });
});

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof address === 'object' && address !== null ? address.port : 0;
}
