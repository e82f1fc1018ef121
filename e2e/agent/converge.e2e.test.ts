// Three device agents, run as `meshwork sync` processes, converge on one shared object against
// a real partition (its own etcd and MinIO): alice's laptop and desktop and bob's laptop (bob is
// a writer of alice's object). Each agent's folder gets storms of creates, modifies, deletes
// and renames in a directory of its own, all three at once, so the final tree is known exactly;
// two devices edit the same file while both are frozen (SIGSTOP), so each commits on the same
// base and one must make a conflict copy; one agent is stopped (SIGTERM) while the others and
// its own folder change, then started again; one is killed (SIGKILL) in the middle of an
// upload of a 96 MiB file and started again. Then every tree must be the same, byte for byte,
// and hold every version last written by anyone, at its path or in a conflict copy. Last, a user
// removed from the object stops receiving changes and its agent exits saying why, and a revoked
// device's agent exits with the documented code 77.
//
// Waits are conditions with deadlines, generous for a busy 2-core machine; nothing sleeps.
import { randomBytes, createHash } from 'node:crypto';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshworkClient } from '@meshwork/client';
import { startEtcd, type EtcdServer } from '../harness/etcd.ts';
import { startMinio, type MinioServer } from '../harness/minio.ts';
import { waitFor } from '../harness/wait.ts';
import { startPartition, unthrottledEnv, type RunningPartition } from '../dataplane/partition-process.ts';
import { AgentProcess, createObject, login, makeAgentHome, shareObject, unauthorizedExitCode, type AgentHome } from './agent-process.ts';
import type { AgentEvent } from '@meshwork/client/agent';
import { sameTree, treeDiff, treeHashes, writeRandomFile, type HashCache } from './trees.ts';

const rounds = 3;
const opsPerRound = 20;
const largeBytes = 96 * 1024 * 1024;
/** How long convergence may take on a loaded 2-core machine. */
const convergeTimeoutMs = 300_000;
const conflictMarker = '(conflict from ';

let root: string;
let etcd: EtcdServer;
let minio: MinioServer;
let partition: RunningPartition;
let alice: MeshworkClient;
let bobId: string;
let objectId: string;

interface Device {
  home: AgentHome;
  dir: string;
  agent: AgentProcess;
  /** What this device's own storm directory must hold in the end (relative path → sha256). */
  model: Map<string, string>;
  random: () => number;
  serial: number;
  /** Events of this device's agent processes before the current one. */
  pastEvents: AgentEvent[];
}
const devices: Record<'laptop' | 'desktop' | 'bob', Device> = {} as never;
const all = (): Device[] => Object.values(devices);

/** A small deterministic PRNG (mulberry32), so a failing storm can be replayed. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

async function writeWithDirs(path: string, data: Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, data);
}

/** One storm operation in the device's own directory (storm/NAME/...), mirrored in its model. */
async function stormOp(device: Device): Promise<void> {
  const own = [...device.model.keys()].filter((p) => !p.endsWith('.large'));
  const roll = device.random();
  const pick = (): string => own[Math.floor(device.random() * own.length)]!;
  const content = (): Buffer => randomBytes(1 + Math.floor(device.random() * 64 * 1024));
  if (own.length < 5 || roll < 0.35) {
    const sub = device.random() < 0.5 ? '' : `d${Math.floor(device.random() * 3)}/`;
    const rel = join('storm', device.home.name, `${sub}f${device.serial++}.bin`);
    const data = content();
    await writeWithDirs(join(device.dir, rel), data);
    device.model.set(rel, sha256(data));
  } else if (roll < 0.65) {
    const rel = pick();
    const data = content();
    await writeFile(join(device.dir, rel), data);
    device.model.set(rel, sha256(data));
  } else if (roll < 0.8) {
    const rel = pick();
    await rm(join(device.dir, rel));
    device.model.delete(rel);
  } else {
    const from = pick();
    const to = join('storm', device.home.name, `r${device.serial++}.bin`);
    await rename(join(device.dir, from), join(device.dir, to));
    device.model.set(to, device.model.get(from)!);
    device.model.delete(from);
  }
}

async function storm(targets: Device[], ops: number): Promise<void> {
  await Promise.all(
    targets.map(async (device) => {
      for (let i = 0; i < ops; i++) await stormOp(device);
    }),
  );
}

/** The trees of all three folders once they are equal and hold every storm file as modelled. */
async function waitConverged(timeoutMs = convergeTimeoutMs): Promise<Map<string, string>> {
  const caches = new Map<Device, HashCache>(all().map((d) => [d, new Map()]));
  let last = '';
  try {
    return await waitFor(
      async () => {
        const trees = await Promise.all(all().map((d) => treeHashes(d.dir, { cache: caches.get(d)! })));
        const [first, ...others] = trees as [Map<string, string>, ...Map<string, string>[]];
        const expected = new Map(all().flatMap((d) => [...d.model]));
        const storms = new Map([...first].filter(([p]) => p.startsWith('storm/')));
        const mismatch = others.findIndex((t) => !sameTree(first, t));
        if (mismatch >= 0) {
          last = `${all()[0]!.home.name} vs ${all()[mismatch + 1]!.home.name}:\n${treeDiff(first, trees[mismatch + 1]!)}`;
          return undefined;
        }
        if (!sameTree(storms, expected)) {
          last = `the converged tree vs what was written:\n${treeDiff(storms, expected)}`;
          return undefined;
        }
        return first;
      },
      {
        description: 'the three folders to converge',
        timeoutMs,
        intervalMs: 1000,
        abortIf: () => {
          const gone = all().find((d) => d.agent.exitStatus);
          return gone ? `agent ${gone.home.name} exited: ${gone.agent.tail()}` : undefined;
        },
      },
    );
  } catch (err) {
    throw new Error(
      `${(err as Error).message}\nlast difference: ${last}\n${all()
        .map((d) => `--- ${d.home.name} ---\n${d.agent.tail(10)}`)
        .join('\n')}`,
      {
        cause: err,
      },
    );
  }
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'meshwork-agent-e2e-'));
  [etcd, minio] = await Promise.all([startEtcd({ name: 'etcd-agent-e2e' }), startMinio({ bucket: 'agent-e2e' })]);
  partition = await startPartition(
    { etcdEndpoint: etcd.endpoint, minio },
    {
      partition: 'agent-e2e',
      // The agents send and read the blocks of files over 4 MiB at the store itself (ADRs 79, 80),
      // the kill in the middle of the large upload included.
      env: {
        ...unthrottledEnv,
        MESHWORK_LOG_LEVEL: 'warn',
        MESHWORK_S3_DOWNLOAD_REDIRECT_ENDPOINT: minio.endpoint,
        MESHWORK_S3_UPLOAD_REDIRECT: 'on',
      },
    },
  );
  const admin = new MeshworkClient({ baseUrl: partition.url, token: partition.adminToken });
  const aliceAccount = await admin.createUser('alice');
  const bobAccount = await admin.createUser('bob');
  alice = admin.as(aliceAccount.token);
  bobId = bobAccount.id;
  const homes = {
    laptop: await makeAgentHome('alice-laptop', root),
    desktop: await makeAgentHome('alice-desktop', root),
    bob: await makeAgentHome('bob-laptop', root),
  };
  await Promise.all([
    login(homes.laptop, partition.url, aliceAccount.token),
    login(homes.desktop, partition.url, aliceAccount.token),
    login(homes.bob, partition.url, bobAccount.token),
  ]);
  objectId = await createObject(homes.laptop, 'Shared');
  await shareObject(homes.laptop, objectId, bobId, 'writer');
  let seed = 1;
  for (const key of ['laptop', 'desktop', 'bob'] as const) {
    const dir = join(root, `folder-${key}`);
    devices[key] = {
      home: homes[key],
      dir,
      agent: await AgentProcess.start(homes[key], dir, objectId),
      model: new Map(),
      random: seeded(seed++),
      serial: 0,
      pastEvents: [],
    };
  }
  await Promise.all(all().map((d) => d.agent.waitIdle({ timeoutMs: 120_000 })));
}, 300_000);

afterAll(async () => {
  await Promise.allSettled(all().map((d) => d.agent?.stop()));
  await partition?.stop();
  await Promise.allSettled([etcd?.stop(), minio?.stop()]);
  if (root) await rm(root, { recursive: true, force: true });
}, 120_000);

describe('three agents on one shared object', () => {
  it('converge byte for byte after storms, a concurrent edit, a stop and a kill -9 mid-upload', async () => {
    // Storms on all three at once; each round waits until every agent has committed
    // something of it, so the next round lands while they sync.
    for (let round = 0; round < rounds; round++) {
      const marks = all().map((d) => d.agent.mark());
      await storm(all(), opsPerRound);
      await Promise.all(
        all().map((d, i) =>
          d.agent.waitForEvent((e) => e.type === 'committed', {
            since: marks[i],
            timeoutMs: 120_000,
            what: `a commit in round ${round + 1}`,
          }),
        ),
      );
    }

    // Two devices edit the same file while both are frozen: each commits on the same base.
    const { laptop, desktop, bob } = devices;
    const shared = join('shared', 'notes.txt');
    const base = Buffer.from('base version\n');
    await writeWithDirs(join(laptop.dir, shared), base);
    const baseSha = sha256(base);
    await waitFor(async () => (await Promise.all(all().map((d) => treeHashes(d.dir)))).every((t) => t.get(shared) === baseSha), {
      description: 'every folder to hold the base version of shared/notes.txt',
      timeoutMs: 120_000,
      intervalMs: 500,
    });
    await Promise.all([laptop.agent.waitSettled(), desktop.agent.waitSettled()]);
    const editMarks = [laptop.agent.mark(), desktop.agent.mark()];
    laptop.agent.process.signal('SIGSTOP');
    desktop.agent.process.signal('SIGSTOP');
    const laptopEdit = Buffer.from(`laptop's edit ${randomBytes(8).toString('hex')}\n`);
    const desktopEdit = Buffer.from(`desktop's edit ${randomBytes(8).toString('hex')}\n`);
    await writeFile(join(laptop.dir, shared), laptopEdit);
    await writeFile(join(desktop.dir, shared), desktopEdit);
    laptop.agent.process.signal('SIGCONT');
    desktop.agent.process.signal('SIGCONT');
    await Promise.all(
      [laptop, desktop].map((d, i) =>
        d.agent.waitForEvent(
          (e) => (e.type === 'committed' && e.direction === 'up' && e.path === shared) || (e.type === 'conflict' && e.path === shared),
          {
            since: editMarks[i],
            timeoutMs: 120_000,
            what: `the commit of its own edit of ${shared}, or a conflict copy of it`,
          },
        ),
      ),
    );

    // One agent stopped cleanly while the others, and its own folder, change.
    const stopped = await desktop.agent.stop();
    desktop.pastEvents.push(...desktop.agent.events);
    expect(stopped, `desktop agent's exit on SIGTERM:\n${desktop.agent.tail()}`).toEqual({ code: 0, signal: null });
    await storm([laptop, bob], opsPerRound);
    await storm([desktop], 5);
    desktop.agent = await AgentProcess.start(desktop.home, desktop.dir, objectId);

    // One agent killed in the middle of an upload, then started again. The file is written
    // beside the folder and moved in, so the agent never reads it half-written.
    const large = join('storm', bob.home.name, 'big.large');
    const staging = join(root, 'staging.large');
    const largeSha = await writeRandomFile(staging, largeBytes);
    const uploadMark = bob.agent.mark();
    await rename(staging, join(bob.dir, large));
    bob.model.set(large, largeSha);
    const progress = await bob.agent.waitForEvent(
      (e) => (e.type === 'upload' && e.path === large) || (e.type === 'committed' && e.path === large),
      {
        since: uploadMark,
        timeoutMs: 120_000,
        what: `the upload of ${large}`,
      },
    );
    const killedMidUpload = progress.type === 'upload' && progress.bytes < progress.totalBytes;
    await bob.agent.kill();
    bob.pastEvents.push(...bob.agent.events);
    bob.agent = await AgentProcess.start(bob.home, bob.dir, objectId);

    const tree = await waitConverged();

    // The concurrent edit: both versions survive, one at the path, one in a conflict copy.
    const notes = [...tree].filter(([p]) => p === shared || (p.startsWith('shared/') && p.includes(conflictMarker)));
    const shas = notes.map(([, sha]) => sha);
    expect(shas, `versions of ${shared} in the converged tree: ${JSON.stringify(notes)}`).toEqual(
      expect.arrayContaining([sha256(laptopEdit), sha256(desktopEdit)]),
    );
    expect(notes.filter(([p]) => p.includes(conflictMarker)).length).toBeGreaterThanOrEqual(1);
    const conflictReported = all().some((d) => [...d.pastEvents, ...d.agent.events].some((e) => e.type === 'conflict'));
    const conflictLines = all()
      .flatMap((d) => [...d.pastEvents, ...d.agent.events].map((e) => `${d.home.name}: ${JSON.stringify(e)}`))
      .filter((l) => l.includes('conflict') || l.includes('notes'));
    expect(conflictReported, `some agent reported a conflict event; what they said of notes.txt:\n${conflictLines.join('\n')}`).toBe(true);
    // No stray conflict copies: only the concurrent edit made one.
    expect([...tree.keys()].filter((p) => p.includes(conflictMarker) && !p.startsWith('shared/'))).toEqual([]);
    // Nothing left behind by the killed upload but the file itself.
    expect(tree.get(large)).toBe(largeSha);
    console.log(
      `Converged: ${tree.size} files in every folder; the kill came ${killedMidUpload ? 'in the middle of' : 'after'} the upload of ${large}`,
    );
  }, 900_000);

  it('a user removed from the object stops receiving changes, and its agent exits saying why', async () => {
    const { laptop, desktop, bob } = devices;
    await alice.removeMember(objectId, bobId);
    const after = join('after-removal', 'secret.txt');
    const data = Buffer.from(`written after bob was removed ${randomBytes(8).toString('hex')}\n`);
    await writeWithDirs(join(laptop.dir, after), data);
    const exit = await bob.agent.waitExit(120_000);
    const message = bob.agent.tail();
    // The engine stops for good (AgentStopped object_gone): the command says why and exits 77 (docs/agent.md).
    expect(exit, `bob's agent exit; its last words:\n${message}`).toEqual({ code: unauthorizedExitCode, signal: null });
    expect(bob.agent.reportedError(), message).toMatchObject({ exitCode: unauthorizedExitCode, code: 'object_gone' });
    expect(bob.agent.reportedError()?.message).toMatch(/removed from it/);
    // The others still sync: the desktop gets the file, bob's folder never does.
    await waitFor(async () => (await treeHashes(desktop.dir)).get(after) === sha256(data), {
      description: `alice's desktop to receive ${after}`,
      timeoutMs: 120_000,
      intervalMs: 500,
    });
    expect((await treeHashes(bob.dir)).has(after)).toBe(false);
  }, 300_000);

  it('a revoked device exits with the unauthorized exit code and says so', async () => {
    const { desktop } = devices;
    const listed = await alice.listDevices();
    const device = listed.find((d) => d.name === desktop.home.name);
    expect(device, `alice's devices: ${JSON.stringify(listed)}`).toBeDefined();
    await alice.deleteDevice(device!.id);
    const exit = await desktop.agent.waitExit(120_000);
    const message = desktop.agent.tail();
    expect(exit, `desktop agent's exit; its last words:\n${message}`).toEqual({ code: unauthorizedExitCode, signal: null });
    expect(desktop.agent.reportedError(), message).toMatchObject({
      exitCode: unauthorizedExitCode,
      message: 'this device was revoked; run meshwork login again',
    });
  }, 300_000);
});
