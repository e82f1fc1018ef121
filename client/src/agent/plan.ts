// The agent's reconciliation, pure: for each path, the last synced state (base), the folder now
// (local) and the server now (remote, tombstones included) decide one action. No I/O and no
// clock: the executor (engine.ts) reads the world, calls `planSync`, and carries the actions
// out. Versions and tombstones decide, never timestamps (ADR 36): a side "changed" when its
// content differs from the base, and a device that was offline with an old, unchanged copy
// therefore takes the delete instead of bringing the file back.

/** What a side holds at a path: a file (with its content hash) or a directory (hash null). */
export interface Content {
  kind: 'file' | 'directory';
  /** The entry's content hash (docs/api.md) for a file; null for a directory. */
  hash: string | null;
}

/** The last state both sides agreed on, with the server version it was agreed at. */
export interface BaseState extends Content {
  version: string;
}

/** The server's entry at a path (a tombstone has `deleted: true`). */
export interface RemoteState extends Content {
  version: string;
  deleted: boolean;
}

/** One path's three states; undefined means nothing there (never seen, or gone). */
export interface PathStates {
  base?: BaseState | undefined;
  local?: Content | undefined;
  remote?: RemoteState | undefined;
}

/** The precondition of a write, as `putEntry` takes it. */
export type Precondition = { ifMatch: string } | { ifNoneMatch: '*' };

/** What to do at one path. */
export type Action =
  | { type: 'nothing' }
  /** Both sides reached the same content: remember it as the base (or forget the base when both are empty). */
  | { type: 'record' }
  | { type: 'upload'; precondition: Precondition }
  | { type: 'download' }
  | { type: 'delete-remote'; ifMatch: string }
  | { type: 'delete-local' }
  /** Both sides changed differently: the local version moves to a conflict copy, the remote one takes the name. */
  | { type: 'conflict' }
  /** A local change on an object this device may only read: reported, not uploaded. */
  | { type: 'read-only' };

/** An action at a path, as `planSync` answers them (in the order to carry them out). */
export interface PlannedAction {
  path: string;
  action: Action;
  /** For an upload: a path whose blocks (already possessed) hold the same content, so no block is sent. */
  reuseBlocksOf?: string;
}

function same(a: Content | undefined, b: Content | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.kind === b.kind && a.hash === b.hash;
}

/** The remote side as content: a tombstone is nothing there. */
function remoteContent(remote: RemoteState | undefined): Content | undefined {
  return remote === undefined || remote.deleted ? undefined : { kind: remote.kind, hash: remote.hash };
}

function writePrecondition(remote: RemoteState | undefined): Precondition {
  // A tombstone is not an entry: creating over it is a create.
  return remote !== undefined && !remote.deleted ? { ifMatch: remote.version } : { ifNoneMatch: '*' };
}

/** The three-way decision for one path (see the file comment and ADR 36). */
export function planPath(states: PathStates, readOnly = false): Action {
  const { base, local, remote } = states;
  const r = remoteContent(remote);
  const localChanged = !same(local, base);
  const remoteChanged = !same(r, base);

  if (same(local, r)) {
    // Nothing to move; the base follows when it lags behind (a new version of the same content).
    if (local === undefined) return base === undefined ? { type: 'nothing' } : { type: 'record' };
    return base !== undefined && remote !== undefined && base.version === remote.version && !localChanged
      ? { type: 'nothing' }
      : { type: 'record' };
  }
  let action: Action;
  if (!localChanged) {
    action = r === undefined ? { type: 'delete-local' } : { type: 'download' };
  } else if (!remoteChanged) {
    action =
      local === undefined
        ? { type: 'delete-remote', ifMatch: remote!.version }
        : { type: 'upload', precondition: writePrecondition(remote) };
  } else if (local === undefined) {
    // Deleted here, modified there: the modification wins.
    action = { type: 'download' };
  } else if (r === undefined) {
    // Modified here, deleted there: the modification wins.
    action = { type: 'upload', precondition: writePrecondition(remote) };
  } else if (local.kind === 'directory' && r.kind === 'directory') {
    action = { type: 'record' };
  } else {
    action = { type: 'conflict' };
  }
  if (readOnly && (action.type === 'upload' || action.type === 'delete-remote')) return { type: 'read-only' };
  return action;
}

function depth(path: string): number {
  return path.split('/').length;
}

// Uploads and downloads go parents first (a directory before what it holds), deletes children
// first (a directory is removed once empty), and every upload before any remote delete, so
// that a renamed file's blocks are still named by an entry when its new path is committed.
const phase: Record<Action['type'], number> = {
  nothing: 0,
  record: 0,
  'read-only': 0,
  conflict: 1,
  upload: 2,
  download: 2,
  'delete-local': 3,
  'delete-remote': 3,
};

/**
 * Plans a whole pass: one action per path that needs one, in the order to carry them out.
 * `blocksKnown` maps a content hash to a path whose committed blocks hold it (from the base
 * and the server's entries): an upload of that content reuses them (a rename or a copy costs
 * no block upload).
 */
export function planSync(
  paths: ReadonlyMap<string, PathStates>,
  options: { readOnly?: boolean; blocksKnown?: ReadonlyMap<string, string> } = {},
): PlannedAction[] {
  const out: PlannedAction[] = [];
  for (const [path, states] of paths) {
    const action = planPath(states, options.readOnly ?? false);
    if (action.type === 'nothing') continue;
    const planned: PlannedAction = { path, action };
    const hash = states.local?.hash;
    if (action.type === 'upload' && states.local?.kind === 'file' && hash != null) {
      const known = options.blocksKnown?.get(hash);
      if (known !== undefined) planned.reuseBlocksOf = known;
    }
    out.push(planned);
  }
  return out.sort((a, b) => {
    const pa = phase[a.action.type];
    const pb = phase[b.action.type];
    if (pa !== pb) return pa - pb;
    const d = pa === 3 ? depth(b.path) - depth(a.path) : depth(a.path) - depth(b.path);
    return d !== 0 ? d : a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
  });
}

/** `YYYY-MM-DD HHMMSS` in UTC, as conflict copies name the moment. */
function stamp(at: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return (
    `${at.getUTCFullYear()}-${p(at.getUTCMonth() + 1)}-${p(at.getUTCDate())} ` +
    `${p(at.getUTCHours())}${p(at.getUTCMinutes())}${p(at.getUTCSeconds())}`
  );
}

/**
 * The conflict copy's path: `dir/name (conflict from <device> <YYYY-MM-DD HHMMSS>).ext`, with a
 * counter added while `taken` says the name is in use.
 */
export function conflictCopyPath(path: string, deviceName: string, at: Date, taken: (path: string) => boolean = () => false): string {
  const slash = path.lastIndexOf('/');
  const dir = slash < 0 ? '' : path.slice(0, slash + 1);
  const name = path.slice(slash + 1);
  // A leading dot is a hidden file's name, not an extension.
  const dot = name.lastIndexOf('.');
  const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ''];
  const label = `conflict from ${deviceName.replace(/[/\\\p{Cc}]/gu, '_')} ${stamp(at)}`;
  for (let n = 1; ; n++) {
    const candidate = `${dir}${stem} (${label}${n === 1 ? '' : ` ${n}`})${ext}`;
    if (!taken(candidate)) return candidate;
  }
}

const encoder = new TextEncoder();

/** Why the server would refuse this path (docs/api.md, Entries), or undefined when it is acceptable. */
export function invalidNameReason(path: string): string | undefined {
  if (encoder.encode(path).length > 1024) return 'the path is over 1024 bytes';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(path)) return 'the path holds a control character';
  const segments = path.split('/');
  if (segments.length > 64) return 'the path is more than 64 levels deep';
  if (segments.some((s) => encoder.encode(s).length > 255)) return 'a name is over 255 bytes';
  if (path.normalize('NFC') !== path) return 'the name is not in Unicode NFC';
  return undefined;
}
