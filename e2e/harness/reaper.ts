// The reaper: a tiny process that outlives nothing. Its parent writes "+<pgid>" to
// register a process group it started and "-<pgid>" when it stopped it itself, and
// "+netns NAME" / "+link NAME" (and "-..." to forget them) for the network namespaces and
// links of the local nodes (ADR 27). When the parent dies for any reason (a failed test,
// Ctrl-C, SIGKILL) the pipe closes, and the reaper kills every group still registered and
// deletes every namespace and link, so neither a server nor a network is left behind.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const groups = new Set<number>();
const namespaces = new Set<string>();
const links = new Set<string>();
const safeName = /^[\w.-]{1,15}$/;

function killAll(): void {
  for (const pgid of groups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // The group is already gone: nothing left to reap.
    }
  }
  groups.clear();
  // Namespaces go after their processes; deleting one deletes its veths and nftables rules.
  for (const name of namespaces) {
    spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
    rmSync(join('/etc/netns', name), { recursive: true, force: true });
  }
  namespaces.clear();
  for (const name of links) spawnSync('ip', ['link', 'del', name], { stdio: 'ignore' });
  links.clear();
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const add = line.startsWith('+');
  if (!add && !line.startsWith('-')) return;
  const [kind, name] = line.slice(1).split(' ');
  if (name !== undefined) {
    const set = kind === 'netns' ? namespaces : kind === 'link' ? links : undefined;
    if (!set || !safeName.test(name)) return;
    if (add) set.add(name);
    else set.delete(name);
    return;
  }
  const pgid = Number(kind);
  if (!Number.isInteger(pgid) || pgid <= 1) return;
  if (add) groups.add(pgid);
  else groups.delete(pgid);
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
