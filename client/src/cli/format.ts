// What `meshwork` prints for people: tables of objects and devices, sizes and rates, the
// progress line, one line per sync event, and the status of synced folders. Pure: every
// function takes values (the time included) and answers text, so format.test.ts pins it.
import type { AgentEvent, AgentStatus, SyncReport } from '../agent/index.ts';
import { formatBytes } from '../sizes.ts';
import type { Device, Me, MeshObject, RemoteEntry, RemoteObject } from '../types.ts';

export { formatBytes };

/** A transfer rate from bytes and milliseconds: `12.3 MiB/s` (`-` before any time passed). */
export function formatRate(bytes: number, ms: number): string {
  if (ms <= 0) return '-';
  return `${formatBytes(Math.round((bytes * 1000) / ms))}/s`;
}

/** One line of a progress display: label, bar, bytes done of total, rate. */
export function progressLine(label: string, bytes: number, total: number | undefined, elapsedMs: number, width = 24): string {
  const rate = formatRate(bytes, elapsedMs);
  if (total === undefined || total <= 0) return `${label}  ${formatBytes(bytes)}  ${rate}`;
  const fraction = Math.min(1, bytes / total);
  const filled = Math.round(fraction * width);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
  return `${label}  ${bar} ${String(Math.floor(fraction * 100)).padStart(3)}%  ${formatBytes(bytes)} / ${formatBytes(total)}  ${rate}`;
}

/** Rows as columns aligned under a header; the last column is not padded. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

/** `meshwork objects ls`. */
export function formatObjects(objects: readonly MeshObject[]): string {
  if (objects.length === 0) return 'no objects yet; create one with meshwork objects create NAME\n';
  return formatTable(
    ['ID', 'NAME', 'ROLE', 'MEMBERS', 'CREATED'],
    objects.map((o) => [o.id, o.name, o.role, String(o.members.length), o.createdAt]),
  );
}

/** One object, after `objects create` or `share`. */
export function formatObject(o: MeshObject): string {
  const members = o.members.map((m) => `${m.userId} (${m.role})`).join(', ');
  return `${o.id}  ${o.name}  role ${o.role}  members: ${members || 'none'}\n`;
}

/** `meshwork devices ls`. */
export function formatDevices(devices: readonly Device[]): string {
  return formatTable(
    ['ID', 'NAME', 'ONLINE', 'CREATED', ''],
    devices.map((d) => [d.id, d.name, d.online ? 'yes' : 'no', d.createdAt, d.current ? '(this device)' : '']),
  );
}

/** `meshwork remote ls DEVICE`: the objects of a device the caller may browse. */
export function formatRemoteObjects(objects: readonly RemoteObject[]): string {
  if (objects.length === 0) return 'no objects on that device that you may browse\n';
  return formatTable(
    ['ID', 'NAME'],
    objects.map((o) => [o.objectId, o.name]),
  );
}

/** `meshwork remote ls DEVICE ID[:PATH]`: a directory on a device (directories end in /). */
export function formatRemoteEntries(entries: readonly RemoteEntry[]): string {
  if (entries.length === 0) return 'empty directory\n';
  return formatTable(
    ['SIZE', 'MODIFIED', 'NAME'],
    entries.map((e) => [e.kind === 'dir' ? '-' : formatBytes(e.size), e.mtime, e.kind === 'dir' ? `${e.name}/` : e.name]),
  );
}

/** `meshwork whoami`. */
export function formatMe(me: Me, server: string, deviceName: string): string {
  const quota = me.storage.quotaBytes === null ? 'no quota' : `quota ${formatBytes(me.storage.quotaBytes)}`;
  return [
    `user    ${me.name} (${me.id})`,
    `device  ${deviceName} (${me.deviceId ?? 'none'})`,
    `server  ${server}`,
    `storage ${formatBytes(me.storage.usedBytes)} used, ${quota}`,
    '',
  ].join('\n');
}

/** A sync event for people, or undefined for those the progress display shows instead. */
export function formatEvent(event: AgentEvent): string | undefined {
  switch (event.type) {
    case 'scan':
      return `scanned ${event.files} files, ${event.changed} changed (${event.ms} ms)`;
    case 'upload':
    case 'download':
      return undefined;
    case 'committed': {
      const verb = { up: 'uploaded', down: 'downloaded', 'delete-up': 'deleted on the server', 'delete-down': 'deleted here' }[
        event.direction
      ];
      return `${verb} ${event.path}`;
    }
    case 'conflict':
      return `conflict on ${event.path}: the other version is kept as ${event.copy}`;
    case 'problem':
      return `problem with ${event.path} (${event.code}): ${event.message}`;
    case 'idle':
      return 'up to date';
    case 'retry':
      return `retrying in ${(event.delayMs / 1000).toFixed(1)} s: ${event.reason}`;
  }
}

/** The summary of `sync --once`. */
export function formatReport(report: SyncReport): string {
  const parts = [
    `${report.uploaded} uploaded`,
    `${report.downloaded} downloaded`,
    `${report.deletedRemote} deleted on the server`,
    `${report.deletedLocal} deleted here`,
    `${report.conflicts} conflicts`,
    `${report.problems} problems`,
  ];
  const hint = report.problems > 0 ? '; see meshwork status' : '';
  return `synced: ${parts.join(', ')}${hint}\n`;
}

/** `meshwork status` when there is nothing to show. */
export const nothingSyncedYet = 'nothing synced yet; start with meshwork sync DIR --object ID\n';

/** One synced folder's status for `meshwork status`. */
export function formatStatus(status: AgentStatus): string {
  const lines = [`${status.dir}  <->  ${status.objectId}`];
  if (status.stopped) lines.push(`  STOPPED (${status.stopped.code}) since ${status.stopped.at}: ${status.stopped.message}`);
  lines.push(`  last sync: ${status.lastSyncAt ?? 'never'}`);
  const up = status.pending.filter((p) => p.direction === 'up').length;
  lines.push(`  pending: ${up} to upload, ${status.pending.length - up} to download`);
  for (const p of status.pending.slice(0, 20)) lines.push(`    ${p.direction === 'up' ? '↑' : '↓'} ${p.path}`);
  if (status.pending.length > 20) lines.push(`    … and ${status.pending.length - 20} more`);
  lines.push(`  problems: ${status.problems.length}`);
  for (const p of status.problems) lines.push(`    ${p.path} (${p.code}, since ${p.since}): ${p.message}`);
  lines.push(`  conflicts: ${status.conflicts.length}`);
  for (const c of status.conflicts.slice(0, 20)) lines.push(`    ${c.path} -> ${c.copy} (${c.at})`);
  const t = status.transfer;
  lines.push(
    `  bytes: ${t.fromPeers} from peers, ${t.fromRelays} through relays, ${t.fromCloud} from the cloud, ${t.served} served to peers`,
  );
  return lines.join('\n') + '\n';
}
