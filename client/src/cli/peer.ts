// `meshwork sync`'s peer listener (ADR 54): where it listens (`--peer-listen`, the port kept in
// the state directory so that a device keeps its address across restarts), what it announces
// (`--announce`, for a device behind a NAT or a port forward), its certificate, and the grant
// keys it verifies against (fetched from the service, again for an unknown key id).
import { readFile, rename, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import type { MeshworkClient } from '../client.ts';
import { loadOrCreatePeerIdentity, type PeerIdentity } from '../p2p/certificate.ts';
import { fetchedGrantKeys } from '../p2p/grant.ts';
import { createPeerHandler, startPeerListener, type PeerContent, type PeerListener } from '../p2p/peer-server.ts';
import { startRelay } from '../p2p/relay.ts';
import { UsageError } from './exit-codes.ts';

/** The default `--peer-listen`: every interface, a port chosen on the first start and kept. */
export const defaultPeerListen = '0.0.0.0:0';

/** Parses `--peer-listen`: `off`, or `HOST:PORT` (`[v6]:PORT`; port 0: chosen once and kept). */
export function parsePeerListen(value: string): { host: string; port: number } | 'off' {
  if (value === 'off') return 'off';
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (host === undefined || (isIP(host) === 0 && host !== 'localhost') || port > 65535)
    throw new UsageError(`--peer-listen takes off or an IP address and port (HOST:PORT), not ${JSON.stringify(value)}`, 'sync');
  return { host, port };
}

/** Parses `--announce`: comma-separated `https://host:port` URLs (at most 8, as presence allows). */
export function parseAnnounce(value: string): string[] {
  const urls = value
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u !== '');
  if (urls.length === 0 || urls.length > 8) throw new UsageError('--announce takes 1 to 8 comma-separated https://host:port URLs', 'sync');
  for (const u of urls) {
    let url: URL | undefined;
    try {
      url = new URL(u);
    } catch {
      url = undefined;
    }
    if (url?.protocol !== 'https:' || url.port === '' || url.pathname !== '/')
      throw new UsageError(`--announce: ${JSON.stringify(u)} is not an https://host:port URL`, 'sync');
  }
  return urls;
}

/** The endpoints announced by default: the listener's own address, or every non-internal address when it listens on all. */
export function defaultEndpoints(host: string, port: number, interfaces = networkInterfaces()): string[] {
  const wrap = (ip: string): string => (isIP(ip) === 6 ? `https://[${ip}]:${port}` : `https://${ip}:${port}`);
  if (host !== '0.0.0.0' && host !== '::') return [wrap(host)];
  const out: string[] = [];
  for (const list of Object.values(interfaces))
    for (const a of list ?? [])
      if (!a.internal && (a.family === 'IPv4' || host === '::') && !a.address.startsWith('fe80')) out.push(wrap(a.address));
  return out.slice(0, 8);
}

/** A running listener and what presence announces for it. */
export interface RunningPeer {
  listener: PeerListener;
  identity: PeerIdentity;
  endpoints: string[];
}

/**
 * Starts the peer listener for `sync`: the certificate from the state directory, the port kept
 * in `peer.json` there when `--peer-listen` says port 0 (a new one when the kept one is taken).
 */
export async function startSyncPeer(options: {
  stateDir: string;
  listen: { host: string; port: number };
  announce: string[] | undefined;
  handler: PeerHandler;
}): Promise<RunningPeer> {
  const identity = await loadOrCreatePeerIdentity(options.stateDir);
  const handler = options.handler;
  const keptFile = join(options.stateDir, 'peer.json');
  let port = options.listen.port;
  if (port === 0) {
    const kept = await readFile(keptFile, 'utf8')
      .then((t) => (JSON.parse(t) as { port?: unknown }).port)
      .catch(() => undefined);
    if (typeof kept === 'number' && Number.isInteger(kept) && kept > 0 && kept < 65536) port = kept;
  }
  let listener: PeerListener;
  try {
    listener = await startPeerListener(identity, handler, options.listen.host, port);
  } catch (err) {
    if (options.listen.port !== 0 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    listener = await startPeerListener(identity, handler, options.listen.host, 0);
  }
  if (options.listen.port === 0) {
    await writeFile(`${keptFile}.tmp`, JSON.stringify({ port: listener.port }) + '\n');
    await rename(`${keptFile}.tmp`, keptFile);
  }
  return { listener, identity, endpoints: options.announce ?? defaultEndpoints(options.listen.host, listener.port) };
}

type PeerHandler = ReturnType<typeof createPeerHandler>;

/** The relay URL of a device: `ws(s)://<server>/v1/devices/{id}/relay`. */
export function relayUrl(server: string, deviceId: string): string {
  const url = new URL(`v1/devices/${encodeURIComponent(deviceId)}/relay`, server.endsWith('/') ? server : `${server}/`);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.toString();
}

/** The peer API handler `sync` serves on its listener and over the relay, verifying grants with the service's keys. */
export function syncPeerHandler(
  client: MeshworkClient,
  deviceId: string,
  content: PeerContent,
  onServed: (bytes: number) => void,
): PeerHandler {
  const keys = fetchedGrantKeys(() => client.grantKeys());
  void keys.refresh?.();
  return createPeerHandler({ deviceId, keys, content, onServed });
}

/** Starts `sync`'s relay connection (the same handler; reconnects with backoff); logs each connect and the first drop after it. */
export function startSyncRelay(
  server: string,
  deviceId: string,
  token: string,
  handler: PeerHandler,
  log: (line: string) => void,
): { close(): Promise<void> } {
  let connected = false;
  return startRelay({
    url: relayUrl(server, deviceId),
    token,
    handler,
    onState: (state) => {
      if (state.connected) log('relay connected');
      else if (state.retryInMs === undefined) log(`relay stopped: ${state.reason ?? ''}`);
      else if (connected) log(`relay dropped: ${state.reason ?? ''}; connecting again in ${Math.round((state.retryInMs ?? 0) / 1000)} s`);
      connected = state.connected;
    },
  });
}
