// `make down`: stops the local stack and waits until nothing of it is left running.
import { waitFor } from '../harness/wait.ts';
import { processAlive, readState, stackDir } from './state.ts';

const state = readState(stackDir());
if (!state || !processAlive(state.pid)) {
  console.log("Meshwork's local stack is not running.");
  process.exit(0);
}
process.kill(state.pid, 'SIGTERM');
try {
  await waitFor(() => !processAlive(state.pid), { description: 'the local stack to stop', timeoutMs: 60_000, intervalMs: 200 });
} catch {
  // Its reaper kills every server it started once it is gone.
  process.kill(state.pid, 'SIGKILL');
  await waitFor(() => !processAlive(state.pid), { description: 'the local stack to die', timeoutMs: 10_000, intervalMs: 100 });
}
console.log("Stopped Meshwork's local stack.");
