// The fault CLI: injects faults into the running local stack's node agent.
//   npm run fault -- power-off --node mw-node-1 [--mode freeze|kill]
import { parseArgs } from 'node:util';
import { readState, stackDir } from '../stack/state.ts';
import type { FaultRequest } from './fault-server.ts';

const usage = `usage: npm run fault -- <action> [options]
  power-off --node N [--mode freeze|kill]   heartbeats stop; processes frozen or killed
  power-on --node N
  freeze-pod --namespace NS --pod P         SIGSTOP the pod's processes
  thaw-pod --namespace NS --pod P
  kill-pod --namespace NS --pod P [--signal SIGKILL]
  volume-read-only --namespace NS --claim C
  volume-writable --namespace NS --claim C
  corrupt-file --namespace NS --claim C --file PATH [--offset N]`;

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    node: { type: 'string' },
    mode: { type: 'string' },
    namespace: { type: 'string', short: 'n' },
    pod: { type: 'string' },
    signal: { type: 'string' },
    claim: { type: 'string' },
    file: { type: 'string' },
    offset: { type: 'string' },
  },
});
const action = positionals[0];
if (!action || action === 'help') {
  console.log(usage);
  process.exit(action ? 0 : 2);
}
const state = readState(stackDir());
if (!state) {
  console.error("Meshwork's local stack is not running: start it with make up");
  process.exit(1);
}
const fault = { action, ...values, ...(values.offset !== undefined ? { offset: Number(values.offset) } : {}) } as FaultRequest;
const res = await fetch(`${state.faults}/faults`, {
  method: 'POST',
  body: JSON.stringify(fault),
  headers: { 'content-type': 'application/json' },
});
const body = (await res.json()) as { done?: string; error?: { message: string } };
if (!res.ok) {
  console.error(`${action} failed: ${body.error?.message ?? res.statusText}`);
  process.exit(1);
}
console.log(body.done);
