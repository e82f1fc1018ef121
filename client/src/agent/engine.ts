// The agent's executor: reads the world (the folder, the server's change feed, the state
// database), asks the pure planner (plan.ts) what to do, and does it. Every step is idempotent
// and level-triggered, so a pass cut short anywhere (kill -9 included) is finished by the next:
// the base moves only after a commit or a local write succeeded, and the remote record with its
// cursor is one transaction (state.ts). Continuous sync (`run`) adds the notification long
// poll, fs.watch hints and the periodic scan, with backoff on failures (ADR 36).
import { randomBytes, createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { chmod, lstat, mkdir, open, readdir, rename, rm, rmdir, unlink, utimes, type FileHandle } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { ApiError } from '@meshwork/contract/errors';
import { processGcPacer } from '@meshwork/contract/gc-pacer';
import { maxBlockSize } from '../blocks.ts';
import { abortableSleep, type MeshworkClient } from '../client.ts';
import { errorFromAnswer, NetworkError, RequestAbortedError, RequestTimeoutError, UnexpectedAnswerError } from '../errors.ts';
import { BlockBuffers } from '../block-buffers.ts';
import { downloadBlocksToStream } from '../node.ts';
import { grantsByBlock } from '../p2p/grant.ts';
import { fetchFromPeers, grantOf, PeerConnections, type PeerSource, type WantedBlock } from '../p2p/peer-client.ts';
import type { BlockLocation } from '../p2p/peer-server.ts';
import { connectTimeoutFor, FailedEndpoints } from '../p2p/reach.ts';
import { fetchThroughRelay, relayRetryDelayMs } from '../p2p/relay-fetch.ts';
import { parseRetryAfter } from '../retry.ts';
import type { BlockRef, Entry, Role, Sources } from '../types.ts';
import type { AgentEvent, AgentOptions, AgentStatus, ProblemCode, SyncReport } from './index.ts';
import { AgentStopped } from './stopped.ts';
import { conflictCopyPath, invalidNameReason, planSync, type PathStates, type PlannedAction, type Precondition } from './plan.ts';
import {
  FileChangedError,
  blockStream,
  fileChunks,
  contentHashOfBlocks,
  isBuiltinIgnored,
  isIgnored,
  loadIgnore,
  sameStat,
  scanFolder,
  signatureOf,
  tempPrefix,
  type LocalEntry,
  type ScanResult,
} from './scan.ts';
import { StateDb, statusFromDb, type BaseRow } from './state.ts';
import { fileSink, fileSinkBufferBytes } from './file-sink.ts';
import { LocationBatches } from './locations.ts';
import { FolderWatcher } from './watch.ts';

/** Passes of scan-plan-execute within one `syncOnce` (a conflict copy is uploaded by the next). */
const maxRounds = 6;
/** The longest backoff after failures in `run`. */
const maxBackoffMs = 30_000;
/** Uploads and downloads carried out at once within a pass. */
const actionParallelism = 4;
/** ...when each of them is one block at most: round trips, not bytes, bound those. */
const smallFileParallelism = 16;
/**
 * A file of one block up to this size, in an object kept in the cloud, is read from the cloud
 * without asking for its sources: a peer would cost a `sources` round trip to the service and a
 * connection to save the service at most this many bytes (ADR 81).
 */
export const peerMinBytes = 64 * 1024;
/** The notification poll asks again once the pass a notification set off ended, or after this long. */
const notificationRepollMs = 30_000;
/** A pass after fs.watch hints waits until no hint came for this long (a burst of writes is one pass)... */
const hintQuietMs = 100;
/** ...but no longer than this after the first. */
const hintDebounceMs = 1000;
/** The heap is given back once no pass has started for this long after one ended (ADR 85). */
const idleSettleMs = 30_000;
/** Blocks per `missing` request (the API's limit, docs/api.md). */
const maxMissingAsked = 10_000;

const problemCodesRetriedEachPass: ReadonlySet<ProblemCode> = new Set([
  'symlink',
  'not_a_file',
  'read_error',
  'write_error',
  'read_only',
  'waiting',
]);

/** What `meshwork status` says of a peer-to-peer-only file no online device holds. */
export const waitingMessage = 'waiting for a device that holds it';

/** The wait before trying again the files that wait for a holder, after `passes` passes in a row found one waiting: 1 s doubling, at most `maxMs`. */
export function waitingRetryDelayMs(passes: number, maxMs: number): number {
  return Math.min(maxMs, 1000 * 2 ** Math.max(0, Math.min(passes - 1, 16)));
}

/** A file's content is on devices only, and none that holds it answered. */
class WaitingForHolder extends Error {
  constructor(detail: string) {
    super(`${waitingMessage} (${detail})`);
    this.name = 'WaitingForHolder';
  }
}

/** The HTTP status of an answer error, or undefined for anything else. */
function statusOf(err: unknown): number | undefined {
  return err instanceof ApiError || err instanceof UnexpectedAnswerError ? err.status : undefined;
}

function codeOf(err: unknown): string | undefined {
  return err instanceof ApiError || err instanceof UnexpectedAnswerError ? err.code : undefined;
}

/** Whether a failure is worth waiting out (the network, throttling, a server busy or restarting). */
export function isTransient(err: unknown): boolean {
  if (err instanceof NetworkError || err instanceof RequestTimeoutError) return true;
  const status = statusOf(err);
  return status === 429 || status === 502 || status === 503 || status === 504 || status === 408;
}

/**
 * The wait before the next attempt after `failures` consecutive failures: the server's
 * Retry-After when it gave one (never less, plus up to 20 % so that clients told the same second
 * spread out), else exponential from 500 ms, capped at 30 s, with jitter over its upper half.
 */
export function backoffMs(failures: number, random: number, retryAfterMs?: number): number {
  if (retryAfterMs !== undefined) return Math.round(retryAfterMs * (1 + 0.2 * random));
  const exp = Math.min(maxBackoffMs, 500 * 2 ** Math.max(0, failures - 1));
  return Math.round(exp * (0.5 + random * 0.5));
}

function retryAfterOf(err: unknown): number | undefined {
  if (!(err instanceof ApiError || err instanceof UnexpectedAnswerError)) return undefined;
  const value = err.headers['retry-after'];
  return value !== undefined && /^\d+$/.test(value.trim()) ? Number(value) * 1000 : undefined;
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/** The sync engine of one folder and one object (see index.ts for the public surface). */
export class SyncAgent {
  readonly #options: AgentOptions;
  readonly #client: MeshworkClient;
  readonly #state: StateDb;
  readonly #dir: string;
  #role: Role | undefined;
  /** False for a peer-to-peer-only object: its blocks are never sent to the service (ADR 55). */
  /** Whether the object keeps content in the cloud; undefined until the object was read. */
  #cloudStorage: boolean | undefined;
  #closed = false;
  /** The pass in progress: passes never overlap. */
  #running: Promise<unknown> = Promise.resolve();
  /** Aborted by `close`, so that work in flight stops. */
  readonly #closing = new AbortController();
  /** Read buffers of uploads, used again block after block (scan.ts). */
  // What one upload holds at most: 3 × its parallelism of 4, its blocks going to the store (ADR 80).
  readonly #buffers = new BlockBuffers(12);
  // Until the first pass went through, an upload may meet blocks a killed agent sent to the store and never confirmed.
  #checkStore = true;

  private constructor(options: AgentOptions, state: StateDb) {
    this.#options = options;
    this.#client = options.client;
    this.#state = state;
    this.#dir = options.dir;
  }

  /** Opens the agent: creates the folder and the state database. */
  static async open(options: AgentOptions): Promise<SyncAgent> {
    await mkdir(options.dir, { recursive: true });
    const state = new StateDb(options.statePath);
    state.setMeta('objectId', options.objectId);
    state.setMeta('dir', options.dir);
    return new SyncAgent(options, state);
  }

  #emit(event: AgentEvent): void {
    try {
      this.#options.onEvent?.(event);
    } catch {
      // A listener's failure is the listener's: the engine carries on.
    }
  }

  #abs(path: string): string {
    return join(this.#dir, ...path.split('/'));
  }

  /** What the engine cannot go on from: records it and answers the AgentStopped to raise. */
  #stopFor(err: unknown): AgentStopped | undefined {
    if (err instanceof AgentStopped) return err;
    const status = statusOf(err);
    let stopped: AgentStopped | undefined;
    if (status === 401) {
      stopped = new AgentStopped(
        'unauthorized',
        `The server refused this device's token (401): the device was revoked or its token is wrong; register the device again.`,
      );
    }
    if (stopped !== undefined) this.#state.recordStopped(stopped.code, stopped.message, new Date());
    return stopped;
  }

  #objectGone(detail: string): AgentStopped {
    const stopped = new AgentStopped(
      'object_gone',
      `Object ${this.#options.objectId} is gone for this user (${detail}): it was deleted, or this user was removed from it.`,
    );
    this.#state.recordStopped(stopped.code, stopped.message, new Date());
    return stopped;
  }

  /** Confirms a 404 on an entry route means the object is gone (and not just the entry). */
  async #checkObject(signal: AbortSignal): Promise<void> {
    try {
      const object = await this.#client.getObject(this.#options.objectId, { signal });
      this.#role = object.role;
      this.#cloudStorage = object.cloudStorage;
    } catch (err) {
      if (statusOf(err) === 404) throw this.#objectGone('404 on the object');
      throw err;
    }
  }

  // ---- remote

  /** Reads the change feed from the stored cursor into the remote record (relists when the cursor expired). */
  async #pullRemote(signal: AbortSignal): Promise<void> {
    const objectId = this.#options.objectId;
    const cursor = this.#state.getMeta('cursor');
    try {
      if (cursor !== null) {
        try {
          const { changes, cursor: next } = await this.#client.listAllChanges(objectId, { cursor, signal });
          this.#state.transaction(() => {
            this.#state.putRemote(changes);
            this.#state.setMeta('cursor', next);
          });
          return;
        } catch (err) {
          if (codeOf(err) !== 'cursor_expired') throw err;
        }
      }
      const { entries, cursor: next } = await this.#client.listAllEntries(objectId, { signal });
      this.#state.transaction(() => {
        this.#state.replaceRemote(entries);
        this.#state.setMeta('cursor', next);
      });
    } catch (err) {
      if (statusOf(err) === 404) throw this.#objectGone('404 on its entries');
      throw err;
    }
  }

  // ---- one pass

  /** One full pass: scan the folder, apply remote changes, push local ones. */
  async syncOnce(signal?: AbortSignal): Promise<SyncReport> {
    if (this.#closed) throw new Error('the agent is closed');
    const previous = this.#running;
    let release!: () => void;
    this.#running = new Promise<void>((resolve) => (release = resolve));
    await previous.catch(() => undefined);
    try {
      const pass = (): Promise<SyncReport> =>
        this.#pass(AbortSignal.any([this.#closing.signal, ...(signal === undefined ? [] : [signal])]));
      const { tracing } = this.#options;
      return await (tracing ? tracing.startTrace('meshwork sync pass', { 'meshwork.object_id': this.#options.objectId }, pass) : pass());
    } catch (err) {
      throw this.#stopFor(err) ?? err;
    } finally {
      this.#blockIndex = undefined;
      // The read buffers serve the uploads of one pass; an agent waiting for the next change keeps none.
      this.#buffers.clear();
      release();
    }
  }

  // ---- peer-to-peer (ADR 55)

  /** Peer endpoints whose direct connection timed out recently (ADR 65): the relay is asked at once. */
  readonly #failedEndpoints = new FailedEndpoints();
  /** Connections to peers, kept a few seconds between files (a burst of small files makes one handshake per peer). */
  readonly #peerConnections = new PeerConnections();

  /** Files found waiting for a holder during the pass in progress. */
  readonly #waitingInPass = new Map<string, WaitingForHolder>();

  #waiting(path: string, detail: string): WaitingForHolder {
    const err = new WaitingForHolder(detail);
    this.#waitingInPass.set(path, err);
    return err;
  }

  /**
   * Fetches blocks through the holders' relays (`GET /v1/devices/{id}/remote/blocks/{sha}` with
   * the holder's grant in `Meshwork-Grant`), holder after holder, several blocks
   * in flight (ADR 65); a holder whose relay answers anything but the block (offline, busy, no
   * such route) is left for the next. Answers what is still missing.
   */
  async #fetchThroughRelays(
    left: WantedBlock[],
    peers: PeerSource[],
    write: (b: WantedBlock, data: Uint8Array) => Promise<void>,
    signal: AbortSignal,
    counted: (n: number) => void,
  ): Promise<WantedBlock[]> {
    let missing = left;
    for (const peer of peers) {
      missing = await this.#fetchThroughRelay(peer, missing, write, signal, counted);
      if (missing.length === 0) break;
    }
    return missing;
  }

  /** The blocks through one holder's relay, several at once; answers those it did not deliver. */
  #fetchThroughRelay(
    peer: PeerSource,
    blocks: WantedBlock[],
    write: (b: WantedBlock, data: Uint8Array) => Promise<void>,
    signal: AbortSignal,
    counted: (n: number) => void,
  ): Promise<WantedBlock[]> {
    return fetchThroughRelay({
      blocks,
      fetch: async (b) => {
        for (let attempt = 1; ; attempt++) {
          signal.throwIfAborted();
          let answer: { status: number; headers: Record<string, string>; bytes: Uint8Array };
          try {
            answer = await this.#client.remoteBlock(peer.deviceId, b.sha256, grantOf(peer, b.sha256), { signal });
          } catch (err) {
            if (signal.aborted) throw err;
            return undefined; // the connection failed or was cut short: the next holder, or the cloud
          }
          const { status, headers, bytes } = answer;
          if (status === 200) {
            const ok = bytes.length === b.size && createHash('sha256').update(bytes).digest('hex') === b.sha256;
            return ok ? bytes : undefined;
          }
          // Over this device's byte rate, or the holder's relay busy: wait as told, then the same block again.
          // The error envelope's code, read as every answer's is (a body the size of a block is none).
          const code =
            bytes.length > 65_536 ? undefined : errorFromAnswer(status, headers, new TextDecoder().decode(bytes), 'relayed block').code;
          const wait = relayRetryDelayMs(status, code, parseRetryAfter(headers['retry-after'], Date.now()), attempt);
          if (wait === undefined) return undefined;
          await abortableSleep(wait, signal);
        }
      },
      write: async (b, data) => {
        await write(b, data);
        counted(data.length);
      },
    });
  }

  /**
   * Where each block of the synced files sits, from the base: dropped after every pass and built
   * again when a peer next asks (a stale entry fails the stat check, never serves).
   */
  #blockIndex: Map<string, BlockLocation[]> | undefined;

  #indexBlocks(): Map<string, BlockLocation[]> {
    const index = new Map<string, BlockLocation[]>();
    for (const b of this.#state.allBase().values()) {
      if (b.kind !== 'file') continue;
      let offset = 0;
      const path = this.#abs(b.path);
      for (const block of b.blocks) {
        const list = index.get(block.sha256) ?? [];
        if (list.length < 4) list.push({ path, offset, size: block.size, stat: { size: b.size, mtimeMs: b.mtimeMs, ino: b.ino } });
        index.set(block.sha256, list);
        offset += block.size;
      }
    }
    this.#blockIndex = index;
    return index;
  }

  /** Where this agent holds a block of its object (the peer listener reads and verifies it there). */
  locateBlock(objectId: string, sha256: string): BlockLocation[] {
    if (objectId !== this.#options.objectId || this.#closed) return [];
    return (this.#blockIndex ?? this.#indexBlocks()).get(sha256) ?? [];
  }

  /** Whether a path relative to the folder is left out of syncing, by the rules of the last scan (read now before the first). */
  ignores(path: string, directory: boolean): boolean {
    return isIgnored(this.#rules ?? loadIgnore(this.#dir, this.#ownFiles()), path, directory);
  }

  /** Counts bytes the peer listener served. */
  countServed(bytes: number): void {
    if (!this.#closed) this.#state.addCount('bytesServed', bytes);
  }

  /**
   * Fetches a file from the devices that hold it, then what they did not deliver from the cloud
   * block by block (ADR 55). Answers false when the whole file is better streamed from the cloud
   * (no device holds it, or its sources cannot be read); throws WaitingForHolder when neither a
   * device nor the cloud has it.
   */
  async #fetchFromSources(path: string, entry: Entry, handle: FileHandle, signal: AbortSignal): Promise<boolean> {
    const peer = this.#options.peer!;
    const objectId = this.#options.objectId;
    // Found waiting earlier in this pass: its later rounds do not ask (and time out on) the same peers again.
    const already = this.#waitingInPass.get(path);
    if (already !== undefined) throw already;
    let sources: Sources;
    try {
      sources = peer.sources
        ? await peer.sources(objectId, path, entry.version, signal)
        : await this.#client.sources(objectId, path, { version: entry.version, signal });
    } catch (err) {
      if (isTransient(err) || signal.aborted || statusOf(err) === 401) throw err;
      return false; // e.g. a newer version replaced this one (404): the cloud stream and the change feed sort it out
    }
    const cloud = sources.sources.some((s) => s.kind === 'cloud');
    const peers: PeerSource[] = [];
    for (const s of sources.sources) {
      const grant = s.kind === 'device' ? (s.grant ?? s.grants?.[0]) : undefined;
      if (s.kind !== 'device' || grant === undefined || s.fingerprint === undefined || s.endpoints.length === 0) continue;
      // A file of more blocks than one grant names comes with several (ADR 66).
      const blockGrants = s.grants !== undefined && s.grants.length > 1 ? grantsByBlock(s.grants) : undefined;
      peers.push({
        deviceId: s.deviceId,
        endpoints: s.endpoints,
        fingerprint: s.fingerprint,
        grant,
        ...(blockGrants === undefined ? {} : { blockGrants }),
      });
    }
    if (peers.length === 0) {
      if (cloud) return false;
      throw this.#waiting(path, 'no device that holds it is online');
    }
    const wanted: WantedBlock[] = [];
    let offset = 0;
    for (const b of entry.blocks) {
      wanted.push({ ...b, offset });
      offset += b.size;
    }
    let written = 0;
    const progress = (n: number): void => {
      written += n;
      this.#emit({ type: 'download', path, bytes: written, totalBytes: entry.size });
    };
    const write = async (b: WantedBlock, data: Uint8Array): Promise<void> => {
      await handle.write(data, 0, data.length, b.offset);
    };
    const interfaces = Object.values(networkInterfaces()).flatMap((list) => list ?? []);
    const result = await fetchFromPeers({
      blocks: wanted,
      peers,
      write,
      signal,
      // A set timeout (tests) is every endpoint's; otherwise an endpoint on no network of this device gets a short one (ADR 65).
      connectTimeoutMs: peer.connectTimeoutMs ?? ((endpoint: string) => connectTimeoutFor(endpoint, interfaces)),
      failedEndpoints: this.#failedEndpoints,
      connections: this.#peerConnections,
      onBlock: (_, n) => {
        this.#state.addCount('bytesFromPeers', n);
        progress(n);
      },
    });
    if (result.left.length === 0) return true;
    // No direct path to a holder: through its relay, one hop via the service (ADR 52).
    result.left = await this.#fetchThroughRelays(result.left, peers, write, signal, (n) => {
      this.#state.addCount('bytesFromRelays', n);
      progress(n);
    });
    if (result.left.length === 0) return true;
    if (!cloud) throw this.#waiting(path, `no device that holds it answered: ${[...result.dropped.values()].join('; ')}`);
    for (const b of result.left) {
      signal.throwIfAborted();
      const data = await this.#client.getBlock(b.sha256, { signal });
      if (data.length !== b.size || createHash('sha256').update(data).digest('hex') !== b.sha256) return false;
      await write(b, data);
      this.#state.addCount('bytesFromCloud', data.length);
      progress(data.length);
    }
    return true;
  }

  async #pass(signal: AbortSignal): Promise<SyncReport> {
    const report: SyncReport = {
      uploaded: 0,
      downloaded: 0,
      deletedRemote: 0,
      deletedLocal: 0,
      conflicts: 0,
      problems: 0,
      cursor: '',
      uploadedBlocks: 0,
      uploadedBytes: 0,
    };
    this.#waitingInPass.clear();
    for (let round = 0; round < maxRounds; round++) {
      signal.throwIfAborted();
      const started = performance.now();
      const rules = loadIgnore(this.#dir, this.#ownFiles());
      const base = this.#state.allBase();
      const scan = await scanFolder(this.#dir, this.#state, base, rules);
      this.#rules = rules;
      this.#dirs = [...scan.entries].filter(([, e]) => e.kind === 'directory').map(([path]) => path);
      this.#emit({ type: 'scan', files: scan.files, changed: scan.changed, ms: Math.round(performance.now() - started) });
      let unreachable: Error | undefined;
      try {
        // The role may come from a notification first; whether the object keeps content in the
        // cloud only from the object itself, before anything is uploaded.
        if (this.#role === undefined || this.#cloudStorage === undefined) await this.#checkObject(signal);
        await this.#pullRemote(signal);
      } catch (err) {
        unreachable = err instanceof Error ? err : new Error(String(err));
      }
      const remote = this.#state.allRemote();
      const { actions, blocked } = this.#plan(base, scan, remote, rules);
      const pending = actions
        .filter((a) => a.action.type !== 'record' && a.action.type !== 'read-only')
        .map((a) => ({ path: a.path, direction: directionOf(a) }));
      // Recorded even when the server is out of reach: `meshwork status` shows what waits to go up.
      this.#state.setPending(pending);
      if (unreachable !== undefined) throw unreachable;
      if (pending.length === 0) {
        for (const a of actions) await this.#execute(a, scan, base, remote, report, signal);
        this.#recordProblems(scan, blocked, actions);
        break;
      }
      this.#known = await this.#askMissing(actions, scan, signal);
      this.#located = this.#locationsFor(actions, remote, signal);
      const sizeOf = (a: PlannedAction): number | undefined =>
        a.action.type === 'upload' ? scan.entries.get(a.path)?.stat.size : remote.get(a.path)?.size;
      await this.#executeAll(actions, (a) => this.#execute(a, scan, base, remote, report, signal), signal, sizeOf);
      this.#recordProblems(scan, blocked, actions);
    }
    report.problems = this.#state.allProblems().size;
    report.cursor = this.#state.getMeta('cursor') ?? '';
    // Every entry up to the cursor is here: presence may say so (one hold for the whole object).
    if (this.#state.pendingDownloads() === 0 && report.cursor !== '' && this.#state.getMeta('heldCursor') !== report.cursor) {
      this.#state.setMeta('heldCursor', report.cursor);
      this.#presenceWake?.();
    }
    this.#state.setMeta('lastSyncAt', new Date().toISOString());
    // A pass that went through clears an earlier stop (a device registered again, a member re-added).
    this.#state.setMeta('stopped', null);
    // Whatever an earlier life of the agent sent to the store and did not confirm is confirmed now.
    this.#checkStore = false;
    return report;
  }

  /**
   * Carries out a plan in its order. Uploads and downloads, which touch one path each and come
   * after the conflicts and before the deletes, run a few at a time: a folder of many small
   * files is bound by round trips, not bandwidth. The rest run one by one (a directory is
   * removed after what it held).
   */
  async #executeAll(
    actions: PlannedAction[],
    run: (a: PlannedAction) => Promise<void>,
    signal: AbortSignal,
    sizeOf: (a: PlannedAction) => number | undefined,
  ): Promise<void> {
    for (let i = 0; i < actions.length;) {
      signal.throwIfAborted();
      const type = actions[i]!.action.type;
      if (type !== 'upload' && type !== 'download') {
        await run(actions[i++]!);
        continue;
      }
      let end = i;
      while (end < actions.length && (actions[end]!.action.type === 'upload' || actions[end]!.action.type === 'download')) end++;
      const group = actions.slice(i, end);
      i = end;
      let next = 0;
      let failing = false;
      const worker = async (): Promise<void> => {
        while (next < group.length && !failing) {
          signal.throwIfAborted();
          try {
            await run(group[next++]!);
          } catch (err) {
            failing = true;
            throw err;
          }
        }
      };
      // A failure of one (the network, a stop) ends the pass: the others finish their current action first.
      // Files of one block each hold one buffer each at most: more of them at once cost little memory.
      const width = group.every((a) => (sizeOf(a) ?? Infinity) <= maxBlockSize) ? smallFileParallelism : actionParallelism;
      const results = await Promise.allSettled(Array.from({ length: Math.min(width, group.length) }, worker));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
    }
  }

  /**
   * Asks `missing` once for the blocks of every file this round uploads (as the scan hashed
   * them), so that each upload of a small file is its block and its commit, not three round
   * trips. A single upload asks for itself, as before. An answer gone stale by the time a file
   * is sent costs at most a block sent again, or a `409 blocks_missing` that its upload
   * answers by asking again.
   */
  async #askMissing(actions: PlannedAction[], scan: ScanResult, signal: AbortSignal): Promise<Map<string, boolean>> {
    const known = new Map<string, boolean>();
    const uploads = actions.filter((a) => a.action.type === 'upload' && a.reuseBlocksOf === undefined);
    // A peer-to-peer-only object's blocks stay on its devices: nothing to ask.
    if (uploads.length < 2 || this.#cloudStorage === false) return known;
    const wanted = new Set<string>();
    for (const a of uploads) {
      const local = scan.entries.get(a.path);
      if (local?.kind === 'file') for (const b of local.blocks) wanted.add(b.sha256);
    }
    const all = [...wanted];
    for (let i = 0; i < all.length; i += maxMissingAsked) {
      const chunk = all.slice(i, i + maxMissingAsked);
      const missing = new Set(await this.#client.missingBlocks(chunk, { signal }));
      for (const sha256 of chunk) known.set(sha256, missing.has(sha256));
    }
    return known;
  }

  /**
   * The URLs of this round's small downloads (files of one block read from the cloud, not asked
   * of peers: #worthPeers), asked for 500 at a time as the downloads reach them, so that each is
   * one `GET` at the store by its presigned URL instead of a `GET …/content/{path}` the partition
   * answers from the store (ADR 90). A single download reads its file as before; so does one
   * whose URL is missing or refused.
   */
  #locationsFor(actions: PlannedAction[], remote: Map<string, Entry>, signal: AbortSignal): LocationBatches | undefined {
    if (this.#cloudStorage !== true) return undefined;
    const wanted: string[] = [];
    for (const a of actions) {
      const entry = a.action.type === 'download' ? remote.get(a.path) : undefined;
      if (entry?.kind !== 'file' || entry.blocks.length !== 1) continue;
      if (this.#options.peer !== undefined && this.#worthPeers(entry)) continue;
      wanted.push(entry.blocks[0]!.sha256);
    }
    const batches = new LocationBatches(wanted, (shas) => this.#client.blockLocations(shas, { signal, checksumMode: true }));
    return batches.size < 2 ? undefined : batches;
  }

  /** This round's presigned URLs of small downloads (see #locationsFor). */
  #located: LocationBatches | undefined;

  /** The ignore rules and the directories of the last scan: what `run` watches. */
  #rules: ReturnType<typeof loadIgnore> | undefined;
  #dirs: string[] = [];

  /** This round's answers of `missing` (see #askMissing); a block sent is marked present. */
  #known = new Map<string, boolean>();

  /** The state database and its WAL files when they live inside the folder: never synced. */
  #ownFiles(): string[] {
    const rel = relative(this.#dir, this.#options.statePath);
    if (rel.startsWith('..') || rel === '') return [];
    const p = rel.split(sep).join('/');
    return [p, `${p}-wal`, `${p}-shm`, `${p}-journal`];
  }

  /** Problems that hold a path back until its file changes (invalid_name, too_large), by path. */
  #stickyProblems(scan: ScanResult): Set<string> {
    const out = new Set<string>();
    for (const [path, p] of this.#state.allProblems()) {
      if (problemCodesRetriedEachPass.has(p.code)) continue;
      const local = scan.entries.get(path);
      if (local !== undefined && (local.kind === 'directory' ? p.signature === 'directory' : signatureOf(local.stat) === p.signature))
        out.add(path);
      else this.#state.clearProblem(path);
    }
    return out;
  }

  #plan(
    base: Map<string, BaseRow>,
    scan: ScanResult,
    remote: Map<string, Entry>,
    rules: ReturnType<typeof loadIgnore>,
  ): { actions: PlannedAction[]; blocked: Set<string> } {
    const sticky = this.#stickyProblems(scan);
    const skipped = [...scan.skipped];
    const isDirectory = (path: string): boolean =>
      base.get(path)?.kind === 'directory' || remote.get(path)?.kind === 'directory' || scan.entries.get(path)?.kind === 'directory';
    // Ignored paths are left alone on both sides: a remote `build/` is not made here when `build/` is ignored.
    const held = (path: string): boolean =>
      scan.skipped.has(path) ||
      sticky.has(path) ||
      skipped.some((s) => path.startsWith(`${s}/`)) ||
      isIgnored(rules, path, isDirectory(path));
    const paths = new Map<string, PathStates>();
    for (const path of new Set([...base.keys(), ...scan.entries.keys(), ...remote.keys()])) {
      if (held(path)) continue;
      const b = base.get(path);
      const l = scan.entries.get(path);
      const r = remote.get(path);
      paths.set(path, {
        base: b && { kind: b.kind, hash: b.contentHash, version: b.version },
        local: l && { kind: l.kind, hash: l.contentHash },
        remote: r && { kind: r.kind, hash: r.kind === 'file' ? r.contentHash : null, version: r.version, deleted: r.deleted },
      });
    }
    // Content this device can commit without sending a block: committed by this device's
    // user before (the base) or named by an entry of the object (possession through it).
    const blocksKnown = new Map<string, string>();
    for (const b of base.values())
      if (b.kind === 'file' && b.contentHash !== null && b.blocks.length > 0) blocksKnown.set(b.contentHash, b.path);
    for (const r of remote.values())
      if (!r.deleted && r.kind === 'file' && r.blocks.length > 0 && !blocksKnown.has(r.contentHash)) blocksKnown.set(r.contentHash, r.path);
    const readOnly = this.#role === 'reader';
    return { actions: planSync(paths, { readOnly, blocksKnown }), blocked: sticky };
  }

  /** Writes this pass's problems: the scan's, the read-only paths, and the sticky ones kept. */
  #recordProblems(scan: ScanResult, sticky: Set<string>, actions: PlannedAction[]): void {
    const now = new Date();
    const current = new Set<string>(sticky);
    for (const [path, p] of scan.problems) {
      current.add(path);
      if (this.#state.putProblem(path, p.code, p.message, p.signature, now)) this.#emit({ type: 'problem', path, ...p });
    }
    for (const a of actions) {
      if (a.action.type !== 'read-only') continue;
      current.add(a.path);
      const message = 'the object is shared with this user as a reader: the local change is not uploaded';
      if (this.#state.putProblem(a.path, 'read_only', message, 'read_only', now))
        this.#emit({ type: 'problem', path: a.path, code: 'read_only', message });
    }
    for (const [path, p] of this.#state.allProblems()) {
      if (current.has(path) || this.#fresh.has(path)) continue;
      if (problemCodesRetriedEachPass.has(p.code)) this.#state.clearProblem(path);
    }
    this.#fresh.clear();
  }

  /** Problems recorded by the executor during this pass (kept by `#recordProblems`). */
  readonly #fresh = new Set<string>();

  #problem(path: string, code: ProblemCode, message: string, signature: string): void {
    this.#fresh.add(path);
    if (this.#state.putProblem(path, code, message, signature, new Date())) this.#emit({ type: 'problem', path, code, message });
  }

  // ---- actions

  async #execute(
    planned: PlannedAction,
    scan: ScanResult,
    base: Map<string, BaseRow>,
    remote: Map<string, Entry>,
    report: SyncReport,
    signal: AbortSignal,
  ): Promise<void> {
    const { path, action } = planned;
    const local = scan.entries.get(path);
    const entry = remote.get(path);
    try {
      switch (action.type) {
        case 'nothing':
        case 'read-only':
          return;
        case 'record':
          this.#record(path, local, entry);
          return;
        case 'upload':
          if (await this.#upload(path, local!, action.precondition, planned.reuseBlocksOf, base, remote, report, signal)) report.uploaded++;
          return;
        case 'download':
          if (await this.#download(path, entry!, local, signal)) report.downloaded++;
          return;
        case 'delete-local':
          if (await this.#deleteLocal(path, local!, entry, report, signal)) report.deletedLocal++;
          return;
        case 'delete-remote': {
          const tombstone = await this.#client.deleteEntry(this.#options.objectId, path, action.ifMatch, { signal });
          this.#state.transaction(() => {
            this.#state.putRemote([tombstone]);
            this.#state.deleteBase(path);
          });
          report.deletedRemote++;
          this.#emit({ type: 'committed', path, version: tombstone.version, direction: 'delete-up' });
          return;
        }
        case 'conflict':
          if (await this.#conflict(path, local!, entry!, scan, remote, signal)) report.conflicts++;
          return;
      }
    } catch (err) {
      await this.#handleActionError(path, err, local, signal);
    }
  }

  /** What a failed action means: stop, wait (raised to `run`), refresh and replan, or a problem. */
  async #handleActionError(path: string, err: unknown, local: LocalEntry | undefined, signal: AbortSignal): Promise<void> {
    if (err instanceof FileChangedError) return; // the next pass reads it again
    if (err instanceof WaitingForHolder) {
      this.#problem(path, 'waiting', err.message, '');
      return;
    }
    if (err instanceof AgentStopped || isTransient(err) || err instanceof RequestAbortedError || signal.aborted) throw err;
    const status = statusOf(err);
    const code = codeOf(err);
    if (status === 401) throw err;
    const signature = local === undefined ? '' : local.kind === 'directory' ? 'directory' : signatureOf(local.stat);
    if (code === 'precondition_failed' || code === 'not_found' || status === 404 || code === 'blocks_missing') {
      if (status === 404) await this.#checkObject(signal);
      // Someone committed first (or the entry is gone): read what is there now; the next round replans.
      await this.#refreshEntry(path, err, signal);
      return;
    }
    if (code === 'invalid_path' || (status === 400 && code !== 'invalid_request')) {
      this.#problem(path, 'invalid_name', `the server refuses this name: ${(err as Error).message}`, signature);
      return;
    }
    if (code === 'entry_too_large' || status === 413) {
      this.#problem(path, 'too_large', `over the maximum entry size: ${(err as Error).message}`, signature);
      return;
    }
    if (status === 403) {
      this.#role = undefined; // the role changed: ask again
      this.#problem(path, 'read_only', `the server refuses writes by this user (403): ${(err as Error).message}`, 'read_only');
      return;
    }
    if (isFsError(err)) {
      this.#problem(path, 'write_error', `the local file could not be written: ${(err as Error).message}`, '');
      return;
    }
    throw err;
  }

  async #refreshEntry(path: string, err: unknown, signal: AbortSignal): Promise<void> {
    const current = err instanceof ApiError ? (err.details.current as Entry | undefined) : undefined;
    if (current !== undefined && typeof current === 'object' && typeof current.version === 'string') {
      this.#state.putRemote([current]);
      return;
    }
    try {
      const answer = await this.#client.getEntry(this.#options.objectId, path, { signal });
      if (!answer.notModified) this.#state.putRemote([answer.entry]);
    } catch (e) {
      if (statusOf(e) !== 404) throw e;
      const known = this.#state.allRemote().get(path);
      if (known !== undefined && !known.deleted) this.#state.putRemote([{ ...known, deleted: true, blocks: [] }]);
    }
  }

  #record(path: string, local: LocalEntry | undefined, entry: Entry | undefined): void {
    if (local === undefined || entry === undefined || entry.deleted) {
      this.#state.deleteBase(path);
      return;
    }
    this.#state.putBase({
      path,
      kind: entry.kind,
      ...local.stat,
      blocks: entry.kind === 'file' ? entry.blocks : [],
      contentHash: entry.kind === 'file' ? entry.contentHash : null,
      version: entry.version,
    });
  }

  /** The local file still is what the scan saw (never overwrite or delete an edit made since). */
  async #unchangedSinceScan(path: string, local: LocalEntry | undefined): Promise<boolean> {
    try {
      const s = await lstat(this.#abs(path));
      if (local === undefined) return false;
      if (local.kind === 'directory') return s.isDirectory();
      return s.isFile() && sameStat({ size: s.size, mtimeMs: s.mtimeMs, ino: s.ino, mode: s.mode }, local.stat);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return local === undefined;
      throw err;
    }
  }

  async #upload(
    path: string,
    local: LocalEntry,
    precondition: Precondition,
    reuseBlocksOf: string | undefined,
    base: Map<string, BaseRow>,
    remote: Map<string, Entry>,
    report: SyncReport,
    signal: AbortSignal,
  ): Promise<boolean> {
    const reason = invalidNameReason(path);
    if (reason !== undefined) {
      this.#problem(path, 'invalid_name', reason, local.kind === 'directory' ? 'directory' : signatureOf(local.stat));
      return false;
    }
    const objectId = this.#options.objectId;
    const mtime = new Date(local.stat.mtimeMs).toISOString();
    let entry: Entry;
    if (local.kind === 'directory') {
      entry = (await this.#client.putEntry(objectId, path, { kind: 'directory', mtime }, precondition, { signal })).entry;
    } else {
      entry = await this.#uploadFile(path, local, precondition, reuseBlocksOf, base, remote, report, signal);
    }
    this.#state.transaction(() => {
      this.#state.putRemote([entry]);
      this.#state.putBase({
        path,
        kind: entry.kind,
        ...local.stat,
        blocks: entry.kind === 'file' ? entry.blocks : [],
        contentHash: entry.kind === 'file' ? entry.contentHash : null,
        version: entry.version,
      });
    });
    this.#emit({ type: 'committed', path, version: entry.version, direction: 'up' });
    return true;
  }

  async #uploadFile(
    path: string,
    local: LocalEntry,
    precondition: Precondition,
    reuseBlocksOf: string | undefined,
    base: Map<string, BaseRow>,
    remote: Map<string, Entry>,
    report: SyncReport,
    signal: AbortSignal,
  ): Promise<Entry> {
    const objectId = this.#options.objectId;
    const abs = this.#abs(path);
    const mtime = new Date(local.stat.mtimeMs).toISOString();
    if (reuseBlocksOf !== undefined) {
      // A rename or a copy: the blocks are already possessed, so the commit alone does it. The
      // file must still be what was hashed; a 409 (blocks collected since) falls back to sending.
      const known = base.get(reuseBlocksOf)?.blocks ?? remote.get(reuseBlocksOf)?.blocks;
      if (known !== undefined && contentHashOfBlocks(known) === local.contentHash && (await this.#unchangedSinceScan(path, local))) {
        try {
          return (await this.#client.putEntry(objectId, path, { kind: 'file', blocks: known, mtime }, precondition, { signal })).entry;
        } catch (err) {
          if (codeOf(err) !== 'blocks_missing') throw err;
        }
      }
    }
    if (this.#cloudStorage === false) {
      // Peer-to-peer only: the commit names the blocks as the scan hashed them and no block is
      // sent; devices fetch them from this one. The file must still be what was hashed. A server
      // that still asks for the blocks (409 blocks_missing) gets them as for any object.
      if (!(await this.#unchangedSinceScan(path, local))) throw new FileChangedError(path);
      try {
        return (await this.#client.putEntry(objectId, path, { kind: 'file', blocks: local.blocks, mtime }, precondition, { signal })).entry;
      } catch (err) {
        if (codeOf(err) !== 'blocks_missing') throw err;
      }
    }
    // A file of several blocks is sent as the scan hashed it, each block read while it goes (ADR 83).
    if (this.#cloudStorage === true && local.blocks.length > 1) return this.#sendFromDisk(path, local, precondition, mtime, report, signal);
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await this.#client.upload(objectId, path, fileChunks(abs, local.stat, signal, this.#buffers), precondition, {
          ...this.#sendOptions(path, local.stat.size, attempt, signal),
          mtime,
          onBlockReleased: (data) => this.#buffers.give(data),
        });
        report.uploadedBlocks = (report.uploadedBlocks ?? 0) + result.uploadedBlocks;
        report.uploadedBytes = (report.uploadedBytes ?? 0) + result.uploadedBytes;
        if (result.entry.contentHash !== local.contentHash) {
          // The commit is the file as read now; the scan's hash was older. The base records what was committed.
          local.contentHash = result.entry.contentHash;
          local.blocks = result.entry.blocks;
        }
        return result.entry;
      } catch (err) {
        // Blocks collected between `missing` and the commit: ask `missing` again, once.
        if (codeOf(err) === 'blocks_missing' && attempt < 2) continue;
        throw err;
      }
    }
  }

  /**
   * What an attempt at uploading a file tells the client, either way it is sent: four blocks at
   * once, to the store itself where the partition gives upload URLs (ADR 80; until a pass went
   * through, the partition first looks there for blocks sent before a crash), what this round
   * knows of the blocks (not on a second attempt: blocks were collected since), and the file's
   * progress as its blocks are taken.
   */
  #sendOptions(
    path: string,
    totalBytes: number,
    attempt: number,
    signal: AbortSignal,
  ): {
    signal: AbortSignal;
    parallelism: number;
    toStore: true;
    checkStore: boolean;
    known?: Map<string, boolean>;
    onBlockUploaded: (block: BlockRef) => void;
  } {
    let sent = 0;
    return {
      signal,
      parallelism: 4,
      toStore: true,
      checkStore: this.#checkStore,
      ...(attempt === 1 ? { known: this.#known } : {}),
      onBlockUploaded: (block) => {
        this.#known.set(block.sha256, false);
        sent += block.size;
        this.#emit({ type: 'upload', path, bytes: sent, totalBytes });
      },
    };
  }

  /**
   * Uploads a file of several blocks as the scan hashed it, each block read from the file only
   * while it is sent, so that no block is held in memory whole (ADR 83): to the store where the
   * partition gives upload URLs, else through the partition, each checked there against its
   * name. A file that changed since the scan fails (FileChangedError, tried again by the next
   * pass) instead of being committed half old, half new: before the blocks go, a changed stat;
   * while they go, bytes that no longer hash to their names (`hash_mismatch`); after, a changed
   * stat again.
   */
  async #sendFromDisk(
    path: string,
    local: LocalEntry,
    precondition: Precondition,
    mtime: string,
    report: SyncReport,
    signal: AbortSignal,
  ): Promise<Entry> {
    const abs = this.#abs(path);
    if (!(await this.#unchangedSinceScan(path, local))) throw new FileChangedError(path);
    const offsets: number[] = [];
    let offset = 0;
    for (const b of local.blocks) {
      offsets.push(offset);
      offset += b.size;
    }
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await this.#client.sendBlocks(
          local.blocks,
          (i) => blockStream(abs, offsets[i]!, local.blocks[i]!.size),
          this.#sendOptions(path, local.stat.size, attempt, signal),
        );
        report.uploadedBlocks = (report.uploadedBlocks ?? 0) + result.uploadedBlocks;
        report.uploadedBytes = (report.uploadedBytes ?? 0) + result.uploadedBytes;
        if (!(await this.#unchangedSinceScan(path, local))) throw new FileChangedError(path);
        const file = { kind: 'file' as const, blocks: local.blocks, mtime };
        return (await this.#client.putEntry(this.#options.objectId, path, file, precondition, { signal })).entry;
      } catch (err) {
        if (codeOf(err) === 'hash_mismatch') throw new FileChangedError(path);
        // Blocks collected between `uploads` and the commit: ask again, once.
        if (codeOf(err) === 'blocks_missing' && attempt < 2) continue;
        throw err;
      }
    }
  }

  /** Downloads a remote entry into place: temp file in the same folder, fsync, verify, re-check the target, rename. */
  async #download(path: string, entry: Entry, local: LocalEntry | undefined, signal: AbortSignal): Promise<boolean> {
    const abs = this.#abs(path);
    if (entry.kind === 'directory') {
      await mkdir(abs, { recursive: true });
      const s = await lstat(abs);
      this.#state.putBase({
        path,
        kind: 'directory',
        size: 0,
        mtimeMs: s.mtimeMs,
        ino: s.ino,
        mode: s.mode,
        blocks: [],
        contentHash: null,
        version: entry.version,
      });
      this.#emit({ type: 'committed', path, version: entry.version, direction: 'down' });
      return true;
    }
    await mkdir(dirname(abs), { recursive: true });
    const temp = join(dirname(abs), `${tempPrefix}${randomBytes(6).toString('hex')}`);
    let blocks: BlockRef[];
    let placed: Stats;
    try {
      blocks = await this.#fetchTo(path, entry, temp, signal);
      if (contentHashOfBlocks(blocks) !== entry.contentHash) {
        // A newer version streamed (or the answer was cut): the change feed brings the new one.
        await rm(temp, { force: true });
        return false;
      }
      if (!(await this.#unchangedSinceScan(path, local))) {
        // Edited (or created) here since the scan: never overwrite it; the next pass sees both changes.
        await rm(temp, { force: true });
        return false;
      }
      const previousMode = local?.stat.mode;
      const mode = (entry as Entry & { mode?: number }).mode ?? previousMode;
      if (mode !== undefined) await chmod(temp, mode & 0o7777);
      const mtime = new Date(entry.mtime);
      if (!Number.isNaN(mtime.getTime())) await utimes(temp, mtime, mtime);
      if (local?.kind === 'directory') await rmdir(abs);
      // Stat what is about to land (a rename keeps the inode, size, mtime and mode): the file may
      // be deleted or changed the moment it appears, and the record must describe what was
      // written, so that the next scan sees that as a local change instead of a missing download.
      placed = await lstat(temp);
      await rename(temp, abs);
      await syncDirectory(dirname(abs));
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    const stat = { size: placed.size, mtimeMs: placed.mtimeMs, ino: placed.ino, mode: placed.mode };
    this.#state.transaction(() => {
      this.#state.putBase({ path, kind: 'file', ...stat, blocks: entry.blocks, contentHash: entry.contentHash, version: entry.version });
      this.#state.putHash({ path, ...stat, blocks, contentHash: entry.contentHash });
    });
    this.#emit({ type: 'committed', path, version: entry.version, direction: 'down' });
    return true;
  }

  /** Whether a file is asked of its holders before the cloud: not an empty one, nor a small one the cloud keeps (ADR 81). */
  #worthPeers(entry: Entry): boolean {
    if (entry.blocks.length === 0) return false;
    return !(this.#cloudStorage === true && entry.blocks.length === 1 && entry.size <= peerMinBytes);
  }

  /** Fetches the entry's content into `temp` (peers first when enabled), hashing it in blocks as it is written; fsyncs. */
  async #fetchTo(path: string, entry: Entry, temp: string, signal: AbortSignal): Promise<BlockRef[]> {
    const handle = await open(temp, 'wx', 0o644);
    const blocks: BlockRef[] = [];
    try {
      if (this.#options.peer !== undefined && this.#worthPeers(entry) && (await this.#fetchFromSources(path, entry, handle, signal))) {
        // Every block was verified against its sha256 on arrival.
        await handle.sync();
        return entry.blocks;
      }
      await handle.truncate(0);
      // A file of several blocks is read block by block: from the store itself where the
      // partition gives block URLs (ADR 79), each checked against its name (ADR 78).
      if (entry.blocks.length > 1) return await this.#fetchBlocksTo(path, entry, handle, signal);
      // An empty file has nothing to fetch.
      if (entry.blocks.length === 0) {
        await handle.sync();
        return [];
      }
      // A small file whose URL this round asked for is read from the store itself (ADR 90).
      const url = entry.blocks.length === 1 ? await this.#located?.urlFor(entry.blocks[0]!.sha256) : undefined;
      if (url !== undefined) return await this.#fetchBlocksTo(path, entry, handle, signal, new Map([[entry.blocks[0]!.sha256, url]]));
      let hash = createHash('sha256');
      let inBlock = 0;
      let written = 0;
      const answer = await this.#client.content(this.#options.objectId, path, { signal });
      if (answer.body !== null) {
        const reader = answer.body.getReader();
        try {
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            await handle.write(value);
            written += value.length;
            this.#emit({ type: 'download', path, bytes: written, totalBytes: entry.size });
            for (let offset = 0; offset < value.length;) {
              const n = Math.min(maxBlockSize - inBlock, value.length - offset);
              hash.update(value.subarray(offset, offset + n));
              inBlock += n;
              offset += n;
              if (inBlock === maxBlockSize) {
                blocks.push({ sha256: hash.digest('hex'), size: inBlock });
                hash = createHash('sha256');
                inBlock = 0;
              }
            }
          }
        } finally {
          reader.releaseLock();
        }
      }
      if (inBlock > 0) blocks.push({ sha256: hash.digest('hex'), size: inBlock });
      this.#state.addCount('bytesFromCloud', written);
      await handle.sync();
    } finally {
      await handle.close();
    }
    return blocks;
  }

  /**
   * Writes the entry's blocks into `handle` in order with downloadBlocksToStream, and fsyncs.
   * Answers the entry's blocks, or none when a block is no longer there (the file changed
   * meanwhile and its old blocks were collected): the caller then finds the content hash wrong
   * and leaves the file to the change that follows.
   */
  async #fetchBlocksTo(
    path: string,
    entry: Entry,
    handle: FileHandle,
    signal: AbortSignal,
    urls?: ReadonlyMap<string, string>,
  ): Promise<BlockRef[]> {
    let written = 0;
    const wrote = (n: number): void => {
      written += n;
      this.#emit({ type: 'download', path, bytes: written, totalBytes: entry.size });
    };
    // A file smaller than the sink's buffers fits one buffer of its own size.
    const sink = fileSink(handle, wrote, Math.max(1, Math.min(fileSinkBufferBytes, entry.size)));
    try {
      await downloadBlocksToStream(this.#client, entry.blocks, sink, { signal, ...(urls === undefined ? {} : { urls }) });
    } catch (err) {
      if (codeOf(err) === 'not_found') return [];
      throw err;
    } finally {
      this.#state.addCount('bytesFromCloud', written);
    }
    await handle.sync();
    return entry.blocks;
  }

  async #deleteLocal(path: string, local: LocalEntry, entry: Entry | undefined, report: SyncReport, signal: AbortSignal): Promise<boolean> {
    if (!(await this.#unchangedSinceScan(path, local))) return false;
    const abs = this.#abs(path);
    if (local.kind === 'directory') {
      try {
        // Editor and OS droppings (.DS_Store, Thumbs.db, swap files) do not keep a deleted directory alive.
        for (const name of await readdir(abs)) {
          if (isBuiltinIgnored(name)) await rm(join(abs, name), { force: true });
        }
        await rmdir(abs);
        await syncDirectory(dirname(abs));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        // Something new was put inside: the directory is modified here, and a modification wins.
        const ok = await this.#upload(path, local, { ifNoneMatch: '*' }, undefined, new Map(), new Map(), report, signal);
        if (ok) report.uploaded++;
        return false;
      }
    } else {
      await unlink(abs);
      await syncDirectory(dirname(abs));
    }
    this.#state.deleteBase(path);
    this.#emit({ type: 'committed', path, version: entry?.version ?? '', direction: 'delete-down' });
    return true;
  }

  async #conflict(
    path: string,
    local: LocalEntry,
    entry: Entry,
    scan: ScanResult,
    remote: Map<string, Entry>,
    signal: AbortSignal,
  ): Promise<boolean> {
    if (!(await this.#unchangedSinceScan(path, local))) return false;
    const at = new Date();
    const copy = conflictCopyPath(path, this.#options.deviceName, at, (p) => scan.entries.has(p) || remote.has(p));
    await rename(this.#abs(path), this.#abs(copy));
    await syncDirectory(dirname(this.#abs(path)));
    this.#state.transaction(() => {
      this.#state.addConflict(path, copy, at);
      this.#state.deleteBase(path);
    });
    this.#emit({ type: 'conflict', path, copy });
    // The remote version takes the name; the copy is uploaded as a new file by the next round.
    await this.#download(path, entry, undefined, signal);
    return true;
  }

  // ---- continuous

  /** Sync continuously until `signal` aborts; rejects with AgentStopped when it must stop for good. */
  async run(signal: AbortSignal): Promise<void> {
    // `done` ends the background poll when the loop ends for any reason (a stop included).
    const done = new AbortController();
    const both = AbortSignal.any([signal, this.#closing.signal, done.signal]);
    let wake: (() => void) | undefined;
    let dirty = true;
    const poke = (): void => {
      dirty = true;
      wake?.();
    };
    // Only the folder's hints are gathered: a notification means the server has news to fetch now.
    let lastHint = -Infinity;
    const hint = (): void => {
      lastHint = performance.now();
      poke();
    };
    let stopped: Error | undefined;
    const fail = (err: Error): void => {
      stopped ??= err;
      poke();
    };
    const own = new Set(this.#ownFiles());
    // The agent's own files (temporary downloads, the state database when it lives inside) are not news.
    const watcher = new FolderWatcher(
      this.#dir,
      (path) => {
        if (!own.has(path) && path.split('/').pop()?.startsWith(tempPrefix) !== true) hint();
      },
      (path) => this.#rules !== undefined && isIgnored(this.#rules, path, true),
    );
    // Passes started and ended so far, and who waits for the next end: the notification poll
    // asks again only once the pass a notification set off has ended (that pass reads every
    // change up to when it runs; the poll's cursor keeps the rest), not after every commit.
    let passesStarted = 0;
    let passesEnded = 0;
    const passWaiters = new Set<() => void>();
    const passEnded = (): void => {
      passesEnded++;
      for (const waiter of passWaiters) waiter();
    };
    const afterNextPass = async (): Promise<void> => {
      const target = passesStarted + 1;
      const deadline = performance.now() + notificationRepollMs;
      while (passesEnded < target && !both.aborted && performance.now() < deadline) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, deadline - performance.now());
          function done(): void {
            clearTimeout(timer);
            passWaiters.delete(done);
            both.removeEventListener('abort', done);
            resolve();
          }
          passWaiters.add(done);
          both.addEventListener('abort', done, { once: true });
        });
      }
    };
    // Once no pass has started for idleSettleMs after one ended, the heap the passes grew is
    // given back (ADR 85): an agent at rest keeps only what it needs. (The pacer's own spacing
    // of 5 s is shorter than the wait, so it never refuses.)
    let settleTimer: ReturnType<typeof setTimeout> | undefined;
    const settleLater = (): void => {
      clearTimeout(settleTimer);
      const started = passesStarted;
      settleTimer = setTimeout(() => {
        if (passesStarted === started && !both.aborted) processGcPacer.settled();
      }, idleSettleMs);
      settleTimer.unref?.();
    };
    const notifications = this.#pollNotifications(both, poke, fail, afterNextPass);
    const presence = this.#options.peer?.announce !== undefined ? this.#announcePresence(both) : Promise.resolve();
    const waitingRetryMs = this.#options.peer?.waitingRetryMs ?? 10_000;
    const scanEvery = this.#options.scanIntervalMs ?? 60_000;
    let failures = 0;
    let waitingPasses = 0;
    let nextScan = Date.now();
    try {
      while (!both.aborted) {
        if (stopped !== undefined) throw stopped;
        if (dirty || Date.now() >= nextScan) {
          dirty = false;
          passesStarted++;
          try {
            await this.syncOnce(both);
            // A directory first seen by this pass is watched from now: look once more for what came before its watch.
            if (watcher.update(this.#dirs)) dirty = true;
            failures = 0;
            // A file waiting for a device that holds it is tried again soon: a holder coming online is
            // not notified. First after a second (a holder that just committed announces the file
            // once its own pass ends), then doubling up to waitingRetryMs.
            const waiting = [...this.#state.allProblems().values()].some((p) => p.code === 'waiting');
            waitingPasses = waiting ? waitingPasses + 1 : 0;
            nextScan = Date.now() + (waiting ? Math.min(waitingRetryDelayMs(waitingPasses, waitingRetryMs), scanEvery) : scanEvery);
            passEnded();
            settleLater();
            this.#emit({ type: 'idle' });
          } catch (err) {
            passEnded();
            if (both.aborted) break;
            if (err instanceof AgentStopped) throw err;
            watcher.update(this.#dirs);
            // Anything else is waited out (the network, throttling, a server restarting, a local hiccup).
            failures++;
            const delayMs = backoffMs(failures, Math.random(), retryAfterOf(err));
            this.#emit({ type: 'retry', reason: (err as Error).message ?? String(err), delayMs });
            dirty = true;
            await sleep(delayMs, both);
            continue;
          }
        }
        if (dirty || stopped !== undefined) continue;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resume, Math.max(0, nextScan - Date.now()));
          function resume(): void {
            clearTimeout(timer);
            both.removeEventListener('abort', resume);
            wake = undefined;
            resolve();
          }
          wake = resume;
          both.addEventListener('abort', resume, { once: true });
        });
        // Gather a burst of hints into one pass: wait for a quiet moment, within a bound.
        const since = performance.now();
        while (dirty && !both.aborted) {
          const now = performance.now();
          const wait = Math.min(lastHint + hintQuietMs - now, since + hintDebounceMs - now);
          if (wait <= 0) break;
          await sleep(wait, both);
        }
      }
    } finally {
      clearTimeout(settleTimer);
      watcher.close();
      wake = undefined;
      done.abort();
      await notifications.catch(() => undefined);
      await presence.catch(() => undefined);
    }
    if (stopped !== undefined && !signal.aborted) throw stopped;
  }

  /** Wakes the presence loop to announce now (a pass moved the held cursor). */
  #presenceWake: (() => void) | undefined;

  /**
   * Announces this device while `run` runs: its peer endpoints, certificate fingerprint and the
   * cursor it holds the object through, again every third of the presence TTL and after a pass
   * that moved the cursor; cleared when the loop ends.
   */
  async #announcePresence(signal: AbortSignal): Promise<void> {
    const { deviceId, announce } = this.#options.peer!;
    let failures = 0;
    while (!signal.aborted) {
      const cursor = this.#state.getMeta('heldCursor');
      const body = {
        endpoints: announce!.endpoints,
        holds: cursor === null ? [] : [{ objectId: this.#options.objectId, cursor }],
        fingerprint: announce!.fingerprint,
      };
      let delayMs: number;
      try {
        const answer = await this.#client.setPresence(deviceId, body, { signal });
        failures = 0;
        delayMs = (answer.ttlSeconds * 1000) / 3;
      } catch (err) {
        if (signal.aborted) break;
        failures++;
        delayMs = backoffMs(failures, Math.random(), retryAfterOf(err));
      }
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          signal.removeEventListener('abort', wake);
          this.#presenceWake = undefined;
          resolve();
        };
        const timer = setTimeout(wake, delayMs);
        this.#presenceWake = wake;
        signal.addEventListener('abort', wake, { once: true });
      });
    }
    // Offline at once rather than when the TTL lapses (best effort: the TTL covers a failure).
    await this.#client.clearPresence(deviceId, { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
  }

  /** The notification long poll: pokes the loop when this object changed, fails it when the object is gone or the token refused. */
  async #pollNotifications(
    signal: AbortSignal,
    poke: () => void,
    fail: (err: Error) => void,
    afterNextPass: () => Promise<void>,
  ): Promise<void> {
    let cursor: string | undefined;
    let failures = 0;
    while (!signal.aborted) {
      try {
        const answer = await this.#client.notifications({ cursor, wait: cursor === undefined ? 0 : 30, signal });
        failures = 0;
        const mine = answer.objects.find((o) => o.id === this.#options.objectId);
        if (cursor === undefined && mine === undefined) {
          // The full list does not name the object: this user is not a member (any more).
          fail(this.#objectGone('not among the objects of this user'));
          return;
        }
        if (mine?.removed === true) {
          fail(this.#objectGone('the notification said removed'));
          return;
        }
        if (mine?.role !== undefined && mine.role !== this.#role) this.#role = mine.role;
        cursor = answer.cursor;
        if (mine !== undefined) {
          poke();
          await afterNextPass();
        }
      } catch (err) {
        if (signal.aborted) return;
        const stop = this.#stopFor(err);
        if (stop !== undefined) {
          fail(stop);
          return;
        }
        if (codeOf(err) === 'cursor_expired') cursor = undefined;
        failures++;
        await sleep(backoffMs(failures, Math.random(), retryAfterOf(err)), signal);
      }
    }
  }

  /** The agent's status from its state database. */
  status(): AgentStatus {
    return statusFromDb(this.#state.db, this.#options.objectId, this.#dir);
  }

  /** Stops work in flight and closes the state database. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort(new Error('the agent was closed'));
    await this.#running.catch(() => undefined);
    this.#peerConnections.closeAll();
    this.#state.close();
  }
}

/**
 * Makes a rename or unlink in `dir` durable before the base records it: after a power loss the
 * folder must not hold the old file under a base that says the new one (it would read as a
 * local edit and be uploaded over the newer version), nor a deleted file back (a resurrection).
 */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function isFsError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code);
}

function directionOf(a: PlannedAction): 'up' | 'down' {
  return a.action.type === 'upload' || a.action.type === 'delete-remote' ? 'up' : 'down';
}
