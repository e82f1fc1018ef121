// Where `meshwork` keeps what it knows: the configuration (server, user, device and its device
// token; never the account token) and the sync engine's state databases with an index of them.
// Locations follow the XDG base directories and can be moved per process by environment
// variables, so several agents (tests) run on one machine with distinct directories. The
// decisions (paths, file names, parsing) are pure; reading and writing are the small functions
// at the end, which write the configuration with mode 0600 in a directory with mode 0700.
import { createHash } from 'node:crypto';
import { chmod, mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CliError, CliExit, notLoggedInMessage } from './exit-codes.ts';

/** The environment variables that matter here. */
export type Env = Readonly<Record<string, string | undefined>>;

/** The configuration directory: $MESHWORK_CONFIG_DIR, else $XDG_CONFIG_HOME/meshwork, else ~/.config/meshwork. */
export function configDir(env: Env, home: string): string {
  if (env.MESHWORK_CONFIG_DIR) return resolve(env.MESHWORK_CONFIG_DIR);
  if (env.XDG_CONFIG_HOME) return join(resolve(env.XDG_CONFIG_HOME), 'meshwork');
  return join(home, '.config', 'meshwork');
}

/** The state directory: $MESHWORK_STATE_DIR, else $XDG_STATE_HOME/meshwork, else ~/.local/state/meshwork. */
export function stateDir(env: Env, home: string): string {
  if (env.MESHWORK_STATE_DIR) return resolve(env.MESHWORK_STATE_DIR);
  if (env.XDG_STATE_HOME) return join(resolve(env.XDG_STATE_HOME), 'meshwork');
  return join(home, '.local', 'state', 'meshwork');
}

/** The configuration file in its directory. */
export function configFile(dir: string): string {
  return join(dir, 'config.json');
}

/** What `meshwork login` stores. */
export interface DeviceConfig {
  version: 1;
  server: string;
  userId: string;
  deviceId: string;
  deviceName: string;
  /** The device token (`mwd.…`): what every command after login speaks with. */
  deviceToken: string;
}

/** Parses the configuration file's text; a broken file fails naming the bad field. */
export function parseConfig(text: string, file: string): DeviceConfig {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new CliError(CliExit.failure, `${file} is not JSON (${(err as Error).message}); run meshwork login again`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CliError(CliExit.failure, `${file} does not hold an object; run meshwork login again`);
  }
  const record = value as Record<string, unknown>;
  for (const field of ['server', 'userId', 'deviceId', 'deviceName', 'deviceToken'] as const) {
    if (typeof record[field] !== 'string' || record[field] === '') {
      throw new CliError(CliExit.failure, `${file}: ${field} is missing or not a string; run meshwork login again`);
    }
  }
  if (record.version !== 1) throw new CliError(CliExit.failure, `${file}: version ${String(record.version)} is not 1`);
  return {
    version: 1,
    server: record.server as string,
    userId: record.userId as string,
    deviceId: record.deviceId as string,
    deviceName: record.deviceName as string,
    deviceToken: record.deviceToken as string,
  };
}

/** The configuration as written: only the fields of DeviceConfig, whatever else the object holds. */
export function serializeConfig(config: DeviceConfig): string {
  const { version, server, userId, deviceId, deviceName, deviceToken } = config;
  return `${JSON.stringify({ version, server, userId, deviceId, deviceName, deviceToken }, null, 2)}\n`;
}

/** The state database's file name for a folder and an object: a hash of both, so each pair has its own. */
export function stateFileName(absoluteDir: string, objectId: string): string {
  const hash = createHash('sha256').update(absoluteDir).update('\0').update(objectId).digest('hex');
  return `${hash.slice(0, 32)}.db`;
}

/** The index of state databases: file name → the folder and object it is for. */
export interface StateIndex {
  version: 1;
  databases: Record<string, { dir: string; objectId: string }>;
}

/** Parses the index file's text; an unreadable index is treated as empty (the databases are still found by listing). */
export function parseStateIndex(text: string): StateIndex {
  try {
    const value = JSON.parse(text) as Partial<StateIndex>;
    if (value.version === 1 && typeof value.databases === 'object' && value.databases !== null) {
      const databases: StateIndex['databases'] = {};
      for (const [file, entry] of Object.entries(value.databases)) {
        if (typeof entry?.dir === 'string' && typeof entry.objectId === 'string')
          databases[file] = { dir: entry.dir, objectId: entry.objectId };
      }
      return { version: 1, databases };
    }
  } catch {
    // An index cut short by a crash: start again from what the directory holds.
  }
  return { version: 1, databases: {} };
}

/** The index with one database added or updated (pure). */
export function withDatabase(index: StateIndex, file: string, dir: string, objectId: string): StateIndex {
  return { version: 1, databases: { ...index.databases, [file]: { dir, objectId } } };
}

// ---- I/O

/** Reads the configuration; no file is "not logged in" (exit 77). */
export async function readConfig(dir: string): Promise<DeviceConfig> {
  const file = configFile(dir);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new CliError(CliExit.noPermission, notLoggedInMessage);
    throw err;
  }
  return parseConfig(text, file);
}

/** Writes the configuration atomically with mode 0600, its directory 0700. */
export async function writeConfig(dir: string, config: DeviceConfig): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const file = configFile(dir);
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, serializeConfig(config), { mode: 0o600 });
  // The mode of writeFile is masked by the umask; chmod is not.
  await chmod(temp, 0o600);
  await rename(temp, file);
  return file;
}

/** Removes the configuration file (nothing there is fine). */
export async function removeConfig(dir: string): Promise<void> {
  await rm(configFile(dir), { force: true });
}

const indexName = 'index.json';

/** Reads the state index (empty when there is none). */
export async function readStateIndex(dir: string): Promise<StateIndex> {
  try {
    return parseStateIndex(await readFile(join(dir, indexName), 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, databases: {} };
    throw err;
  }
}

/** Records a database in the index (atomically); answers its full path. */
export async function registerStateDatabase(dir: string, absoluteDir: string, objectId: string): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = stateFileName(absoluteDir, objectId);
  const index = withDatabase(await readStateIndex(dir), file, absoluteDir, objectId);
  const temp = join(dir, `${indexName}.${process.pid}.tmp`);
  await writeFile(temp, `${JSON.stringify(index, null, 2)}\n`, { mode: 0o600 });
  await rename(temp, join(dir, indexName));
  return join(dir, file);
}

/** Every state database in the directory with what the index says of it (unindexed ones too). */
export async function listStateDatabases(dir: string): Promise<{ file: string; path: string; dir?: string; objectId?: string }[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const index = await readStateIndex(dir);
  return names
    .filter((n) => n.endsWith('.db'))
    .sort()
    .map((file) => ({ file, path: join(dir, file), ...index.databases[file] }));
}
