// The reaper: a tiny process that outlives nothing. Its parent writes "+<pgid>" to
// register a process group it started and "-<pgid>" when it stopped it itself. When
// the parent dies for any reason (a failed test, Ctrl-C, SIGKILL) the pipe closes,
// and the reaper kills every group still registered, so no server is left behind.
import { createInterface } from 'node:readline';

const groups = new Set<number>();

function killAll(): void {
  for (const pgid of groups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // The group is already gone: nothing left to reap.
    }
  }
  groups.clear();
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const pgid = Number(line.slice(1));
  if (!Number.isInteger(pgid) || pgid <= 1) return;
  if (line.startsWith('+')) groups.add(pgid);
  else if (line.startsWith('-')) groups.delete(pgid);
});
lines.on('close', () => {
  killAll();
  process.exit(0);
});
// The reaper lives in its own process group, so a terminal's Ctrl-C does not reach it
// before it has done its work; a direct SIGTERM still cleans up first.
process.on('SIGTERM', () => {
  killAll();
  process.exit(0);
});
process.on('SIGINT', () => undefined);
