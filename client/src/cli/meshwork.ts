#!/usr/bin/env -S node --max-semi-space-size=2 --heap-growing-percent=10 --expose-gc
// The `meshwork` command a person installs on a device: `node client/src/cli/meshwork.ts`, or
// `npx meshwork` after `npm ci`. It runs with the Node flags of node-flags.ts: the first line
// gives them when the file is run as a program (npm's bin link); started as `node meshwork.ts`
// without them, the process replaces itself (execve, same process id) with one that has them,
// where the platform can (not on Windows). It does the same, once, when the environment does not
// set NODE_COMPILE_CACHE: the new process has it, so Node's module compile cache is on before
// the first module is read, and from the second run of an unchanged program on Node neither
// strips the modules' types again nor loads its type stripper's WebAssembly, about 14 MB less
// memory for the life of the process (`meshwork sync` runs for days; ADR 82). Where it cannot
// replace itself, it turns the cache on here, which still keeps compiled code. A cache that
// cannot be written changes nothing but that.
import { enableCompileCache } from 'node:module';
import { tmpdir } from 'node:os';
import { agentNodeFlags, compileCacheEnv, relaunchArguments } from './node-flags.ts';

const relaunch = relaunchArguments(agentNodeFlags, {
  execArgv: process.execArgv,
  argv: process.argv,
  nodeOptions: process.env.NODE_OPTIONS,
});
const cacheEnv = compileCacheEnv(process.env, tmpdir());
if ((relaunch !== undefined || cacheEnv !== undefined) && typeof process.execve === 'function') {
  try {
    const args = relaunch ?? [...process.execArgv, ...process.argv.slice(1)];
    process.execve(process.execPath, [process.execPath, ...args], cacheEnv ?? process.env);
  } catch (err) {
    // The program still works without the flags, only with more memory: say so and go on.
    process.stderr.write(`meshwork: warning: could not restart with its Node flags: ${String(err)}\n`);
  }
}

enableCompileCache();
await import('./start.ts');
