// The Node.js flags the `meshwork` command runs with, and how it gets them when started without
// them. V8 reads them only when the process starts (`v8.setFlagsFromString` later changes
// nothing), so meshwork.ts carries them in its `#!/usr/bin/env -S node …` line for the installed
// command (npm's bin link runs the file itself) and, when run as `node meshwork.ts` without them,
// replaces its process with one that has them (ADR 69). It also replaces itself once to set
// NODE_COMPILE_CACHE, so that Node's compile cache is on before the first module is read
// (ADR 82).
import { join } from 'node:path';

/**
 * A young generation of 2 MiB per semi-space instead of Node 24's 16 (its new space measured
 * 32 MiB, 4 with the flag). Syncing many small files makes garbage faster than the default young
 * generation is collected: agents reached 140 to 170 MiB of RSS that way, and about 120 with
 * this flag, with no difference in speed beyond the noise (docs/agent.md). `--expose-gc` gives
 * the byte pacer its collector (contract/src/gc-pacer.ts, ADR 75). The data plane runs with the
 * same flags for the same reasons (contract/src/node-flags.ts). `--heap-growing-percent=10`
 * lets the heap grow to 1.1 × what the last full collection kept (but at least 8 MiB more) before
 * the next one, instead of V8's factor of up to 4: with the small young generation, a burst of small files or
 * a large transfer promotes garbage into the old generation, which then grew by 20 to 30 MiB
 * before it was collected (ADR 91).
 */
export const agentNodeFlags: readonly string[] = ['--max-semi-space-size=2', '--heap-growing-percent=10', '--expose-gc'];

/** The name of a flag (`--max-semi-space-size` of `--max-semi-space-size=2`), with `_` as `-`. */
function flagName(flag: string): string {
  return (flag.split('=')[0] ?? flag).replaceAll('_', '-');
}

/**
 * The arguments to start this program again with `flags`, or undefined when every flag is
 * already set: on the command line (`execArgv`) or in NODE_OPTIONS, with any value (a person's
 * own value wins).
 */
export function relaunchArguments(
  flags: readonly string[],
  process: { execArgv: readonly string[]; argv: readonly string[]; nodeOptions: string | undefined },
): string[] | undefined {
  const given = new Set([...process.execArgv, ...(process.nodeOptions ?? '').split(/\s+/)].filter((a) => a.startsWith('--')).map(flagName));
  const missing = flags.filter((flag) => !given.has(flagName(flag)));
  if (missing.length === 0) return undefined;
  return [...missing, ...process.execArgv, ...process.argv.slice(1)];
}

/**
 * The environment to start this program again with so that Node's module compile cache is on
 * from the first module (`NODE_COMPILE_CACHE`, in `node-compile-cache` under `tmp`, the
 * directory `module.enableCompileCache()` would use), or undefined when the environment already
 * sets it or turns the cache off (`NODE_DISABLE_COMPILE_CACHE`). Turned on at run time instead,
 * the cache still keeps compiled code, but Node 24 strips the types of every TypeScript module
 * again and keeps its type stripper loaded (ADR 82).
 */
export function compileCacheEnv(
  env: Readonly<Record<string, string | undefined>>,
  tmp: string,
): Record<string, string | undefined> | undefined {
  if (env.NODE_COMPILE_CACHE || env.NODE_DISABLE_COMPILE_CACHE) return undefined;
  return { ...env, NODE_COMPILE_CACHE: join(tmp, 'node-compile-cache') };
}
