// The WebSocket upgrade of `GET /v1/devices/{id}/relay` (ADR 52), on the HTTP server itself:
// express never sees upgrades. The same checks as the route hooks, in the same order: the id,
// the device's slot (421 with the owner), the caller (401), only the device itself (403); and
// none while the process drains (503 draining). A
// refusal is an HTTP answer with the JSON error envelope, and the socket is closed.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { ApiError } from '@meshwork/contract';
import { rangesContain, slotOf, type SlotRange } from '../../slots.ts';
import type { Authenticator } from '../auth.ts';
import type { SlotMap } from '../slot-map.ts';
import type { RelayHub } from './relay-hub.ts';

/** What the upgrade handler needs. */
export interface RelayUpgradeDeps {
  auth: Pick<Authenticator, 'authenticate'>;
  partition: string;
  slots: readonly SlotRange[];
  slotMap: Pick<SlotMap, 'ownerOf'>;
  hub: Pick<RelayHub, 'accept'>;
  /** Whether the process is shutting down: a new relay is refused (503 draining), the device connects elsewhere. */
  draining: () => boolean;
  logger: Logger;
}

const relayPath = /^\/v1\/devices\/([A-Za-z0-9_-]{1,64})\/relay$/;

function refuse(socket: Duplex, error: ApiError): void {
  const body = JSON.stringify(error.toJSON());
  const extra = Object.entries(error.headers).map(([name, value]) => `${name}: ${value}\r\n`);
  socket.end(
    `HTTP/1.1 ${error.status} ${error.code}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `${extra.join('')}Connection: close\r\n\r\n${body}`,
  );
}

/** The server's `upgrade` listener: accepts a device's relay, refuses everything else. */
export function relayUpgradeHandler(deps: RelayUpgradeDeps): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, socket, head) => {
    socket.on('error', () => undefined);
    void (async () => {
      const pathname = new URL(req.url ?? '/', 'http://relay').pathname;
      const match = relayPath.exec(pathname);
      if (match === null || req.method !== 'GET') throw new ApiError('not_found', `no WebSocket at ${req.method ?? ''} ${pathname}`);
      if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') throw new ApiError('invalid_request', 'upgrade: only websocket');
      if (deps.draining()) {
        throw new ApiError('draining', 'this process is shutting down; open the relay again', { headers: { 'Retry-After': '1' } });
      }
      const deviceId = match[1]!;
      const slot = slotOf(deviceId);
      if (!rangesContain(deps.slots, slot)) {
        const owner = await deps.slotMap.ownerOf(slot);
        throw new ApiError('misdirected', `device ${deviceId} is in slot ${slot}, which partition ${deps.partition} does not own`, {
          details: { slot, owner: owner?.url ?? null, ownerPartition: owner?.partition ?? null },
        });
      }
      const principal = await deps.auth.authenticate(req.headers.authorization);
      if (principal.kind !== 'device' || principal.deviceId !== deviceId) {
        throw new ApiError('forbidden', 'only the device itself may open its relay');
      }
      deps.hub.accept(deviceId, req, socket, head);
    })().catch((err: unknown) => {
      if (err instanceof ApiError) refuse(socket, err);
      else {
        deps.logger.error({ err }, 'Failed a relay upgrade');
        refuse(socket, new ApiError('store_unavailable', 'the relay could not be opened; retry', { headers: { 'Retry-After': '1' } }));
      }
    });
  };
}
