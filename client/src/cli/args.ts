// The command line of `meshwork`: every command, its flags and positionals, its usage text, and
// the parse of argv into a command. Pure (no I/O, no process): commands.ts acts on what this
// answers, and args.test.ts holds the table of accepted and refused command lines.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CliError, CliExit, UsageError } from './exit-codes.ts';
import { parseAnnounce, parsePeerListen } from './peer.ts';

type OptionSpec = NonNullable<ParseArgsConfig['options']>[string] & { description: string; valueName?: string };

/** One command: its name (`objects share`), positionals, flags and a line of help. */
export interface CommandSpec {
  name: string;
  /** Positionals as shown in the usage; a trailing `?` marks an optional one. */
  args: readonly string[];
  options: Readonly<Record<string, OptionSpec>>;
  summary: string;
  /** More help printed under the usage. */
  details?: string;
}

const commonOptions: Record<string, OptionSpec> = {
  json: { type: 'boolean', description: 'print one JSON document on stdout (sync: one JSON line per event)' },
  help: { type: 'boolean', short: 'h', description: 'show this help' },
};

const tokenFile: OptionSpec = {
  type: 'string',
  valueName: 'FILE',
  description: 'read the account token from FILE (else $MESHWORK_ACCOUNT_TOKEN, else a prompt on a terminal, else stdin)',
};
const force: OptionSpec = { type: 'boolean', short: 'f', description: 'replace what is there' };

/** Every command `meshwork` knows, in the order `meshwork help` lists them. */
export const commands: readonly CommandSpec[] = [
  {
    name: 'login',
    args: [],
    options: {
      server: {
        type: 'string',
        valueName: 'URL',
        description: 'the Meshwork server (gateway or partition), e.g. https://mesh.example.com',
      },
      name: { type: 'string', valueName: 'DEVICE', description: "this device's name (default: the host name)" },
      'token-file': tokenFile,
    },
    summary: 'register this device with your account and store its device token',
    details: 'The account token is used once to register the device and is never stored; only the device token is.',
  },
  { name: 'logout', args: [], options: {}, summary: 'delete this device on the server and forget its configuration' },
  { name: 'whoami', args: [], options: {}, summary: 'show the user and device this configuration speaks as' },
  { name: 'objects ls', args: [], options: {}, summary: 'list the objects (shared folders) you are a member of' },
  {
    name: 'objects create',
    args: ['NAME'],
    options: { 'no-cloud': { type: 'boolean', description: 'do not keep content in cloud storage' } },
    summary: 'create an object you own',
  },
  {
    name: 'objects share',
    args: ['ID', 'USER'],
    options: { role: { type: 'string', valueName: 'ROLE', default: 'writer', description: 'writer (default) or reader' } },
    summary: 'add a user (by user id) to an object, or change its role',
  },
  { name: 'objects unshare', args: ['ID', 'USER'], options: {}, summary: 'remove a user from an object' },
  { name: 'objects rm', args: ['ID'], options: {}, summary: 'delete an object you own and all its files' },
  { name: 'devices ls', args: [], options: {}, summary: "list your user's devices" },
  {
    name: 'devices revoke',
    args: ['ID'],
    options: { 'token-file': tokenFile },
    summary: 'delete a device: its token stops working',
    details: 'Revoking another device needs the account token (read as login reads it); this device may revoke itself.',
  },
  {
    name: 'put',
    args: ['LOCAL_FILE', 'ID:PATH'],
    options: { force },
    summary: 'upload a file to PATH in object ID',
    details:
      'Without --force the upload only creates (If-None-Match: *) and fails if PATH exists; with --force it replaces the current version (If-Match).',
  },
  {
    name: 'get',
    args: ['ID:PATH', 'LOCAL_FILE?'],
    options: { force },
    summary: 'download PATH of object ID to LOCAL_FILE (default: its base name here; - for stdout)',
    details: 'Without --force an existing LOCAL_FILE is left alone and the command fails.',
  },
  {
    name: 'remote ls',
    args: ['DEVICE', 'ID[:PATH]?'],
    options: {},
    summary: 'list what a device holds, through the server: its objects, or a directory of object ID on it',
    details:
      'DEVICE is a device id or the name of one of your devices. The device must be running meshwork sync with its relay on; one that is not is offline (exit 75).',
  },
  {
    name: 'remote get',
    args: ['DEVICE', 'ID:PATH', 'LOCAL_FILE?'],
    options: { force },
    summary: 'download PATH of object ID from the device DEVICE itself, through the server (default: its base name here; - for stdout)',
    details:
      'Works for peer-to-peer-only objects too. An interrupted download leaves a .part file beside LOCAL_FILE; running the same command again continues it where it stopped while the file on the device is unchanged. Without --force an existing LOCAL_FILE is left alone.',
  },
  {
    name: 'sync',
    args: ['DIR'],
    options: {
      object: { type: 'string', valueName: 'ID', description: 'the object the folder mirrors (required)' },
      once: { type: 'boolean', description: 'one full pass, then exit (exit 2 when some paths have problems)' },
      'peer-listen': {
        type: 'string',
        valueName: 'HOST:PORT',
        description:
          'where the peer listener serves other devices (default $MESHWORK_PEER_LISTEN, else 0.0.0.0:0: port chosen once and kept); off: none',
      },
      announce: {
        type: 'string',
        valueName: 'URLS',
        description: "the https://host:port endpoints presence announces (comma-separated; default: the listener's addresses)",
      },
      'no-relay': { type: 'boolean', description: 'keep no relay connection to the server (remote access and relayed fetches)' },
    },
    summary: 'keep DIR and an object in sync until Ctrl-C (or once, with --once)',
    details:
      "Files are fetched from the devices that hold them first (TLS, certificate pinned, grants from the server), then from the cloud. While it runs, the peer listener serves this folder's blocks to devices the server grants them to.",
  },
  {
    name: 'status',
    args: [],
    options: { object: { type: 'string', valueName: 'ID', description: 'only the folders synced with this object' } },
    summary: 'show every synced folder: pending changes, problems, conflicts, whether it stopped',
  },
  { name: 'help', args: ['COMMAND?'], options: {}, summary: 'show help for a command' },
];

/** The command groups that take a subcommand. */
const groups = new Set(commands.filter((c) => c.name.includes(' ')).map((c) => c.name.split(' ')[0]!));

/** A parsed command line. */
export interface ParsedCommand {
  /** The command's full name (`objects share`), or `help`. */
  command: string;
  /** Positionals after the command, in order. */
  args: string[];
  /** Flag values by name (strings or booleans; absent flags are absent). */
  flags: Record<string, string | boolean | undefined>;
  json: boolean;
  /** `--help` was given: print the command's usage and exit 0. */
  help: boolean;
}

/** The spec of a command by its full name. */
export function commandSpec(name: string): CommandSpec | undefined {
  return commands.find((c) => c.name === name);
}

/** Parses argv (without node and the script) into a command; throws UsageError when it is wrong. */
export function parseCommandLine(argv: readonly string[]): ParsedCommand {
  const first = argv[0];
  if (first === undefined || first === '--help' || first === '-h') {
    return { command: 'help', args: [], flags: {}, json: argv.includes('--json'), help: false };
  }
  if (first.startsWith('-')) throw new UsageError(`a command comes first, not the flag ${first}`);
  let name = first;
  let rest = argv.slice(1);
  if (groups.has(first)) {
    const sub = argv[1];
    if (sub === undefined || sub === '--help' || sub === '-h') {
      if (sub !== undefined) return { command: 'help', args: [first], flags: {}, json: false, help: false };
      throw new UsageError(`${first} needs a subcommand`, first);
    }
    name = `${first} ${sub}`;
    rest = argv.slice(2);
  }
  const spec = commandSpec(name);
  if (spec === undefined) throw new UsageError(`unknown command: ${name}`, groups.has(first) ? first : undefined);
  const options = { ...commonOptions, ...spec.options };
  let parsed;
  try {
    parsed = parseArgs({
      args: [...rest],
      options: Object.fromEntries(Object.entries(options).map(([k, { description: _d, valueName: _v, ...o }]) => [k, o])),
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0]!, name);
  }
  const flags = parsed.values as Record<string, string | boolean | undefined>;
  const help = flags.help === true;
  const json = flags.json === true;
  delete flags.help;
  delete flags.json;
  const positionals = parsed.positionals;
  if (!help) {
    const required = spec.args.filter((a) => !a.endsWith('?')).length;
    if (positionals.length < required) throw new UsageError(`${name} needs ${spec.args.filter((a) => !a.endsWith('?')).join(' ')}`, name);
    if (positionals.length > spec.args.length) throw new UsageError(`${name}: unexpected argument ${positionals[spec.args.length]}`, name);
    for (const [flag, option] of Object.entries(options)) {
      if (option.type === 'string' && flags[flag] === '') throw new UsageError(`--${flag} needs a value`, name);
    }
    if (name === 'help' && positionals[0] !== undefined && commandSpec(positionals[0]) === undefined && !groups.has(positionals[0])) {
      throw new UsageError(`unknown command: ${positionals[0]}`);
    }
    if (name === 'login' && flags.server === undefined) throw new UsageError('login needs --server URL', name);
    if (name === 'sync' && flags.object === undefined) throw new UsageError('sync needs --object ID', name);
    if (name === 'sync' && typeof flags['peer-listen'] === 'string') parsePeerListen(flags['peer-listen']);
    if (name === 'sync' && typeof flags.announce === 'string') parseAnnounce(flags.announce);
    if (name === 'objects share' && flags.role !== 'writer' && flags.role !== 'reader') {
      throw new UsageError(`--role is writer or reader, not ${String(flags.role)}`, name);
    }
  }
  return { command: name, args: positionals, flags, json, help };
}

/** A remote file named on the command line as `ID:PATH`. */
export interface RemotePath {
  objectId: string;
  path: string;
}

/** Parses `ID:PATH`; an empty id or path, or a `..` segment, is bad input (exit 65). Leading slashes of the path are dropped. */
export function parseRemotePath(text: string): RemotePath {
  const colon = text.indexOf(':');
  if (colon <= 0) throw new CliError(CliExit.dataError, `expected ID:PATH, not ${JSON.stringify(text)}`);
  const objectId = text.slice(0, colon);
  const path = text.slice(colon + 1).replace(/^\/+/, '');
  if (objectId.includes('/')) throw new CliError(CliExit.dataError, `expected ID:PATH, not ${JSON.stringify(text)}`);
  if (path === '') throw new CliError(CliExit.dataError, `${JSON.stringify(text)} names no path after the colon`);
  // fetch would resolve `..` away and quietly name another path; the server refuses them anyway.
  if (path.split('/').includes('..')) throw new CliError(CliExit.dataError, `${JSON.stringify(text)}: a path may not contain .. segments`);
  return { objectId, path };
}

/** Parses `ID[:PATH]` (a place in an object to list): the path may be absent or empty (the top directory). */
export function parseRemoteDirectory(text: string): RemotePath {
  const colon = text.indexOf(':');
  const objectId = colon < 0 ? text : text.slice(0, colon);
  const path = colon < 0 ? '' : text.slice(colon + 1).replace(/^\/+|\/+$/g, '');
  if (objectId === '' || objectId.includes('/'))
    throw new CliError(CliExit.dataError, `expected ID or ID:PATH, not ${JSON.stringify(text)}`);
  if (path.split('/').includes('..')) throw new CliError(CliExit.dataError, `${JSON.stringify(text)}: a path may not contain .. segments`);
  return { objectId, path };
}

function usageLine(spec: CommandSpec): string {
  const flags = Object.entries(spec.options).map(([k, o]) => (o.type === 'string' ? `[--${k} ${o.valueName ?? 'VALUE'}]` : `[--${k}]`));
  const args = spec.args.map((a) => (a.endsWith('?') ? `[${a.slice(0, -1)}]` : a));
  return ['meshwork', spec.name, ...args, ...flags, '[--json]'].join(' ');
}

function optionLines(options: Readonly<Record<string, OptionSpec>>): string[] {
  return Object.entries(options).map(([k, o]) => {
    const left = `${o.short ? `-${o.short}, ` : ''}--${k}${o.type === 'string' ? ` ${o.valueName ?? 'VALUE'}` : ''}`;
    return `  ${left.padEnd(24)} ${o.description}`;
  });
}

/** The help text of one command (or of a group, or of everything when `name` is undefined). */
export function helpText(name?: string): string {
  if (name === undefined) {
    const width = Math.max(...commands.map((c) => c.name.length));
    return [
      'meshwork: keep folders on this device in sync with a Meshwork server',
      '',
      'Usage: meshwork COMMAND [ARGS] [--json] [--help]',
      '',
      'Commands:',
      ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
      '',
      'Configuration: $MESHWORK_CONFIG_DIR (default ~/.config/meshwork); state: $MESHWORK_STATE_DIR (default ~/.local/state/meshwork).',
      'Exit codes: 0 ok, 1 failure, 2 partial, 64 usage, 65 bad input, 69 server unavailable, 75 retry later, 77 not logged in or revoked.',
      '',
    ].join('\n');
  }
  if (groups.has(name)) {
    const members = commands.filter((c) => c.name.startsWith(`${name} `));
    return [
      `Usage: meshwork ${name} SUBCOMMAND [ARGS] [--json] [--help]`,
      '',
      ...members.map((c) => `  ${usageLine(c)}`),
      '',
      ...members.map((c) => `  ${c.name}: ${c.summary}`),
      '',
    ].join('\n');
  }
  const spec = commandSpec(name);
  if (spec === undefined) return helpText();
  return [
    `Usage: ${usageLine(spec)}`,
    '',
    spec.summary,
    ...(spec.details ? ['', spec.details] : []),
    '',
    'Options:',
    ...optionLines({ ...spec.options, ...commonOptions }),
    '',
  ].join('\n');
}
