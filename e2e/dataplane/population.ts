// Many users, each with devices and one object, and many long polls held open at once, for
// the long-poll capacity test and the notify benchmark.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { request as httpRequest, type Agent, type ClientRequest } from 'node:http';
import type { Etcd3 } from 'etcd3';
import { mintIdInSlot, slotOf, type SlotRange } from '../../dataplane/src/slots.ts';
import { MetadataStore } from '../../dataplane/src/stores/metadata-store.ts';
import { mintToken } from '../../dataplane/src/partition/auth.ts';

/** A user of the population with its devices' tokens and its one object. */
export interface PopulationUser {
  userId: string;
  token: string;
  objectId: string;
  devices: { deviceId: string; token: string }[];
}

/** Runs `task(i)` for i in 0..count-1 with at most `concurrency` in flight. */
export async function pool(count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

/**
 * Creates `users` users with `devicesPerUser` devices and one object each, in the given slots,
 * with the partition's own store calls: the records the API would write, without a request
 * per record (tens of thousands through the API take minutes).
 */
export async function populateInStore(
  etcd: Etcd3,
  slots: readonly SlotRange[],
  users: number,
  devicesPerUser: number,
  concurrency = 64,
): Promise<PopulationUser[]> {
  const metadata = new MetadataStore(etcd);
  const owned = slots.flatMap((r) => Array.from({ length: r.last - r.first + 1 }, (_, i) => r.first + i));
  const createdAt = new Date().toISOString();
  const result: PopulationUser[] = new Array<PopulationUser>(users);
  await pool(users, concurrency, async (i) => {
    const userId = mintIdInSlot('u', owned[i % owned.length]!);
    const user = mintToken('user', userId);
    if (!(await metadata.createUser({ id: userId, name: `user-${i}`, tokenHash: user.tokenHash, createdAt })))
      throw new Error(`user ${userId} exists`);
    const objectId = mintIdInSlot('o', slotOf(userId));
    const object = {
      id: objectId,
      name: `object-${i}`,
      owner: userId,
      members: { [userId]: 'owner' as const },
      cloudStorage: true,
      createdAt,
      historyFloor: 0,
    };
    if (!(await metadata.createObject(object))) throw new Error(`object ${objectId} exists`);
    const devices: PopulationUser['devices'] = [];
    for (let d = 0; d < devicesPerUser; d++) {
      const deviceId = mintIdInSlot('d', slotOf(userId));
      const device = mintToken('device', deviceId);
      if (!(await metadata.createDevice({ id: deviceId, userId, name: `device-${i}-${d}`, tokenHash: device.tokenHash, createdAt })))
        throw new Error(`device ${deviceId} exists`);
      devices.push({ deviceId, token: device.token });
    }
    result[i] = { userId, token: user.token, objectId, devices };
  });
  return result;
}

/** A long poll held open; `answer` settles with its status and parsed JSON body. */
export interface HeldPoll {
  request: ClientRequest;
  answer: Promise<{ status: number; body: unknown; at: number }>;
  /** Whether `answer` has settled. */
  settled: boolean;
}

/**
 * Sends `GET path` with a bearer token on its own connection, resolving once it is connected.
 * Raw node:http rather than @meshwork/client: a capacity test counts sockets and must know when
 * each poll's connection is open, which `fetch` does not expose.
 */
export async function holdPoll(url: string, token: string, path: string, agent: Agent): Promise<HeldPoll> {
  const target = new URL(url);
  const request = httpRequest({ host: target.hostname, port: target.port, path, agent, headers: { authorization: `Bearer ${token}` } });
  const answer = new Promise<{ status: number; body: unknown; at: number }>((resolve, reject) => {
    request.on('error', reject);
    request.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const at = performance.now();
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, body: text === '' ? undefined : (JSON.parse(text) as unknown), at });
      });
    });
  });
  const held: HeldPoll = { request, answer, settled: false };
  // Also keeps an early failure from being an unhandled rejection; the caller awaits `answer`.
  answer.then(
    () => (held.settled = true),
    () => (held.settled = true),
  );
  await new Promise<void>((resolve, reject) => {
    request.once('socket', (socket) => {
      if (!socket.connecting) resolve();
      else socket.once('connect', () => resolve());
    });
    request.once('error', reject);
    request.end();
  });
  return held;
}

/** The soft limit on open files of a process ("self" or a pid), from /proc. */
export function openFilesLimit(pid: number | 'self' = 'self'): number {
  const limits = readFileSync(`/proc/${pid}/limits`, 'utf8');
  const match = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
  if (!match) throw new Error(`cannot read the open-files limit of process ${pid}`);
  return match[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(match[1]);
}

/** How many file descriptors a process has open. */
export function openFiles(pid: number | 'self' = 'self'): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** How many sockets a process has open (connections and listeners). */
export function openSockets(pid: number): number {
  let sockets = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) sockets++;
    } catch {
      // Closed while we looked.
    }
  }
  return sockets;
}

/** Fails with a clear message unless this process and `pid` may each open `needed` more files. */
export function requireOpenFiles(needed: number, pid: number): void {
  for (const who of ['self', pid] as const) {
    const limit = openFilesLimit(who);
    const free = limit - openFiles(who);
    if (free < needed) {
      throw new Error(
        `process ${who === 'self' ? process.pid : who} may open ${limit} files and has ${limit - free} open; ` +
          `${needed} long polls need ${needed} more: raise the limit (ulimit -n ${needed + 2000} or more) and run again`,
      );
    }
  }
}
