// The command line of `meshwork`: what parses into which command, and what is a usage error
// (exit 64) or bad input (exit 65).
import { describe, expect, it } from 'vitest';
import { commands, helpText, parseCommandLine, parseRemoteDirectory, parseRemotePath } from './args.ts';
import { CliError, CliExit, UsageError } from './exit-codes.ts';

describe('parseCommandLine', () => {
  it.each([
    [['login', '--server', 'http://h:1'], 'login', [], { server: 'http://h:1' }],
    [
      ['login', '--server=http://h:1', '--name', 'laptop', '--token-file', 't'],
      'login',
      [],
      { server: 'http://h:1', name: 'laptop', 'token-file': 't' },
    ],
    [['logout'], 'logout', [], {}],
    [['whoami'], 'whoami', [], {}],
    [['objects', 'ls'], 'objects ls', [], {}],
    [['objects', 'create', 'Photos'], 'objects create', ['Photos'], {}],
    [['objects', 'create', 'Photos', '--no-cloud'], 'objects create', ['Photos'], { 'no-cloud': true }],
    [['objects', 'share', 'o1', 'u2'], 'objects share', ['o1', 'u2'], { role: 'writer' }],
    [['objects', 'share', 'o1', 'u2', '--role', 'reader'], 'objects share', ['o1', 'u2'], { role: 'reader' }],
    [['objects', 'unshare', 'o1', 'u2'], 'objects unshare', ['o1', 'u2'], {}],
    [['objects', 'rm', 'o1'], 'objects rm', ['o1'], {}],
    [['devices', 'ls'], 'devices ls', [], {}],
    [['devices', 'revoke', 'd1', '--token-file', 'f'], 'devices revoke', ['d1'], { 'token-file': 'f' }],
    [['put', 'a.txt', 'o1:docs/a.txt'], 'put', ['a.txt', 'o1:docs/a.txt'], {}],
    [['put', '-f', 'a.txt', 'o1:a.txt'], 'put', ['a.txt', 'o1:a.txt'], { force: true }],
    [['get', 'o1:a.txt'], 'get', ['o1:a.txt'], {}],
    [['get', 'o1:a.txt', '-'], 'get', ['o1:a.txt', '-'], {}],
    [['get', 'o1:a.txt', 'b.txt', '--force'], 'get', ['o1:a.txt', 'b.txt'], { force: true }],
    [['remote', 'ls', 'laptop'], 'remote ls', ['laptop'], {}],
    [['remote', 'ls', 'd1', 'o1:docs'], 'remote ls', ['d1', 'o1:docs'], {}],
    [['remote', 'get', 'laptop', 'o1:a.txt'], 'remote get', ['laptop', 'o1:a.txt'], {}],
    [['remote', 'get', 'laptop', 'o1:a.txt', 'b.txt', '-f'], 'remote get', ['laptop', 'o1:a.txt', 'b.txt'], { force: true }],
    [['sync', 'dir', '--object', 'o1'], 'sync', ['dir'], { object: 'o1' }],
    [['sync', 'dir', '--object', 'o1', '--once'], 'sync', ['dir'], { object: 'o1', once: true }],
    [['status'], 'status', [], {}],
    [['status', '--object', 'o1'], 'status', [], { object: 'o1' }],
    [['help', 'put'], 'help', ['put'], {}],
    [['help', 'objects'], 'help', ['objects'], {}],
  ])('%j is %s', (argv, command, args, flags) => {
    const parsed = parseCommandLine(argv);
    expect(parsed).toMatchObject({ command, args, help: false, json: false });
    expect(parsed.flags).toEqual(flags);
  });

  it.each([
    [['whoami', '--json'], 'whoami'],
    [['objects', 'ls', '--json'], 'objects ls'],
    [['sync', 'd', '--json', '--object', 'o'], 'sync'],
  ])('%j asks for JSON', (argv, command) => {
    expect(parseCommandLine(argv)).toMatchObject({ command, json: true });
  });

  it.each([
    [[], 'help'],
    [['--help'], 'help'],
    [['-h'], 'help'],
    [['objects', '--help'], 'help'],
  ])('%j is the help', (argv, command) => {
    expect(parseCommandLine(argv).command).toBe(command);
  });

  it.each(commands.map((c) => [c.name]))('%s --help asks for help without its required arguments', (name) => {
    const parsed = parseCommandLine([...name.split(' '), '--help']);
    expect(parsed).toMatchObject({ command: name, help: true });
    expect(parseCommandLine([...name.split(' '), '-h']).help).toBe(true);
  });

  it.each([
    [['frobnicate'], /unknown command: frobnicate/],
    [['--json'], /a command comes first/],
    [['objects'], /objects needs a subcommand/],
    [['objects', 'frob'], /unknown command: objects frob/],
    [['whoami', '--bogus'], /Unknown option '--bogus'/],
    [['whoami', 'extra'], /unexpected argument extra/],
    [['login'], /login needs --server URL/],
    [['login', '--server'], /--server/],
    [['login', '--server', ''], /--server needs a value/],
    [['objects', 'create'], /objects create needs NAME/],
    [['objects', 'share', 'o1'], /objects share needs ID USER/],
    [['objects', 'share', 'o1', 'u', '--role', 'owner'], /--role is writer or reader, not owner/],
    [['put', 'a.txt'], /put needs LOCAL_FILE ID:PATH/],
    [['get'], /get needs ID:PATH/],
    [['get', 'o:a', 'b', 'c'], /unexpected argument c/],
    [['remote', 'get', 'laptop'], /remote get needs DEVICE ID:PATH/],
    [['remote', 'ls'], /remote ls needs DEVICE/],
    [['sync', 'dir'], /sync needs --object ID/],
    [['sync', '--object', 'o'], /sync needs DIR/],
    [['help', 'nothing'], /unknown command: nothing/],
  ])('%j is a usage error: %s', (argv, message) => {
    let error: unknown;
    try {
      parseCommandLine(argv);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toMatch(message);
  });
});

describe('parseRemotePath', () => {
  it.each([
    ['o1:a.txt', { objectId: 'o1', path: 'a.txt' }],
    ['o1:docs/q3 report.pdf', { objectId: 'o1', path: 'docs/q3 report.pdf' }],
    ['o1:/docs/a', { objectId: 'o1', path: 'docs/a' }],
    ['o1:a:b', { objectId: 'o1', path: 'a:b' }],
  ])('%s', (text, expected) => {
    expect(parseRemotePath(text)).toEqual(expected);
  });

  it.each(['a.txt', ':a.txt', 'o1:', 'o1:/', 'dir/o1:a', 'o1:a/../b', 'o1:..'])('%s is bad input (exit 65)', (text) => {
    let error: unknown;
    try {
      parseRemotePath(text);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).exitCode).toBe(CliExit.dataError);
  });
});

describe('parseRemoteDirectory', () => {
  it.each([
    ['o1', { objectId: 'o1', path: '' }],
    ['o1:', { objectId: 'o1', path: '' }],
    ['o1:/docs/', { objectId: 'o1', path: 'docs' }],
    ['o1:docs/q3', { objectId: 'o1', path: 'docs/q3' }],
  ])('%s', (text, expected) => {
    expect(parseRemoteDirectory(text)).toEqual(expected);
  });

  it.each([':docs', 'a/b:c', 'o1:a/../b'])('%s is bad input (exit 65)', (text) => {
    expect(() => parseRemoteDirectory(text)).toThrow(CliError);
  });
});

describe('helpText', () => {
  it('lists every command in the general help', () => {
    const text = helpText();
    for (const c of commands) expect(text).toContain(`  ${c.name} `);
  });

  it.each(commands.map((c) => [c.name]))('%s has a usage line and its options', (name) => {
    const text = helpText(name);
    expect(text).toMatch(new RegExp(`^Usage: meshwork ${name}`));
    for (const option of Object.keys(commands.find((c) => c.name === name)!.options)) expect(text).toContain(`--${option}`);
    expect(text).toContain('--json');
  });
});
