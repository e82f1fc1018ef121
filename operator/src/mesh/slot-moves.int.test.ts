// Online slot moves (ADR 34) with real etcd, MinIO, partition and gateway processes: a write
// admitted before its slot moved is fenced and never applied; then a mesh grows from two
// partitions to three and shrinks back to two while eight clients keep committing through the
// gateway, and every commit a client saw acknowledged is in the final state exactly once, every
// other answer was a documented 503 with Retry-After, no slot answered only 503 for long, and a
// long poller on a moving object, resuming by cursor, saw every commit.
// Its own etcd: owner keys are mesh-wide, and the shared stack's slots belong to other files.
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshworkClient, type DeviceClient } from '@meshwork/client';
import { slotOwnerKey } from '@meshwork/contract';
import { startEtcd, type EtcdServer } from '../../../e2e/harness/etcd.ts';
import { startMinio, type MinioServer } from '../../../e2e/harness/minio.ts';
import { waitFor } from '../../../e2e/harness/wait.ts';
import { startPartition, unthrottledEnv, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';
import { startGateway, type RunningGateway } from '../../../e2e/dataplane/gateway-process.ts';
import { MetadataStore } from '../../../dataplane/src/stores/metadata-store.ts';
import { SlotMovedError, withSlotFence } from '../../../dataplane/src/stores/slot-fence.ts';
import { slotOf } from '../../../dataplane/src/slots.ts';
import { planMoves, rangesToSlots } from './moves.ts';
import { moveChunk, movePlanKey, readRecordedPlan, readSlotOwners, runMovePlan, seedOwnerKeys } from './slot-mover.ts';

const writers = 8;
/** Where the third partition's configured ranges start: 2730-4095, as an even layout of three gives it. */
const thirdPartitionFirst = 2730;
/** Statuses a client of the gateway may see besides 2xx while slots move, each with Retry-After (docs/api.md). */
const documented = new Set(['slot_moving', 'partition_unavailable', 'overloaded', 'ownership_lost', 'draining', 'store_unavailable']);

let etcd: EtcdServer;
let minio: MinioServer;
let client: Etcd3;
let gateway: RunningGateway;
const partitions = new Map<string, RunningPartition>();

async function addPartition(name: string, slots: string, adminToken?: string): Promise<RunningPartition> {
  const started = await startPartition(
    { etcdEndpoint: etcd.endpoint, minio },
    { partition: name, slots, adminToken, env: { ...unthrottledEnv, MESHWORK_POD_NAME: `${name}-0` } },
  );
  partitions.set(name, started);
  return started;
}

beforeAll(async () => {
  [etcd, minio] = await Promise.all([startEtcd({ name: 'slot-moves-etcd' }), startMinio({ bucket: 'slot-moves' })]);
  client = new Etcd3({ hosts: etcd.endpoint });
  const p0 = await addPartition('p0', '0-2047');
  await addPartition('p1', '2048-4095', p0.adminToken);
  gateway = await startGateway({ etcdEndpoint: etcd.endpoint });
}, 120_000);

afterAll(async () => {
  await Promise.all([gateway?.stop(), ...[...partitions.values()].map((p) => p.stop())]);
  client?.close();
  await Promise.all([etcd?.stop(), minio?.stop()]);
});

/** One writer's record: what it saw acknowledged, what it may have written without an answer, every refusal. */
interface WriterLog {
  objectId: string;
  acked: Set<string>;
  refusals: { status: number; code: string; retryAfter: string | undefined }[];
  /** The longest run of refusals on this writer's slot, from its first refusal to the next success (ms). */
  longestOutageMs: number;
}

/** Commits `w-{n}` entries one after another until `stop` is set, retrying each until it is acknowledged. */
async function write(device: DeviceClient, objectId: string, log: WriterLog, stop: { now: boolean }): Promise<void> {
  for (let n = 0; !stop.now; n++) {
    const path = `w-${n}`;
    let failingSince: number | undefined;
    let ambiguous = false;
    for (;;) {
      let res;
      try {
        res = await device.raw('PUT', `/v1/objects/${objectId}/entries/${path}`, {
          body: { kind: 'directory' },
          headers: { 'if-none-match': '*' },
        });
      } catch {
        // No answer: the commit may or may not have applied; If-None-Match tells on the retry.
        ambiguous = true;
        res = undefined;
      }
      if (res !== undefined && res.status >= 200 && res.status < 300) {
        log.acked.add(path);
        break;
      }
      if (res?.status === 412 && ambiguous) {
        // An earlier attempt applied without its answer reaching us: acknowledged now.
        log.acked.add(path);
        break;
      }
      if (res !== undefined) {
        const code = (res.body as { error?: { code?: string } } | undefined)?.error?.code ?? `status ${res.status}`;
        log.refusals.push({ status: res.status, code, retryAfter: res.headers['retry-after'] });
        // A 5xx may hide an applied commit as much as a lost answer does.
        if (res.status >= 500) ambiguous = true;
      }
      failingSince ??= Date.now();
      // Faster than Retry-After on purpose: the test measures how long the slot refuses.
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    if (failingSince !== undefined) log.longestOutageMs = Math.max(log.longestOutageMs, Date.now() - failingSince);
  }
}

/** What a long poller on one object saw: every path its change sets named, and every refusal. */
interface PollLog {
  seen: Set<string>;
  refusals: { status: number; code: string; retryAfter: string | undefined }[];
  polls: number;
  /** The last polls: when, the cursor asked from, the answer's status, cursor and number of changes (for a failure's message). */
  recent: string[];
}

/** Follows an object's changes by long poll through the gateway from `cursor` until `stop.now`, resuming by cursor after a refusal. */
async function follow(device: DeviceClient, objectId: string, cursor: string, log: PollLog, stop: { now: boolean }): Promise<void> {
  let from = cursor;
  while (!stop.now) {
    const res = await device.raw('GET', `/v1/objects/${objectId}/changes?cursor=${encodeURIComponent(from)}&wait=2`).catch(() => undefined);
    log.polls++;
    log.recent.push(
      `${new Date().toISOString().slice(11, 23)} from ${from} → ${res?.status ?? 'no answer'} ${(JSON.stringify(res?.body) ?? '').slice(0, 120)}`,
    );
    if (log.recent.length > 12) log.recent.shift();
    if (res?.status === 200) {
      const page = res.body as { changes: { path: string }[]; cursor: string; next: string | null };
      for (const change of page.changes) log.seen.add(change.path);
      // A full page: the rest comes with the next poll from the page's cursor, as with `next`.
      from = page.cursor;
      continue;
    }
    if (res !== undefined) {
      const code = (res.body as { error?: { code?: string } } | undefined)?.error?.code ?? `status ${res.status}`;
      log.refusals.push({ status: res.status, code, retryAfter: res.headers['retry-after'] });
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('online slot moves', () => {
  it('never applies a write admitted before its slot moved', async () => {
    const store = new MetadataStore(client);
    const slot = 17;
    const user = (id: string): Parameters<MetadataStore['createUser']>[0] => ({
      id,
      name: id,
      createdAt: new Date().toISOString(),
      tokenHash: 'x'.repeat(64),
    });
    // Two ids in slot 17, minted by brute force over a short alphabet.
    const ids: string[] = [];
    for (let i = 0; ids.length < 2; i++) if (slotOf(`ufence${i}`) === slot) ids.push(`ufence${i}`);
    await client.put(slotOwnerKey(slot)).value(JSON.stringify({ partition: 'p0', epoch: 1 }));
    const admitted = Number((await client.get(slotOwnerKey(slot)).exec()).kvs[0]!.mod_revision);
    expect(await withSlotFence({ slot, revision: admitted }, () => store.createUser(user(ids[0]!)))).toBe(true);
    // The slot moves while a second write of the same request is on its way.
    await client.put(slotOwnerKey(slot)).value(JSON.stringify({ partition: 'p1', epoch: 2 }));
    await expect(withSlotFence({ slot, revision: admitted }, () => store.createUser(user(ids[1]!)))).rejects.toBeInstanceOf(SlotMovedError);
    expect(await store.getUser(ids[1]!)).toBeUndefined();
    // Put back as the partitions' claims say, for the moves below.
    await client.delete().key(slotOwnerKey(slot));
  });

  it('grows 2 → 3 → 2 partitions under 8 writing clients: nothing acknowledged is lost or doubled', async () => {
    const admin = new MeshworkClient({ baseUrl: gateway.url, token: partitions.get('p0')!.adminToken });
    // Half the writers in slots that move to the third partition, half in slots that stay.
    const grownPlan = planMoves((await readSlotOwners(client)).owners, ['p0', 'p1', 'p2']);
    const moving = new Set(rangesToSlots(grownPlan.moves.flatMap((m) => m.slots)));
    const devices: DeviceClient[] = [];
    let movers = 0;
    for (let tries = 0; devices.length < writers && tries < 200; tries++) {
      const account = await admin.createUser(`writer-${tries}`);
      const moves = moving.has(slotOf(account.id));
      if (moves ? movers >= writers / 2 : devices.length - movers >= writers / 2) continue;
      // The first mover (the one a long poller follows) in a slot outside the ranges the third
      // partition is started with, so that its change feed does not cover it.
      if (moves && movers === 0 && slotOf(account.id) >= thirdPartitionFirst) continue;
      if (moves) movers++;
      devices.push(await new MeshworkClient({ baseUrl: gateway.url, token: account.token }).registerDeviceClient('writer'));
    }
    expect(devices).toHaveLength(writers);
    const logs: WriterLog[] = [];
    for (const device of devices) {
      logs.push({ objectId: (await device.createObject({ name: 'load' })).id, acked: new Set(), refusals: [], longestOutageMs: 0 });
    }

    // A long poller on the object of a writer whose slot moves both ways, from before the first commit.
    const followed = devices.findIndex((d, i) => moving.has(slotOf(logs[i]!.objectId)));
    const poll: PollLog = { seen: new Set(), refusals: [], polls: 0, recent: [] };
    const stopPolling = { now: false };
    const { cursor } = await devices[followed]!.listAllEntries(logs[followed]!.objectId);
    const polling = follow(devices[followed]!, logs[followed]!.objectId, cursor, poll, stopPolling);
    const stop = { now: false };
    const running = devices.map((device, i) => write(device, logs[i]!.objectId, logs[i]!, stop));
    /** Waits until the poller has seen every commit its writer had acknowledged when this was called. */
    const caughtUp = async (when: string): Promise<void> => {
      const acked = [...logs[followed]!.acked];
      await waitFor(() => acked.every((path) => poll.seen.has(path)) || undefined, {
        description: `the long poller to have seen every acknowledged commit of its object ${when}`,
        timeoutMs: 30_000,
        intervalMs: 50,
      }).catch((err: unknown) => {
        const missing = acked.filter((path) => !poll.seen.has(path));
        const detail = `${missing.length} missed (${missing.slice(0, 10).join(', ')}); last polls:\n${poll.recent.join('\n')}`;
        throw new Error(`${when}, the poller did not see every commit: ${detail}`, { cause: err });
      });
    };
    /** Waits until every writer has had `more` commits acknowledged beyond what it has now. */
    const progress = async (more: number, description: string): Promise<void> => {
      const from = logs.map((l) => l.acked.size);
      await waitFor(() => logs.every((l, i) => l.acked.size >= from[i]! + more) || undefined, {
        description,
        timeoutMs: 60_000,
        intervalMs: 50,
      });
    };
    await progress(5, 'every writer to commit before the moves');

    // Grow: the owner keys are seeded from the claims, then the third partition starts and takes its share.
    expect(await seedOwnerKeys(client)).toBe(4096);
    await addPartition('p2', `${thirdPartitionFirst}-4095`, partitions.get('p0')!.adminToken);
    const grownAt = Date.now();
    await runMovePlan(client, 'mesh', planMoves((await readSlotOwners(client)).owners, ['p0', 'p1', 'p2']));
    const growMs = Date.now() - grownAt;
    const grown = await readSlotOwners(client);
    expect(grown.owners.filter((o) => o === 'p2')).toHaveLength(1365);
    // The gateway routes by the keys at once, and says so.
    let served: Record<string, string> | undefined;
    await waitFor(async () => (served = (await admin.slots()).served)?.p2 === '1366-2047,3413-4095' || undefined, {
      description: "the gateway's slot map to show the third partition's share",
      timeoutMs: 10_000,
      intervalMs: 50,
    }).catch((err: unknown) => {
      throw new Error(`the gateway serves ${JSON.stringify(served)}`, { cause: err });
    });
    await progress(10, 'every writer to commit after growing');
    // While the third partition serves the followed object (in a slot outside its configured ranges).
    await caughtUp('after growing');
    // The third partition serves a moved writer's object itself; its former owner sends it on.
    const moved = logs.find((l) => grown.owners[slotOf(l.objectId)] === 'p2')!;
    const token = devices[logs.indexOf(moved)]!.token;
    const direct = await new MeshworkClient({ baseUrl: partitions.get('p2')!.url, token }).raw(
      'GET',
      `/v1/objects/${moved.objectId}/entries`,
    );
    expect(direct.status).toBe(200);
    const former = await new MeshworkClient({
      baseUrl: partitions.get(grownPlan.moves.find((m) => rangesToSlots(m.slots).includes(slotOf(moved.objectId)))!.from)!.url,
      token,
    }).raw('GET', `/v1/objects/${moved.objectId}/entries`);
    expect(former.status).toBe(421);

    // Shrink: every slot of the third partition goes back, then it stops.
    const shrunkAt = Date.now();
    await runMovePlan(client, 'mesh', planMoves(grown.owners, ['p0', 'p1']));
    const shrinkMs = Date.now() - shrunkAt;
    expect((await readSlotOwners(client)).owners.filter((o) => o === 'p2')).toHaveLength(0);
    await partitions.get('p2')!.stop();
    partitions.delete('p2');
    await progress(10, 'every writer to commit after shrinking');
    stop.now = true;
    await Promise.all(running);
    // The poller, resumed by cursor across both moves, saw every commit made on its object.
    await caughtUp('after shrinking');
    stopPolling.now = true;
    await polling;
    for (const refusal of poll.refusals) {
      expect(refusal.status, JSON.stringify(refusal)).toBe(503);
      expect(documented.has(refusal.code), JSON.stringify(refusal)).toBe(true);
      expect(refusal.retryAfter, JSON.stringify(refusal)).toBeDefined();
    }

    for (const [i, log] of logs.entries()) {
      const { entries } = await devices[i]!.listAllEntries(log.objectId);
      const paths = entries.map((e) => e.path);
      // Zero lost: every acknowledged commit is there; zero doubled: each path once, and nothing unacknowledged beyond the last try.
      // (a writer stops only once its last commit was acknowledged, so the two sets are equal).
      expect(new Set(paths).size).toBe(paths.length);
      expect([...paths].sort()).toEqual([...log.acked].sort());
      for (const refusal of log.refusals) {
        expect(refusal.status, JSON.stringify(refusal)).toBe(503);
        expect(documented.has(refusal.code), JSON.stringify(refusal)).toBe(true);
        expect(refusal.retryAfter, JSON.stringify(refusal)).toBeDefined();
      }
    }
    const longest = Math.max(...logs.map((l) => l.longestOutageMs));
    const refused = logs.reduce((n, l) => n + l.refusals.length, 0);
    const acked = logs.reduce((n, l) => n + l.acked.size, 0);
    console.log(
      `slot moves: grow 2→3 took ${growMs} ms, shrink 3→2 ${shrinkMs} ms; ${acked} commits acknowledged, ${refused} refused; ` +
        `long poller: ${poll.polls} polls, ${poll.refusals.length} refused; ` +
        `longest a writer's slot answered only 503: ${longest} ms`,
    );
    expect(longest).toBeLessThan(5000);
  }, 180_000);

  it('lets a new operator leader finish a plan the last one left half done', async () => {
    const { owners: before, keys: keysBefore } = await readSlotOwners(client);
    const plan = planMoves(before, ['p0']);
    expect(plan.moves.length).toBeGreaterThan(3);
    // The last leader recorded the plan and swapped three chunks, then died; its record says
    // none were done (it died between its swaps and a write of progress it never made).
    await client.put(movePlanKey('resumed')).value(JSON.stringify({ moves: plan.moves, done: 0, startedAt: new Date().toISOString() }));
    for (const move of plan.moves.slice(0, 3)) await moveChunk(client, move);
    // The new leader asks for something else; the recorded plan is finished first, its swapped chunks skipped.
    const swapped: number[] = [];
    await runMovePlan(client, 'resumed', { moves: [] }, (_move, revision) => swapped.push(revision));
    expect(swapped).toHaveLength(plan.moves.length);
    expect(swapped.slice(0, 3)).toEqual([0, 0, 0]);
    expect(swapped.slice(3).every((r) => r > 0)).toBe(true);
    const after = await readSlotOwners(client);
    expect(after.owners).toEqual(plan.target);
    // Each slot that moved raised its epoch by one, once.
    for (const slot of rangesToSlots(plan.moves.flatMap((m) => m.slots))) {
      expect(after.keys.get(slot)!.record.epoch, `slot ${slot}`).toBe(keysBefore.get(slot)!.record.epoch + 1);
    }
    expect(await readRecordedPlan(client, 'resumed')).toBeUndefined();
  });
});
