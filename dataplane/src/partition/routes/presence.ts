// Presence and peers: a device says where it can be reached and which entry versions it
// holds (soft state under an etcd lease), and a member asks who can serve a file: online
// devices holding its version, and the cloud when the object keeps content there.
import { Router } from 'express';
import type express from 'express';
import { grantBlockLists, signGrant } from '@meshwork/contract';
import type { GrantKeys } from '../../stores/grant-keys.ts';
import type { MetadataStore } from '../../stores/metadata-store.ts';
import type { PresenceStore } from '../../stores/presence-store.ts';
import { invalidRequest } from '../errors.ts';
import type { RouteHooks } from '../hooks.ts';
import { entryPathParam } from '../request-params.ts';
import { validate } from '../schemas.ts';
import { announcePresence, presenceBody, sourcesOf, type PresenceDeps } from '../sync/presence.ts';

/** What the presence routes need besides the hooks. */
export interface PresenceRouteDeps extends PresenceDeps {
  metadata: Pick<MetadataStore, 'listMemberships' | 'getEntry'>;
  presence: Pick<PresenceStore, 'put' | 'holdings' | 'remove' | 'ttlSeconds'>;
  grants: Pick<GrantKeys, 'signing' | 'published'>;
}

/** Routes for presence (`/v1/devices/{id}/presence`) and sources of content. */
export function presenceRoutes(hooks: RouteHooks, deps: PresenceRouteDeps, json: express.RequestHandler): Router {
  const router = Router();

  // The device a presence route names must be the caller itself.
  const deviceItself = { ids: ['id'], slot: 'device', principal: 'device-itself' } as const;
  const readFile = { ids: ['id'], slot: 'object', principal: 'member', parse: entryPathParam, access: { need: 'reader' } } as const;
  router.put(
    '/v1/devices/:id/presence',
    json,
    hooks.route({ ...deviceItself, parse: (req) => validate(presenceBody, req.body) }, async ({ res, principal, input }) => {
      const device = { deviceId: principal.deviceId, userId: principal.userId };
      const { objects } = await announcePresence(deps, device, input);
      res.json({ deviceId: device.deviceId, endpoints: input.endpoints, objects, ttlSeconds: deps.presence.ttlSeconds });
    }),
  );

  router.delete(
    '/v1/devices/:id/presence',
    hooks.route(deviceItself, async ({ res, id }) => {
      await deps.presence.remove(id);
      res.status(204).end();
    }),
  );

  router.get(
    '/v1/objects/:id/content/*path/sources',
    hooks.route(readFile, async ({ req, res, next, id, principal, object, input: path }) => {
      const entry = await deps.metadata.getEntry(id, path);
      if (entry === undefined || entry.value.deleted || entry.value.kind !== 'file') {
        // Not a file: this is a request for the content of a file named "sources" in `path`.
        next();
        return;
      }
      const versionText = req.query.version;
      if (versionText !== undefined && (typeof versionText !== 'string' || !/^[1-9]\d{0,14}$/.test(versionText))) {
        throw invalidRequest('version', 'version: must be a version of the entry');
      }
      const current = String(entry.version);
      const wanted = versionText ?? current;
      const self = principal.kind === 'device' ? principal.deviceId : undefined;
      // A device caller gets blocks grants per holder for the version's blocks (one per 128 distinct
      // blocks, ADR 66); only the current version's block list is kept, so an older version's
      // holders come without any.
      const lists = grantBlockLists(entry.value.blocks.map((b) => b.sha256));
      const grantFor =
        self === undefined || wanted !== current
          ? undefined
          : (holder: string): string[] =>
              lists.map((blocks) =>
                signGrant(deps.grants.signing, { aud: holder, sub: self, scope: { kind: 'blocks', objectId: id, blocks } }),
              );
      const sources = sourcesOf(object, await deps.presence.holdings(id), { path, current, wanted }, self, grantFor);
      res.setHeader('Cache-Control', 'private, no-cache').json({ path, version: wanted, sources });
    }),
  );

  router.get(
    '/v1/grants/keys',
    hooks.route({ principal: 'any' }, ({ res }) => {
      res.setHeader('Cache-Control', 'private, max-age=60').json({ keys: deps.grants.published });
    }),
  );

  return router;
}
