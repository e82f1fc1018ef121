// Presence and peers: a device says where it can be reached and which entry versions it
// holds (soft state under an etcd lease), and a member asks who can serve a file: online
// devices holding its version, and the cloud when the object keeps content there.
import { Router } from 'express';
import type express from 'express';
import { z } from 'zod';
import { InvalidPathError, normalizeEntryPath } from '../../paths.ts';
import { slotOf } from '../../slots.ts';
import { holdsVersion, PresenceConflictError, type ObjectHolds, type Presence } from '../../stores/presence-store.ts';
import { ApiError } from '../api-error.ts';
import { loadObjectFor, memberPrincipalOf, requireOwnedSlot, type PartitionContext } from '../context.ts';
import { validate, ValidationError } from '../schemas.ts';
import { entryPathParam } from './entries.ts';
import { idParam } from './objects.ts';

/** Endpoints a device may announce. */
export const maxEndpoints = 8;
/** Holds one presence may list (each a file version, or a whole object up to a cursor). */
export const maxHolds = 1000;

const objectId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be an object id');
const version = z.string().regex(/^[1-9]\d{0,14}$/, 'must be a version (a positive integer in a string)');
const endpoint = z
  .string()
  .max(512)
  .pipe(z.url({ protocol: /^https?$/, error: 'must be an http or https URL' }));

const presenceBody = z.strictObject({
  endpoints: z.array(endpoint).max(maxEndpoints),
  holds: z
    .array(
      z.union([
        z.strictObject({ objectId, path: z.string().min(1).max(1024), version }),
        // Synced through a cursor: holds every entry of the object whose version is at most it.
        z.strictObject({ objectId, cursor: version }),
      ]),
    )
    .max(maxHolds)
    .default([]),
});

/** An entry path as a URL path: each segment percent-encoded. */
function encodeEntryPath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

/** The holds of a presence body grouped by object, with paths normalised. */
function groupHolds(holds: z.infer<typeof presenceBody>['holds']): Map<string, ObjectHolds> {
  const byObject = new Map<string, ObjectHolds>();
  holds.forEach((hold, i) => {
    let entry = byObject.get(hold.objectId);
    if (entry === undefined) {
      entry = { versions: [] };
      byObject.set(hold.objectId, entry);
    }
    if ('cursor' in hold) {
      if (entry.cursor === undefined || Number(hold.cursor) > Number(entry.cursor)) entry.cursor = hold.cursor;
      return;
    }
    let path: string;
    try {
      path = normalizeEntryPath(hold.path);
    } catch (err) {
      if (err instanceof InvalidPathError) throw new ValidationError(`body.holds.${i}.path`, err.message);
      throw err;
    }
    entry.versions.push({ path, version: hold.version });
  });
  return byObject;
}

/** Routes for presence (`/v1/devices/{id}/presence`) and sources of content. */
export function presenceRoutes(ctx: PartitionContext, json: express.RequestHandler): Router {
  const router = Router();

  /** The device a presence route names, which must be the caller itself. */
  async function ownDevice(req: express.Request, res: express.Response): Promise<{ deviceId: string; userId: string }> {
    const id = idParam(req.params.id, 'id');
    await requireOwnedSlot(ctx, slotOf(id), `device ${id}`);
    const principal = await memberPrincipalOf(ctx, req, res);
    if (principal.kind !== 'device' || principal.deviceId !== id) throw new ApiError(403, 'forbidden', 'only the device itself may set or clear its presence');
    return { deviceId: id, userId: principal.userId };
  }

  router.put('/v1/devices/:id/presence', json, async (req, res) => {
    const device = await ownDevice(req, res);
    const body = validate(presenceBody, req.body);
    const holds = groupHolds(body.holds);
    // The membership index is in the user's slot, which is this partition's; the sources
    // route checks again against each object's record, the authority.
    const memberOf = new Set((await ctx.metadata.listMemberships(device.userId)).map((m) => m.objectId));
    body.holds.forEach((hold, i) => {
      if (!memberOf.has(hold.objectId)) throw new ApiError(404, 'not_found', `object ${hold.objectId} not found`, { field: `body.holds.${i}.objectId` });
    });
    const presence: Presence = { deviceId: device.deviceId, userId: device.userId, endpoints: body.endpoints, holds };
    try {
      await ctx.presence.put(presence);
    } catch (err) {
      if (err instanceof PresenceConflictError) throw new ApiError(409, 'conflict', `${err.message}; retry`);
      throw err;
    }
    res.json({ deviceId: device.deviceId, endpoints: body.endpoints, objects: holds.size, ttlSeconds: ctx.presence.ttlSeconds });
  });

  router.delete('/v1/devices/:id/presence', async (req, res) => {
    const device = await ownDevice(req, res);
    await ctx.presence.remove(device.deviceId);
    res.status(204).end();
  });

  router.get('/v1/objects/:id/content/*path/sources', async (req, res, next) => {
    const id = idParam(req.params.id, 'id');
    await requireOwnedSlot(ctx, slotOf(id), `object ${id}`);
    const principal = await memberPrincipalOf(ctx, req, res);
    const path = entryPathParam(req);
    const object = await loadObjectFor(ctx, principal.userId, id, 'reader');
    const entry = await ctx.metadata.getEntry(id, path);
    if (entry === undefined || entry.value.deleted || entry.value.kind !== 'file') {
      // Not a file: this is a request for the content of a file named "sources" in `path`.
      next();
      return;
    }
    const versionText = req.query.version;
    if (versionText !== undefined && (typeof versionText !== 'string' || !/^[1-9]\d{0,14}$/.test(versionText))) {
      throw new ApiError(400, 'invalid_request', 'version: must be a version of the entry', { field: 'version' });
    }
    const wanted = versionText ?? String(entry.version);
    const self = principal.kind === 'device' ? principal.deviceId : undefined;
    const devices = (await ctx.presence.holdings(id))
      .filter((h) => h.deviceId !== self && object.value.members[h.userId] !== undefined && holdsVersion(h, path, wanted))
      .sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0))
      .map((h) => ({ kind: 'device', deviceId: h.deviceId, endpoints: h.endpoints }));
    // The cloud keeps only the current version.
    const cloud = object.value.cloudStorage && wanted === String(entry.version) ? [{ kind: 'cloud', url: `/v1/objects/${id}/content/${encodeEntryPath(path)}` }] : [];
    res.setHeader('Cache-Control', 'private, no-cache').json({ path, version: wanted, sources: [...devices, ...cloud] });
  });

  return router;
}
