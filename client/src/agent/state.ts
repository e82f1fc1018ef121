// The agent's state database (node:sqlite): what was last synced per path (the base of the
// three-way plan), the server's entries as the change feed delivered them with the cursor they
// were read at, a cache of local hashes keyed by size/mtime/inode (a file is rehashed only when
// one of them changed), problems, conflicts and pending work. WAL with synchronous=NORMAL
// (ADR 50): a commit that returned is in the WAL, so a kill -9 loses no recorded progress; a
// power loss may drop the last commits, which leaves the records behind the folder and the
// server, never ahead of them, and the next pass redoes what they miss. The remote entries
// and the cursor are written in one transaction, and applying them is derived from the records
// (a remote entry that differs from the base is still to apply), so the stored cursor never
// runs ahead of what will be applied.
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { BlockRef, Entry } from '../types.ts';
import type { AgentStatus, ProblemCode, StopCode } from './index.ts';

/** How a local file looked when it was hashed or synced: a change of any of these means rehash. */
export interface FileStat {
  size: number;
  mtimeMs: number;
  ino: number;
  mode: number;
}

/** A base row: the content both sides agreed on, the server version, and the local file's stat then. */
export interface BaseRow extends FileStat {
  path: string;
  kind: 'file' | 'directory';
  blocks: BlockRef[];
  contentHash: string | null;
  version: string;
}

/** A cached hash of a local file at a given stat. */
export interface HashRow extends FileStat {
  path: string;
  blocks: BlockRef[];
  contentHash: string;
}

/** A problem row, with the stat the problem was seen at (a changed file is tried again). */
export interface ProblemRow {
  path: string;
  code: ProblemCode;
  message: string;
  since: string;
  signature: string;
}

const schema = `
CREATE TABLE IF NOT EXISTS base (path TEXT PRIMARY KEY, kind TEXT NOT NULL, size INTEGER NOT NULL, mtime_ms REAL NOT NULL,
  ino INTEGER NOT NULL, mode INTEGER NOT NULL, blocks TEXT NOT NULL, content_hash TEXT, version TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS remote (path TEXT PRIMARY KEY, entry TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hashes (path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ms REAL NOT NULL, ino INTEGER NOT NULL,
  mode INTEGER NOT NULL, blocks TEXT NOT NULL, content_hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS problems (path TEXT PRIMARY KEY, code TEXT NOT NULL, message TEXT NOT NULL, since TEXT NOT NULL,
  signature TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS conflicts (id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT NOT NULL, copy TEXT NOT NULL, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pending (path TEXT PRIMARY KEY, direction TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`;

/** Compares two entry versions (etcd revisions, decimal); a non-numeric one compares as text. */
export function compareVersions(a: string, b: string): number {
  if (/^\d+$/.test(a) && /^\d+$/.test(b)) {
    const x = BigInt(a);
    const y = BigInt(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The agent's state database for one folder and object. */
export class StateDb {
  readonly db: DatabaseSync;

  constructor(path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.db = new DatabaseSync(path);
    this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;');
    this.db.exec(schema);
  }

  close(): void {
    this.#statements.clear();
    if (this.db.isOpen) this.db.close();
  }

  /** Statements compiled once and used again: the engine runs the same few for every file. */
  readonly #statements = new Map<string, StatementSync>();

  #prepare(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (statement === undefined) this.#statements.set(sql, (statement = this.db.prepare(sql)));
    return statement;
  }

  /** Runs `fn` in one transaction (committed durably, or not at all). */
  transaction<T>(fn: () => T): T {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const out = fn();
      this.db.exec('COMMIT');
      return out;
    } catch (err) {
      this.db.exec('ROLLBACK');
      // What the transaction had written is gone from the database: so is what the caches knew.
      this.#base = undefined;
      this.#remote = undefined;
      throw err;
    }
  }

  // Every pass reads every base and remote row; the rows are kept here once read, as the database
  // holds them (frozen, so that no caller changes them for the others), and every write to the two
  // tables goes through this class and updates them.
  #base: Map<string, BaseRow> | undefined;
  #remote: Map<string, Entry> | undefined;

  getMeta(key: string): string | null {
    const row = this.#prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
    return row?.value ?? null;
  }

  setMeta(key: string, value: string | null): void {
    if (value === null) this.#prepare('DELETE FROM meta WHERE key = ?').run(key);
    else this.#prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  /** Adds `n` to a counter kept in meta (bytes by source). */
  addCount(key: string, n: number): void {
    if (n === 0) return;
    this.#prepare(
      `INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + CAST(excluded.value AS INTEGER) AS TEXT)`,
    ).run(key, String(n));
  }

  // ---- base

  /** Every base row by path (a new map each time; the rows are frozen). */
  allBase(): Map<string, BaseRow> {
    if (this.#base === undefined) {
      const rows = this.#prepare('SELECT * FROM base').all() as Record<string, unknown>[];
      this.#base = new Map(rows.map((r) => [r.path as string, frozenRow(baseFromRow(r))]));
    }
    return new Map(this.#base);
  }

  putBase(row: BaseRow): void {
    const blocks = JSON.stringify(row.blocks);
    this.#prepare(
      `INSERT INTO base (path, kind, size, mtime_ms, ino, mode, blocks, content_hash, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(path) DO UPDATE SET kind = excluded.kind, size = excluded.size, mtime_ms = excluded.mtime_ms, ino = excluded.ino,
         mode = excluded.mode, blocks = excluded.blocks, content_hash = excluded.content_hash, version = excluded.version`,
    ).run(row.path, row.kind, row.size, row.mtimeMs, row.ino, row.mode, blocks, row.contentHash, row.version);
    this.#base?.set(row.path, frozenRow({ ...row, blocks: JSON.parse(blocks) as BlockRef[] }));
  }

  deleteBase(path: string): void {
    this.#prepare('DELETE FROM base WHERE path = ?').run(path);
    this.#base?.delete(path);
  }

  // ---- remote entries (the change feed, recorded)

  /** Every remote entry by path (a new map each time; the entries are frozen). */
  allRemote(): Map<string, Entry> {
    if (this.#remote === undefined) {
      const rows = this.#prepare('SELECT entry FROM remote').all() as { entry: string }[];
      this.#remote = new Map(rows.map((r) => frozenRow(JSON.parse(r.entry) as Entry)).map((e) => [e.path, e]));
    }
    return new Map(this.#remote);
  }

  /** Records entries, keeping for each path the newest version (an older answer never replaces a newer one). */
  putRemote(entries: readonly Entry[]): void {
    const get = this.#prepare('SELECT entry FROM remote WHERE path = ?');
    const put = this.#prepare('INSERT INTO remote (path, entry) VALUES (?, ?) ON CONFLICT(path) DO UPDATE SET entry = excluded.entry');
    for (const e of entries) {
      const row = get.get(e.path) as { entry: string } | undefined;
      if (row !== undefined && compareVersions((JSON.parse(row.entry) as Entry).version, e.version) > 0) continue;
      const entry = JSON.stringify(e);
      put.run(e.path, entry);
      this.#remote?.set(e.path, frozenRow(JSON.parse(entry) as Entry));
    }
  }

  /** Replaces the remote record by a full listing: paths it does not name are gone (recorded as tombstones). */
  replaceRemote(live: readonly Entry[]): void {
    const listed = new Set(live.map((e) => e.path));
    const gone = [...this.allRemote().values()].filter((e) => !listed.has(e.path) && !e.deleted);
    this.db.exec('DELETE FROM remote');
    this.#remote = new Map();
    this.putRemote(live);
    this.putRemote(gone.map((e) => ({ ...e, deleted: true, blocks: [] })));
  }

  // ---- local hash cache

  getHash(path: string): HashRow | undefined {
    const r = this.#prepare('SELECT * FROM hashes WHERE path = ?').get(path) as Record<string, unknown> | undefined;
    if (r === undefined) return undefined;
    return {
      path: r.path as string,
      size: Number(r.size),
      mtimeMs: Number(r.mtime_ms),
      ino: Number(r.ino),
      mode: Number(r.mode),
      blocks: JSON.parse(r.blocks as string) as BlockRef[],
      contentHash: r.content_hash as string,
    };
  }

  putHash(row: HashRow): void {
    this.#prepare(
      `INSERT INTO hashes (path, size, mtime_ms, ino, mode, blocks, content_hash) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(path) DO UPDATE SET size = excluded.size, mtime_ms = excluded.mtime_ms, ino = excluded.ino, mode = excluded.mode,
         blocks = excluded.blocks, content_hash = excluded.content_hash`,
    ).run(row.path, row.size, row.mtimeMs, row.ino, row.mode, JSON.stringify(row.blocks), row.contentHash);
  }

  /** Drops cached hashes of paths no longer in the folder. */
  pruneHashes(present: ReadonlySet<string>): void {
    const rows = this.#prepare('SELECT path FROM hashes').all() as { path: string }[];
    const del = this.#prepare('DELETE FROM hashes WHERE path = ?');
    for (const r of rows) if (!present.has(r.path)) del.run(r.path);
  }

  // ---- problems, conflicts, pending

  allProblems(): Map<string, ProblemRow> {
    const rows = this.#prepare('SELECT * FROM problems').all() as unknown as ProblemRow[];
    return new Map(rows.map((r) => [r.path, { ...r }]));
  }

  putProblem(path: string, code: ProblemCode, message: string, signature: string, now: Date): boolean {
    const old = this.#prepare('SELECT code, signature FROM problems WHERE path = ?').get(path) as
      { code: string; signature: string } | undefined;
    if (old?.code === code && old.signature === signature) return false;
    this.#prepare(
      `INSERT INTO problems (path, code, message, since, signature) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(path) DO UPDATE SET code = excluded.code, message = excluded.message, since = excluded.since, signature = excluded.signature`,
    ).run(path, code, message, now.toISOString(), signature);
    return true;
  }

  clearProblem(path: string): void {
    this.#prepare('DELETE FROM problems WHERE path = ?').run(path);
  }

  addConflict(path: string, copy: string, at: Date): void {
    this.#prepare('INSERT INTO conflicts (path, copy, at) VALUES (?, ?, ?)').run(path, copy, at.toISOString());
  }

  setPending(pending: readonly { path: string; direction: 'up' | 'down' }[]): void {
    // One transaction: one commit for the whole list, not one per row.
    this.transaction(() => {
      this.db.exec('DELETE FROM pending');
      const put = this.#prepare('INSERT OR REPLACE INTO pending (path, direction) VALUES (?, ?)');
      for (const p of pending) put.run(p.path, p.direction);
    });
  }

  /** How many paths wait to be downloaded. */
  pendingDownloads(): number {
    return (this.#prepare(`SELECT count(*) AS n FROM pending WHERE direction = 'down'`).get() as { n: number }).n;
  }

  recordStopped(code: StopCode, message: string, at: Date): void {
    this.setMeta('stopped', JSON.stringify({ code, message, at: at.toISOString() }));
  }
}

/** A row as the caches keep it: it and its block list frozen. */
function frozenRow<T extends { blocks: BlockRef[] }>(row: T): T {
  Object.freeze(row.blocks);
  return Object.freeze(row);
}

function baseFromRow(r: Record<string, unknown>): BaseRow {
  return {
    path: r.path as string,
    kind: r.kind as 'file' | 'directory',
    size: Number(r.size),
    mtimeMs: Number(r.mtime_ms),
    ino: Number(r.ino),
    mode: Number(r.mode),
    blocks: JSON.parse(r.blocks as string) as BlockRef[],
    contentHash: (r.content_hash as string | null) ?? null,
    version: r.version as string,
  };
}

/** The status as the database holds it (for `status()` and, read-only, for `readStatus`). */
export function statusFromDb(db: DatabaseSync, objectId: string, dir: string): AgentStatus {
  const meta = (key: string): string | null =>
    (db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value ?? null;
  const stopped = meta('stopped');
  return {
    objectId: meta('objectId') ?? objectId,
    dir: meta('dir') ?? dir,
    cursor: meta('cursor'),
    lastSyncAt: meta('lastSyncAt'),
    pending: (db.prepare('SELECT path, direction FROM pending ORDER BY path').all() as { path: string; direction: 'up' | 'down' }[]).map(
      (r) => ({ path: r.path, direction: r.direction }),
    ),
    problems: (
      db.prepare('SELECT path, code, message, since FROM problems ORDER BY path').all() as {
        path: string;
        code: ProblemCode;
        message: string;
        since: string;
      }[]
    ).map((r) => ({ path: r.path, code: r.code, message: r.message, since: r.since })),
    conflicts: (
      db.prepare('SELECT path, copy, at FROM conflicts ORDER BY id DESC').all() as { path: string; copy: string; at: string }[]
    ).map((r) => ({ path: r.path, copy: r.copy, at: r.at })),
    stopped: stopped === null ? null : (JSON.parse(stopped) as AgentStatus['stopped']),
    transfer: {
      fromPeers: Number(meta('bytesFromPeers') ?? 0),
      fromRelays: Number(meta('bytesFromRelays') ?? 0),
      fromCloud: Number(meta('bytesFromCloud') ?? 0),
      served: Number(meta('bytesServed') ?? 0),
    },
  };
}

/** Opens a state database read-only (another process's, for `meshwork status`) and reads the status. */
export function readStatusFrom(statePath: string): AgentStatus {
  if (!existsSync(statePath)) throw new Error(`no agent state at ${statePath}: the agent has not run for this folder yet`);
  const db = new DatabaseSync(statePath, { readOnly: true });
  try {
    return statusFromDb(db, '', '');
  } finally {
    db.close();
  }
}
