// When the `meshwork` command starts itself again with its Node flags, and with what arguments.
import { describe, expect, it } from 'vitest';
import { agentNodeFlags, compileCacheEnv, relaunchArguments } from './node-flags.ts';

const flags = ['--max-semi-space-size=2'];
const argv = ['/usr/bin/node', '/opt/meshwork/meshwork.ts', 'sync', 'Docs', '--object', 'o1'];

describe('relaunchArguments', () => {
  it.each([
    {
      case: 'no flags at all',
      execArgv: [],
      nodeOptions: undefined,
      expected: [...flags, '/opt/meshwork/meshwork.ts', 'sync', 'Docs', '--object', 'o1'],
    },
    {
      case: 'other flags on the command line, kept after ours',
      execArgv: ['--cpu-prof'],
      nodeOptions: '--enable-source-maps',
      expected: [...flags, '--cpu-prof', '/opt/meshwork/meshwork.ts', 'sync', 'Docs', '--object', 'o1'],
    },
    {
      case: 'the flag on the command line (the #! line)',
      execArgv: ['--max-semi-space-size=2'],
      nodeOptions: undefined,
      expected: undefined,
    },
    {
      case: "a person's own value on the command line",
      execArgv: ['--max-semi-space-size=8'],
      nodeOptions: undefined,
      expected: undefined,
    },
    { case: 'the flag with underscores', execArgv: ['--max_semi_space_size=1'], nodeOptions: undefined, expected: undefined },
    { case: 'the flag in NODE_OPTIONS', execArgv: [], nodeOptions: '--enable-source-maps  --max-semi-space-size=4', expected: undefined },
  ])('$case', ({ execArgv, nodeOptions, expected }) => {
    expect(relaunchArguments(flags, { execArgv, argv, nodeOptions })).toEqual(expected);
  });

  it('adds only the flags that are missing', () => {
    expect(relaunchArguments(['--a=1', '--b=2'], { execArgv: ['--b=3'], argv: ['node', 'm.ts'], nodeOptions: undefined })).toEqual([
      '--a=1',
      '--b=3',
      'm.ts',
    ]);
  });

  it('are flags NODE_OPTIONS accepts too, but for --heap-growing-percent, which Node takes on the command line only', () => {
    // A person may set the others there instead; Node refuses to start on a flag NODE_OPTIONS
    // does not allow, so the command never puts one there (it relaunches with them as arguments).
    for (const flag of agentNodeFlags)
      expect(process.allowedNodeEnvironmentFlags.has(flagName(flag)), flag).toBe(flagName(flag) !== '--heap-growing-percent');
  });
});

describe('compileCacheEnv', () => {
  it('sets NODE_COMPILE_CACHE in the temporary directory, keeping the rest of the environment', () => {
    expect(compileCacheEnv({ PATH: '/bin', NODE_OPTIONS: '--x' }, '/var/tmp')).toEqual({
      PATH: '/bin',
      NODE_OPTIONS: '--x',
      NODE_COMPILE_CACHE: '/var/tmp/node-compile-cache',
    });
  });

  it.each([
    { case: 'already set', env: { NODE_COMPILE_CACHE: '/cache' } },
    { case: 'turned off', env: { NODE_DISABLE_COMPILE_CACHE: '1' } },
  ])('answers nothing when the cache is $case', ({ env }) => {
    expect(compileCacheEnv(env, '/var/tmp')).toBeUndefined();
  });
});

function flagName(flag: string): string {
  return flag.split('=')[0]!;
}
