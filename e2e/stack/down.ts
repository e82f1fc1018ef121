// `make down`: stops the local stack and waits until nothing of it is left running, then
// removes whatever network it may have left (a stack killed without its reaper); with
// `--wipe` (`make reset`, `make down WIPE=1`) it also deletes the stack's data.
import { rm } from 'node:fs/promises';
import { waitFor } from '../harness/wait.ts';
import { fullPlan, leftovers, removeNetwork } from '../node-agent/network.ts';
import { processAlive, readSettings, readState, stackDir } from './state.ts';

const dir = stackDir();
const wipe = process.argv.includes('--wipe');
const state = readState(dir);
if (!state || !processAlive(state.pid)) {
  console.log("Meshwork's local stack is not running.");
} else {
  process.kill(state.pid, 'SIGTERM');
  try {
    await waitFor(() => !processAlive(state.pid), { description: 'the local stack to stop', timeoutMs: 60_000, intervalMs: 200 });
  } catch {
    // Its reaper kills every server it started once it is gone.
    process.kill(state.pid, 'SIGKILL');
    await waitFor(() => !processAlive(state.pid), { description: 'the local stack to die', timeoutMs: 10_000, intervalMs: 100 });
  }
  // The stack's reaper kills what is left of it and removes its network; `make down` returns after it.
  const reaper = state.reaper;
  if (reaper !== undefined) {
    await waitFor(() => !processAlive(reaper), {
      description: "the local stack's reaper to finish",
      timeoutMs: 30_000,
      intervalMs: 100,
    }).catch(() => undefined);
  }
  console.log("Stopped Meshwork's local stack.");
}
const block = readSettings(dir)?.block;
if (block !== undefined) {
  // The reaper removes the network once the stack is gone; wait for it, then sweep what is left.
  await waitFor(() => leftovers(block).length === 0 || undefined, {
    description: 'the network to go',
    timeoutMs: 10_000,
    intervalMs: 100,
  }).catch(() => undefined);
  if (leftovers(block).length > 0 && process.getuid?.() === 0) await removeNetwork(fullPlan(block));
  const left = leftovers(block);
  if (left.length > 0) console.log(`Left behind (remove as root): ${left.join(' ')}`);
}
if (wipe) {
  await rm(dir, { recursive: true, force: true });
  console.log(`Removed the local stack's data (${dir}).`);
}
