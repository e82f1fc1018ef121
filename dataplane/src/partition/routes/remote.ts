// Remote access through a device's relay (ADR 52): a person browses and downloads what a device
// holds (`…/remote/files/…`), and a device fetches a block from a peer it cannot reach directly
// (`…/remote/blocks/{sha256}`). The caller's credentials and cookies never reach the device:
// the request to it is built afresh, with a grant the service signs (or the one the calling
// device presents) and only the headers a read needs. A device whose relay another replica
// holds is reached one hop away; `GET /v1/devices/{id}/relay` itself is a WebSocket upgrade
// (relay/relay-upgrade.ts), and answers a plain GET 400.
import { request as httpRequest, type IncomingMessage } from 'node:http';
import http2, { type OutgoingHttpHeaders } from 'node:http2';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Router } from 'express';
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import { ApiError, GrantError, grantHeaderName, processGcPacer, signGrant, verifyGrant, type GrantRole } from '@meshwork/contract';
import { normalizeEntryPath } from '../../paths.ts';
import type { GrantKeys } from '../../stores/grant-keys.ts';
import type { MetadataStore } from '../../stores/metadata-store.ts';
import { invalidRequest } from '../errors.ts';
import type { Caller, RouteHooks } from '../hooks.ts';
import { passedHeaders, RelayUnavailableError, type RelayHub, type RelaySession } from '../relay/relay-hub.ts';
import type { ObjectAccess } from '../sync/access.ts';

/** The header a replica sets on a request it forwards to the replica holding the relay; that one does not forward again. */
export const relayHopHeader = 'meshwork-relay-hop';

/** How long a device has to start answering a relayed request. */
export const relayAnswerTimeoutMs = 30_000;

/** What the remote routes need besides the hooks. */
export interface RemoteRouteDeps {
  metadata: Pick<MetadataStore, 'getDevice' | 'listMemberships'>;
  access: Pick<ObjectAccess, 'load'>;
  grants: Pick<GrantKeys, 'signing' | 'verifying'>;
  relay: Pick<RelayHub, 'local' | 'locate' | 'isSelf'>;
  logger: Logger;
}

/** The request headers a read passes on to the device (Range and its validators); nothing else of the caller's. */
const passedRequestHeaders = ['range', 'if-range', 'if-none-match', 'if-modified-since'] as const;

function offline(deviceId: string, retryAfter = 5): ApiError {
  return new ApiError('device_offline', `device ${deviceId} is not connected to the service; retry when it is`, {
    headers: { 'Retry-After': String(retryAfter) },
  });
}

function unavailable(err: RelayUnavailableError, deviceId: string): ApiError {
  if (err.reason === 'offline') return offline(deviceId, err.retryAfterSeconds);
  return new ApiError('relay_busy', err.message, { headers: { 'Retry-After': String(err.retryAfterSeconds) } });
}

/** A transform that paces what passes through to the relay's byte rate. */
function pacer(relay: RelaySession): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      processGcPacer.streamed(chunk.length);
      const wait = relay.rate.take(chunk.length);
      if (wait === 0) callback(null, chunk);
      else setTimeout(() => callback(null, chunk), wait).unref();
    },
  });
}

/** Sends a GET to the device over the relay this process holds and streams its answer back. */
async function relayHere(
  relay: RelaySession,
  target: { path: string; authorization: string },
  req: Request,
  res: Response,
  logger: Logger,
): Promise<void> {
  const headers: OutgoingHttpHeaders = { ':method': 'GET', ':path': target.path, authorization: target.authorization };
  for (const name of passedRequestHeaders) {
    const value = req.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  let stream;
  try {
    stream = relay.request(headers);
  } catch (err) {
    if (err instanceof RelayUnavailableError) throw unavailable(err, relay.deviceId);
    throw err;
  }
  const closeStream = (): void => void stream.close();
  res.once('close', closeStream);
  const answer = await new Promise<{ status: number; headers: Record<string, string> }>((resolve, reject) => {
    const timer = setTimeout(() => reject(offline(relay.deviceId, 1)), relayAnswerTimeoutMs);
    const fail = (): void => {
      clearTimeout(timer);
      reject(offline(relay.deviceId, 1));
    };
    stream.once('error', fail);
    stream.once('close', fail);
    stream.once('response', (h) => {
      clearTimeout(timer);
      stream.off('error', fail);
      stream.off('close', fail);
      resolve({ status: Number(h[':status']), headers: passedHeaders(h) });
    });
  }).catch((err: unknown) => {
    stream.close();
    throw err;
  });
  res.status(answer.status);
  for (const [name, value] of Object.entries(answer.headers)) res.setHeader(name, value);
  res.setHeader('Cache-Control', 'private, no-store');
  let sent = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      sent += chunk.length;
      callback(null, chunk);
    },
  });
  try {
    // Not ended by the pipeline: a stream cut short by the device's connection going away ends
    // without an error, and an ended answer leaves the caller waiting for the missing bytes.
    await pipeline(stream, counter, pacer(relay), res, { end: false });
    const length = answer.headers['content-length'];
    if (stream.rstCode !== undefined && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) throw new Error(`reset ${stream.rstCode}`);
    if (length !== undefined && Number(length) !== sent) throw new Error(`the device sent ${sent} of ${length} bytes`);
    res.end();
  } catch (err) {
    // The answer is under way: a cut-short body (shorter than Content-Length, or a reset) tells the caller.
    logger.info({ err, deviceId: relay.deviceId }, 'Stopped a relayed answer');
    res.destroy();
  } finally {
    res.off('close', closeStream);
  }
}

/** Forwards the request one hop to the replica holding the relay, with the caller's own credentials (it checks them again). */
async function relayViaPeer(address: string, deviceId: string, req: Request, res: Response): Promise<void> {
  const headers: Record<string, string> = { [relayHopHeader]: '1' };
  for (const name of ['authorization', 'cookie', grantHeaderName, 'traceparent', ...passedRequestHeaders]) {
    const value = req.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  const answer = await new Promise<IncomingMessage>((resolve, reject) => {
    const outgoing = httpRequest(new URL(req.originalUrl, address), { method: 'GET', headers, timeout: relayAnswerTimeoutMs }, resolve);
    outgoing.once('timeout', () => outgoing.destroy(new Error('the replica holding the relay did not answer in time')));
    outgoing.once('error', reject);
    res.once('close', () => outgoing.destroy());
    outgoing.end();
  }).catch(() => {
    throw offline(deviceId, 1);
  });
  res.status(answer.statusCode ?? 502);
  for (const name of [
    'content-type',
    'content-length',
    'content-range',
    'accept-ranges',
    'etag',
    'last-modified',
    'cache-control',
    'retry-after',
  ]) {
    const value = answer.headers[name];
    if (typeof value === 'string') res.setHeader(name, value);
  }
  try {
    await pipeline(answer, res, { end: false });
    if (answer.complete) res.end();
    else res.destroy();
  } catch {
    res.destroy();
  }
}

/** Sends a GET to a device's peer API through its relay, wherever it is held. */
async function toDevice(
  deps: RemoteRouteDeps,
  deviceId: string,
  target: { path: string; authorization: string },
  req: Request,
  res: Response,
): Promise<void> {
  const local = deps.relay.local(deviceId);
  if (local !== undefined) return relayHere(local, target, req, res, deps.logger);
  // A forwarded request is served here or not at all: one hop, never a loop.
  if (req.headers[relayHopHeader] !== undefined) throw offline(deviceId);
  const record = await deps.relay.locate(deviceId);
  if (record === undefined || deps.relay.isSelf(record)) throw offline(deviceId);
  return relayViaPeer(record.address, deviceId, req, res);
}

function segmentsOf(req: Request): string[] {
  const raw = (req.params as Record<string, unknown>).path;
  return Array.isArray(raw) ? raw.map(String) : typeof raw === 'string' ? raw.split('/') : [];
}

/** The objects a caller may browse on a device: the caller's memberships, limited to objects the device's user is a member of. */
async function browsableObjects(deps: RemoteRouteDeps, caller: Caller, deviceUserId: string): Promise<Record<string, GrantRole>> {
  const mine = await deps.metadata.listMemberships(caller.userId);
  const theirs =
    deviceUserId === caller.userId ? undefined : new Set((await deps.metadata.listMemberships(deviceUserId)).map((m) => m.objectId));
  return Object.fromEntries(mine.filter((m) => theirs === undefined || theirs.has(m.objectId)).map((m) => [m.objectId, m.role]));
}

/** Routes for remote access through a device's relay. */
export function remoteRoutes(hooks: RouteHooks, deps: RemoteRouteDeps): Router {
  const router = Router();
  const onDevice = { ids: ['id'], slot: 'device' } as const;

  router.get(
    '/v1/devices/:id/relay',
    hooks.route({ ...onDevice, principal: 'device-itself' }, () => {
      throw invalidRequest('upgrade', 'upgrade: the relay is a WebSocket (Upgrade: websocket)');
    }),
  );

  const files = hooks.route({ ...onDevice, principal: 'member' }, async ({ req, res, id, principal }) => {
    const [objectId, ...rest] = segmentsOf(req).filter((s, i, all) => s !== '' || i < all.length - 1);
    const notFound = new ApiError('not_found', `device ${id} not found`);
    let objects: Record<string, GrantRole>;
    let path = '/p2p/v1/files/';
    if (objectId === undefined || objectId === '') {
      const device = (await deps.metadata.getDevice(id))?.value;
      if (device === undefined) throw notFound;
      objects = await browsableObjects(deps, principal, device.userId);
      if (device.userId !== principal.userId && Object.keys(objects).length === 0) throw notFound;
    } else {
      if (!/^[A-Za-z0-9_-]{1,64}$/.test(objectId)) throw invalidRequest('objectId', 'objectId: is not a valid id');
      // Access to the object first: a stranger learns nothing about the device.
      const object = await deps.access.load(principal.userId, objectId, 'reader');
      const device = (await deps.metadata.getDevice(id))?.value;
      if (device === undefined || object.value.members[device.userId] === undefined) throw notFound;
      objects = { [objectId]: object.value.members[principal.userId]! };
      const filePath = rest.length === 0 || rest.join('/') === '' ? '' : normalizeEntryPath(rest.join('/'));
      path += `${encodeURIComponent(objectId)}/${filePath.split('/').map(encodeURIComponent).join('/')}`;
    }
    const grant = signGrant(deps.grants.signing, { aud: id, sub: `user:${principal.userId}`, scope: { kind: 'remote', objects } });
    await toDevice(deps, id, { path, authorization: `Grant ${grant}` }, req, res);
  });
  router.get('/v1/devices/:id/remote/files', files);
  router.get('/v1/devices/:id/remote/files/*path', files);

  router.get(
    '/v1/devices/:id/remote/blocks/:sha256',
    hooks.route(
      {
        ...onDevice,
        checkUrl: (req) => {
          if (!/^[0-9a-f]{64}$/.test(String(req.params.sha256))) throw invalidRequest('sha256', 'sha256: must be a lower-case hex sha256');
        },
        principal: 'member',
      },
      async ({ req, res, id, principal }) => {
        if (principal.kind !== 'device') throw new ApiError('forbidden', 'only a device fetches blocks from a peer');
        const sha256 = String(req.params.sha256);
        const token = req.headers[grantHeaderName];
        // The caller is authenticated (its bearer token); a missing or bad grant is a lacking permission: 403.
        if (typeof token !== 'string') throw new ApiError('forbidden', `a block from a peer needs its grant in ${grantHeaderName}`);
        try {
          const payload = verifyGrant(token, { keys: deps.grants.verifying, audience: id, request: { kind: 'blocks', sha256 } });
          if (payload.sub !== principal.deviceId) throw new GrantError('forbidden', 'the grant is for another requesting device');
        } catch (err) {
          if (err instanceof GrantError) throw new ApiError('forbidden', `${grantHeaderName}: ${err.message}`);
          throw err;
        }
        await toDevice(deps, id, { path: `/p2p/v1/blocks/${sha256}`, authorization: `Grant ${token}` }, req, res);
      },
    ),
  );

  return router;
}
