// The device agent's sync engine: keeps one local folder and one mesh object in sync, two ways,
// continuously. The `meshwork` command (client/src/cli) drives it; tests and benchmarks may
// drive it in-process. Node only (files, node:sqlite).
//
// This file is the engine's public surface; the CLI depends on nothing else of the engine.
// Behind it: plan.ts (the pure three-way planner), scan.ts (the folder, ignore rules, hashing),
// state.ts (the node:sqlite state database), engine.ts (the executor and `run`). How conflicts
// and deletes are decided: docs/adr/0036-agent-conflicts-and-deletes.md.
import type { MeshworkClient } from '../client.ts';
import type { BlockLocation } from '../p2p/peer-server.ts';
import type { Sources } from '../types.ts';
import { SyncAgent } from './engine.ts';
import { readStatusFrom } from './state.ts';

export interface AgentOptions {
  /** A client holding this device's token (a device token: writes are attributed to it). */
  client: MeshworkClient;
  /** The local folder to keep in sync (created when missing). */
  dir: string;
  /** The mesh object the folder mirrors. */
  objectId: string;
  /** The agent's state database (node:sqlite) for this folder and object; its directory is created. */
  statePath: string;
  /** This device's name, used in conflict copies' names. */
  deviceName: string;
  /** Full rescan period in ms (file-system events are hints only). Default 60,000. */
  scanIntervalMs?: number;
  /** Progress and outcomes, for a progress display or logs. */
  onEvent?: (event: AgentEvent) => void;
  /**
   * Makes each pass one trace (root span `meshwork sync pass`), its requests child spans, when
   * the client traces too (`startClientTracing` of `@meshwork/client/tracing`). Notification
   * long polls between passes are not traced.
   */
  tracing?: { startTrace<T>(name: string, attributes: Record<string, string>, fn: () => Promise<T>): Promise<T> };
  /** Peer-to-peer: fetch from the devices that hold a file first, and announce this device (ADR 55). Unset: the cloud only. */
  peer?: AgentPeerOptions;
}

/** How the engine takes part in peer-to-peer transfer. */
export interface AgentPeerOptions {
  /** This device's id. */
  deviceId: string;
  /** What presence announces (the peer listener's `https://host:port` endpoints and certificate fingerprint); unset: no presence. */
  announce?: { endpoints: string[]; fingerprint: string };
  /** Where a file's sources are read; default `client.sources` (`GET …/sources` with the entry's version). */
  sources?: (objectId: string, path: string, version: string, signal: AbortSignal) => Promise<Sources>;
  /** How long a peer may take to accept a TLS connection before it is dropped. Default 2,000 ms. */
  connectTimeoutMs?: number;
  /** The longest wait before a file that no online device holds is tried again (first after 1 s, doubling up to this). Default 10,000 ms. */
  waitingRetryMs?: number;
}

export type AgentEvent =
  | { type: 'scan'; files: number; changed: number; ms: number }
  | { type: 'upload'; path: string; bytes: number; totalBytes: number }
  | { type: 'download'; path: string; bytes: number; totalBytes: number }
  | { type: 'committed'; path: string; version: string; direction: 'up' | 'down' | 'delete-up' | 'delete-down' }
  | { type: 'conflict'; path: string; copy: string }
  | { type: 'problem'; path: string; code: ProblemCode; message: string }
  | { type: 'idle' }
  | { type: 'retry'; reason: string; delayMs: number };

/** Why a path is not synced (kept in the state database until it is fixed). */
export type ProblemCode =
  | 'invalid_name' // the server refuses the name (too long, control characters, ...)
  | 'symlink' // symlinks are not followed
  | 'too_large' // over the partition's maximum entry size
  | 'not_a_file' // a socket, fifo, device, ...
  | 'read_error' // the file could not be read (permissions, ...)
  | 'write_error' // the local file could not be written
  | 'read_only' // the object is shared with this user as a reader: local changes are not uploaded
  | 'waiting'; // a peer-to-peer-only file that no online device holds: fetched as soon as one appears

export interface AgentStatus {
  objectId: string;
  dir: string;
  /** The last change-set cursor applied locally (null before the first sync). */
  cursor: string | null;
  /** Time of the last completed full pass, ISO 8601, or null. */
  lastSyncAt: string | null;
  /** Paths with local changes not yet committed, and remote changes not yet applied. */
  pending: { path: string; direction: 'up' | 'down' }[];
  /** Paths that cannot be synced, and why. */
  problems: { path: string; code: ProblemCode; message: string; since: string }[];
  /** Conflict copies made, newest first. */
  conflicts: { path: string; copy: string; at: string }[];
  /** Why the agent stopped for good, if it did (revoked device, removed from the object, ...). */
  stopped: { code: StopCode; message: string; at: string } | null;
  /** Bytes of downloaded files by where they came from (peers directly, peers through their relays, the cloud), and bytes served to peers, since the database was made. */
  transfer: { fromPeers: number; fromRelays: number; fromCloud: number; served: number };
}

export type StopCode = 'unauthorized' | 'object_gone';

export { AgentStopped } from './stopped.ts';

export interface SyncReport {
  uploaded: number;
  downloaded: number;
  deletedRemote: number;
  deletedLocal: number;
  conflicts: number;
  problems: number;
  cursor: string;
  /** Blocks and bytes actually sent (a block the server already had for this user is not). */
  uploadedBlocks?: number;
  uploadedBytes?: number;
}

export declare class SyncAgentShape {
  /** One full pass: scan the folder, apply remote changes, push local ones. */
  syncOnce(): Promise<SyncReport>;
  /** Sync continuously (notification long poll + periodic scan + fs.watch hints) until `signal` aborts. Rejects with AgentStopped when it must stop for good. */
  run(signal: AbortSignal): Promise<void>;
  status(): AgentStatus;
  /** Where this agent holds a block of `objectId` (for the peer listener): synced files, with the stat they were synced at. */
  locateBlock(objectId: string, sha256: string): BlockLocation[];
  /** Counts bytes served to peers (shown in `status`). */
  countServed(bytes: number): void;
  /** Whether a path relative to the folder is left out of syncing (`.meshworkignore`, the built-in ignores, the state database): remote access shows none of it. */
  ignores(path: string, directory: boolean): boolean;
  close(): Promise<void>;
}

/** Opens (creating when needed) the agent for a folder and object. */
export function openAgent(options: AgentOptions): Promise<SyncAgentShape> {
  return SyncAgent.open(options);
}

/** Reads an agent's status from its state database, from another process (`meshwork status`). */
export function readStatus(statePath: string): AgentStatus {
  return readStatusFrom(statePath);
}
