// 10,000 concurrent idle long polls on one partition process: 1,000 users with 10 devices and
// one object each, every device polling. A commit to half of the objects releases exactly
// the polls of their users, each with its own object; the other half keeps waiting until
// its own objects change. Slots 4080-4095 belong to this file.
import { Agent } from 'node:http';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { waitFor } from '../../../e2e/harness/wait.ts';
import { MeshworkClient } from '@meshwork/client';
import { startPartition, unthrottledEnv, type PartitionStores, type RunningPartition } from '../../../e2e/dataplane/partition-process.ts';
import {
  holdPoll,
  openSockets,
  pool,
  populateInStore,
  requireOpenFiles,
  type HeldPoll,
  type PopulationUser,
} from '../../../e2e/dataplane/population.ts';

const stack = inject('stack');
const stores: PartitionStores = { etcdEndpoint: stack.etcd.endpoint, minio: stack.minio };
const users = 1000;
const devicesPerUser = 10;
const polls = users * devicesPerUser;

let partition: RunningPartition;
let population: PopulationUser[];

beforeAll(async () => {
  partition = await startPartition(stores, {
    partition: 'notify-capacity',
    slots: '4080-4095',
    env: { MESHWORK_LOG_LEVEL: 'warn', ...unthrottledEnv },
  });
  requireOpenFiles(polls + 500, partition.process.pid);
  // Written with the partition's own store calls: 12,000 records through the API would take a minute.
  const etcd = new Etcd3({ hosts: stack.etcd.endpoint });
  try {
    population = await populateInStore(etcd, [{ first: 4080, last: 4095 }], users, devicesPerUser);
  } finally {
    etcd.close();
  }
}, 300_000);

afterAll(async () => {
  await partition?.stop();
});

interface Answer {
  objects: { id: string }[];
  cursor: string;
}

/** A client of the partition without a token of its own (each call takes one with `as`). */
const anonymous = (): MeshworkClient => new MeshworkClient({ baseUrl: partition.url });

describe('10,000 idle long polls on one process', () => {
  it('releases each poll on a change to its own object, and no other', async () => {
    const first = population[0]!;
    const cursor = (await anonymous().as(first.devices[0]!.token).notifications({ wait: 0 })).cursor;
    // The polls themselves are raw HTTP (holdPoll): the test needs each one's socket connected
    // before it counts them, and a socket per poll, which fetch does not expose.
    const agent = new Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
    const held: { user: number; poll: HeldPoll }[] = [];
    const opening = performance.now();
    await pool(polls, 200, async (i) => {
      const user = Math.floor(i / devicesPerUser);
      const device = population[user]!.devices[i % devicesPerUser]!;
      held.push({ user, poll: await holdPoll(partition.url, device.token, `/v1/notifications?cursor=${cursor}&wait=60`, agent) });
    });
    let answered = 0;
    const wrong: string[] = [];
    for (const { user, poll } of held) {
      void poll.answer.then(
        ({ status, body }) => {
          answered++;
          const objects = (body as Answer | undefined)?.objects.map((o) => o.id) ?? [];
          if (status !== 200 || objects.length !== 1 || objects[0] !== population[user]!.objectId)
            wrong.push(`user ${user}: ${status} ${JSON.stringify(body)}`);
        },
        (err: Error) => {
          answered++;
          wrong.push(`user ${user}: ${err.message}`);
        },
      );
    }

    // Every connection accepted by the partition (one socket each).
    await waitFor(() => openSockets(partition.process.pid) >= polls, {
      description: `${polls} connections at the partition (${openSockets(partition.process.pid)} sockets open when the wait began)`,
      timeoutMs: 30_000,
      intervalMs: 200,
      abortIf: () => (answered > 0 ? `${answered} polls were answered before any change: ${wrong.slice(0, 3).join('; ')}` : undefined),
    });
    const opened = performance.now() - opening;

    const commitTo = async (range: [number, number]): Promise<number> => {
      const started = performance.now();
      const client = anonymous();
      await pool(range[1] - range[0], 32, async (i) => {
        const user = population[range[0] + i]!;
        const res = await client.as(user.token).putEntry(user.objectId, 'changed', { kind: 'directory' }, { ifNoneMatch: '*' });
        if (!res.created) throw new Error(`commit of ${user.objectId} replaced an entry instead of creating it`);
      });
      return started;
    };

    // Half of the objects change: exactly the polls of those users' devices are released.
    const half = users / 2;
    const firstStarted = await commitTo([0, half]);
    await waitFor(() => answered >= half * devicesPerUser, {
      description: `${half * devicesPerUser} polls released (now ${answered})`,
      timeoutMs: 45_000,
      intervalMs: 50,
    });
    const firstMs = performance.now() - firstStarted;
    expect(wrong).toEqual([]);
    const stillWaiting = held.filter(({ user }) => user >= half);
    expect(answered).toBe(half * devicesPerUser);

    // The other half changes: every remaining poll is released.
    const secondStarted = await commitTo([half, users]);
    await waitFor(() => answered >= polls, {
      description: `all ${polls} polls released (now ${answered})`,
      timeoutMs: 45_000,
      intervalMs: 50,
    });
    const secondMs = performance.now() - secondStarted;
    expect(wrong).toEqual([]);
    await Promise.all(stillWaiting.map(({ poll }) => poll.answer));
    agent.destroy();
    console.log(
      `Opened ${polls} polls in ${(opened / 1000).toFixed(1)} s; released the first half in ${(firstMs / 1000).toFixed(1)} s, the second in ${(secondMs / 1000).toFixed(1)} s`,
    );
  }, 240_000);
});
