// Mesh objects (shared folders): create, list, read, rename, delete, and their members.
import { Router } from 'express';
import type express from 'express';
import type { RouteHooks } from '../hooks.ts';
import { createObjectBody, putMemberBody, updateObjectBody, validate } from '../schemas.ts';
import {
  createObject,
  deleteObject,
  listObjects,
  objectView,
  renameObject,
  shareObject,
  unshareObject,
  type ObjectDeps,
} from '../sync/objects.ts';

/** Routes under /v1/objects that concern objects themselves and their members. */
export function objectRoutes(hooks: RouteHooks, objects: ObjectDeps, json: express.RequestHandler): Router {
  const router = Router();

  router.post(
    '/v1/objects',
    json,
    hooks.route(
      { principal: 'member', slot: 'caller', parse: (req) => validate(createObjectBody, req.body) },
      async ({ res, principal, input }) => {
        const created = await createObject(objects, principal.userId, input);
        res.status(201).location(`/v1/objects/${created.value.id}`).json(objectView(created, principal.userId));
      },
    ),
  );

  router.get(
    '/v1/objects',
    hooks.route({ principal: 'member', slot: 'caller' }, async ({ res, principal }) => {
      const visible = await listObjects(objects, principal.userId);
      res.json({ objects: visible.map((o) => objectView(o, principal.userId)) });
    }),
  );

  router.get(
    '/v1/objects/:id',
    hooks.route({ ids: ['id'], slot: 'object', principal: 'member', access: { need: 'reader' } }, ({ res, principal, object }) => {
      res.setHeader('ETag', `"${object.version}"`).json(objectView(object, principal.userId));
    }),
  );

  router.patch(
    '/v1/objects/:id',
    json,
    hooks.route(
      {
        ids: ['id'],
        slot: 'object',
        principal: 'member',
        parse: (req) => validate(updateObjectBody, req.body),
        access: { need: 'writer' },
      },
      async ({ res, principal, object, input }) => {
        const updated = await renameObject(objects, principal.userId, object, input.name);
        res.setHeader('ETag', `"${updated.version}"`).json(objectView(updated, principal.userId));
      },
    ),
  );

  router.delete(
    '/v1/objects/:id',
    hooks.route({ ids: ['id'], slot: 'object', principal: 'member', access: { need: 'owner' } }, async ({ res, object }) => {
      await deleteObject(objects, object);
      res.status(204).end();
    }),
  );

  router.put(
    '/v1/objects/:id/members/:userId',
    json,
    hooks.route(
      {
        ids: ['id', 'userId'],
        slot: 'object',
        principal: 'member',
        parse: (req) => validate(putMemberBody, req.body),
        access: { need: 'owner' },
      },
      async ({ req, res, object, input }) => {
        const memberId = req.params.userId as string;
        await shareObject(objects, object, memberId, input.role);
        res.json({ userId: memberId, role: input.role });
      },
    ),
  );

  router.delete(
    '/v1/objects/:id/members/:userId',
    hooks.route({ ids: ['id', 'userId'], slot: 'object', principal: 'member', access: { need: 'owner' } }, async ({ req, res, object }) => {
      await unshareObject(objects, object, req.params.userId as string);
      res.status(204).end();
    }),
  );

  return router;
}
