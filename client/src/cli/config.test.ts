// Where `meshwork` keeps its configuration and state, how the files parse, and that the
// configuration is written with mode 0600 in a 0700 directory and never holds more than the
// device token.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  configDir,
  listStateDatabases,
  parseConfig,
  parseStateIndex,
  readConfig,
  registerStateDatabase,
  serializeConfig,
  stateDir,
  stateFileName,
  withDatabase,
  writeConfig,
  type DeviceConfig,
} from './config.ts';
import { CliError, CliExit } from './exit-codes.ts';

const home = '/home/ada';
const temp = mkdtempSync(join(tmpdir(), 'meshwork-cli-config-'));
afterAll(() => rmSync(temp, { recursive: true, force: true }));

const config: DeviceConfig = {
  version: 1,
  server: 'https://mesh.example.com',
  userId: 'u1',
  deviceId: 'd1',
  deviceName: 'laptop',
  deviceToken: 'mwd.secret',
};

describe('locations', () => {
  it.each([
    [{}, '/home/ada/.config/meshwork', '/home/ada/.local/state/meshwork'],
    [{ XDG_CONFIG_HOME: '/xdg/config', XDG_STATE_HOME: '/xdg/state' }, '/xdg/config/meshwork', '/xdg/state/meshwork'],
    [
      { MESHWORK_CONFIG_DIR: '/m/config', MESHWORK_STATE_DIR: '/m/state', XDG_CONFIG_HOME: '/xdg/config', XDG_STATE_HOME: '/xdg/state' },
      '/m/config',
      '/m/state',
    ],
    [{ MESHWORK_CONFIG_DIR: '', XDG_CONFIG_HOME: '' }, '/home/ada/.config/meshwork', '/home/ada/.local/state/meshwork'],
  ])('%j', (env, config, state) => {
    expect(configDir(env, home)).toBe(config);
    expect(stateDir(env, home)).toBe(state);
  });
});

describe('parseConfig', () => {
  it('reads back what serializeConfig wrote', () => {
    expect(parseConfig(serializeConfig(config), 'c.json')).toEqual(config);
  });

  it('writes only the known fields (an account token never reaches the file)', () => {
    const text = serializeConfig({ ...config, accountToken: 'mwu.account' } as DeviceConfig);
    expect(text).not.toContain('mwu.account');
    expect(Object.keys(JSON.parse(text) as object).sort()).toEqual([
      'deviceId',
      'deviceName',
      'deviceToken',
      'server',
      'userId',
      'version',
    ]);
  });

  it.each([
    ['not json', /c\.json is not JSON/],
    ['[]', /does not hold an object/],
    [JSON.stringify({ ...config, deviceToken: undefined }), /c\.json: deviceToken is missing/],
    [JSON.stringify({ ...config, server: 3 }), /c\.json: server is missing or not a string/],
    [JSON.stringify({ ...config, version: 2 }), /version 2 is not 1/],
  ])('%s fails naming the problem', (text, message) => {
    expect(() => parseConfig(text, 'c.json')).toThrow(message);
  });
});

describe('state files', () => {
  it('names one database per folder and object', () => {
    const a = stateFileName('/home/ada/Documents', 'o1');
    expect(a).toMatch(/^[0-9a-f]{32}\.db$/);
    expect(stateFileName('/home/ada/Documents', 'o1')).toBe(a);
    expect(stateFileName('/home/ada/Documents', 'o2')).not.toBe(a);
    expect(stateFileName('/home/ada/Music', 'o1')).not.toBe(a);
    // The separator keeps ("/a", "bo") apart from ("/ab", "o").
    expect(stateFileName('/a', 'bo')).not.toBe(stateFileName('/ab', 'o'));
  });

  it.each([
    ['', {}],
    ['{"version":1,"databases":', {}],
    ['{"version":2,"databases":{}}', {}],
    ['{"version":1,"databases":{"x.db":{"dir":"/d","objectId":"o"},"y.db":{"dir":3}}}', { 'x.db': { dir: '/d', objectId: 'o' } }],
  ])('parses the index %s', (text, databases) => {
    expect(parseStateIndex(text)).toEqual({ version: 1, databases });
  });

  it('adds a database to the index', () => {
    const index = withDatabase({ version: 1, databases: { 'a.db': { dir: '/a', objectId: 'o' } } }, 'b.db', '/b', 'p');
    expect(index.databases).toEqual({ 'a.db': { dir: '/a', objectId: 'o' }, 'b.db': { dir: '/b', objectId: 'p' } });
  });

  it('registers databases and lists them with their folders, unindexed ones too', async () => {
    const dir = join(temp, 'state');
    expect(await listStateDatabases(dir)).toEqual([]);
    const path = await registerStateDatabase(dir, '/home/ada/Documents', 'o1');
    expect(path).toBe(join(dir, stateFileName('/home/ada/Documents', 'o1')));
    writeFileSync(path, '');
    writeFileSync(join(dir, 'stray.db'), '');
    writeFileSync(join(dir, 'stray.db-wal'), '');
    const listed = await listStateDatabases(dir);
    expect(listed).toHaveLength(2);
    expect(listed).toContainEqual({ file: 'stray.db', path: join(dir, 'stray.db') });
    expect(listed).toContainEqual({ file: stateFileName('/home/ada/Documents', 'o1'), path, dir: '/home/ada/Documents', objectId: 'o1' });
  });
});

describe('the configuration file', () => {
  it('is written with mode 0600 in a directory with mode 0700, and read back', async () => {
    const dir = join(temp, 'config', 'meshwork');
    const file = await writeConfig(dir, config);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(await readConfig(dir)).toEqual(config);
    expect(readFileSync(file, 'utf8')).not.toMatch(/mwu\./);
  });

  it('keeps 0600 when it is rewritten over a file with wider permissions', async () => {
    const dir = join(temp, 'wide');
    const file = await writeConfig(dir, config);
    const { chmodSync } = await import('node:fs');
    chmodSync(file, 0o644);
    await writeConfig(dir, { ...config, deviceName: 'renamed' });
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('is "not logged in" (exit 77) when missing', async () => {
    const error = await readConfig(join(temp, 'nowhere')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).exitCode).toBe(CliExit.noPermission);
    expect((error as CliError).message).toMatch(/not logged in; run meshwork login/);
  });
});
