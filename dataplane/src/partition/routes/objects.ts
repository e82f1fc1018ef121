// Mesh objects (shared folders): create, list, read, rename, delete, and their members.
import { Router } from 'express';
import type express from 'express';
import { mintIdInSlot, slotOf } from '../../slots.ts';
import type { ObjectRecord } from '../../stores/metadata-store.ts';
import { ApiError, notFound } from '../api-error.ts';
import { forgetObject, loadObjectFor, memberPrincipalOf, objectView, requireOwnedSlot, type PartitionContext } from '../context.ts';
import { createObjectBody, putMemberBody, updateObjectBody, validate } from '../schemas.ts';

const idPattern = /^[A-Za-z0-9_-]{1,64}$/;

/** Validates an id taken from the URL. */
export function idParam(value: unknown, field: string): string {
  if (typeof value !== 'string' || !idPattern.test(value)) throw new ApiError(400, 'invalid_request', `${field}: is not a valid id`, { field });
  return value;
}

/** Routes under /v1/objects that concern objects themselves and their members. */
export function objectRoutes(ctx: PartitionContext, json: express.RequestHandler): Router {
  const router = Router();

  router.post('/v1/objects', json, async (req, res) => {
    const principal = await memberPrincipalOf(ctx, req, res);
    await requireOwnedSlot(ctx, slotOf(principal.userId), `user ${principal.userId}`);
    const body = validate(createObjectBody, req.body);
    // Minted in the owner's slot so the object and the owner's index commit in one partition.
    const id = mintIdInSlot('o', slotOf(principal.userId));
    const object: ObjectRecord = {
      id,
      name: body.name,
      owner: principal.userId,
      members: { [principal.userId]: 'owner' },
      cloudStorage: body.cloudStorage,
      createdAt: new Date().toISOString(),
      historyFloor: 0,
    };
    if (!(await ctx.metadata.createObject(object))) throw new ApiError(409, 'conflict', `object ${id} already exists`);
    const created = await ctx.metadata.getObject(id);
    if (created === undefined) throw new ApiError(500, 'internal', 'the object vanished after it was created');
    ctx.logger.info({ objectId: id, userId: principal.userId }, 'Created object');
    res.status(201).location(`/v1/objects/${id}`).json(objectView(created, principal.userId));
  });

  router.get('/v1/objects', async (req, res) => {
    const principal = await memberPrincipalOf(ctx, req, res);
    await requireOwnedSlot(ctx, slotOf(principal.userId), `user ${principal.userId}`);
    const memberships = await ctx.metadata.listMemberships(principal.userId);
    const objects = await Promise.all(memberships.map((m) => ctx.metadata.getObject(m.objectId)));
    // The index is maintained in the same transactions as the objects, but the object is the authority.
    const visible = objects.filter((o) => o !== undefined && o.value.members[principal.userId] !== undefined);
    res.json({ objects: visible.map((o) => objectView(o!, principal.userId)) });
  });

  router.get('/v1/objects/:id', async (req, res) => {
    const id = idParam(req.params.id, 'id');
    await requireOwnedSlot(ctx, slotOf(id), `object ${id}`);
    const principal = await memberPrincipalOf(ctx, req, res);
    const object = await loadObjectFor(ctx, principal.userId, id, 'reader');
    res.setHeader('ETag', `"${object.version}"`).json(objectView(object, principal.userId));
  });

  router.patch('/v1/objects/:id', json, async (req, res) => {
    const id = idParam(req.params.id, 'id');
    await requireOwnedSlot(ctx, slotOf(id), `object ${id}`);
    const principal = await memberPrincipalOf(ctx, req, res);
    const body = validate(updateObjectBody, req.body);
    const object = await loadObjectFor(ctx, principal.userId, id, 'writer');
    forgetObject(ctx, id);
    if (!(await ctx.metadata.updateObject(object, { ...object.value, name: body.name }))) {
      throw new ApiError(409, 'conflict', `object ${id} changed meanwhile; retry`);
    }
    const updated = await loadObjectFor(ctx, principal.userId, id, 'reader');
    ctx.logger.info({ objectId: id, name: body.name }, 'Renamed object');
    res.setHeader('ETag', `"${updated.version}"`).json(objectView(updated, principal.userId));
  });

  router.delete('/v1/objects/:id', async (req, res) => {
    const id = idParam(req.params.id, 'id');
    await requireOwnedSlot(ctx, slotOf(id), `object ${id}`);
    const principal = await memberPrincipalOf(ctx, req, res);
    const object = await loadObjectFor(ctx, principal.userId, id, 'owner');
    forgetObject(ctx, id);
    if (!(await ctx.metadata.deleteObject(object))) throw new ApiError(409, 'conflict', `object ${id} changed meanwhile; retry`);
    ctx.logger.info({ objectId: id }, 'Deleted object');
    res.status(204).end();
  });

  router.put('/v1/objects/:id/members/:userId', json, async (req, res) => {
    const id = idParam(req.params.id, 'id');
    const memberId = idParam(req.params.userId, 'userId');
    await requireOwnedSlot(ctx, slotOf(id), `object ${id}`);
    const principal = await memberPrincipalOf(ctx, req, res);
    const body = validate(putMemberBody, req.body);
    const object = await loadObjectFor(ctx, principal.userId, id, 'owner');
    if (memberId === object.value.owner) throw new ApiError(400, 'invalid_request', 'userId: the owner keeps the owner role', { field: 'userId' });
    if ((await ctx.metadata.getUser(memberId)) === undefined) throw notFound(`user ${memberId}`);
    const next = { ...object.value, members: { ...object.value.members, [memberId]: body.role } };
    forgetObject(ctx, id);
    if (!(await ctx.metadata.updateObject(object, next))) throw new ApiError(409, 'conflict', `object ${id} changed meanwhile; retry`);
    ctx.logger.info({ objectId: id, memberId, role: body.role }, 'Shared object');
    res.json({ userId: memberId, role: body.role });
  });

  router.delete('/v1/objects/:id/members/:userId', async (req, res) => {
    const id = idParam(req.params.id, 'id');
    const memberId = idParam(req.params.userId, 'userId');
    await requireOwnedSlot(ctx, slotOf(id), `object ${id}`);
    const principal = await memberPrincipalOf(ctx, req, res);
    const object = await loadObjectFor(ctx, principal.userId, id, 'owner');
    if (memberId === object.value.owner) throw new ApiError(400, 'invalid_request', 'userId: the owner cannot be removed', { field: 'userId' });
    if (object.value.members[memberId] === undefined) throw notFound(`member ${memberId}`);
    const members = { ...object.value.members };
    delete members[memberId];
    forgetObject(ctx, id);
    if (!(await ctx.metadata.updateObject(object, { ...object.value, members }))) throw new ApiError(409, 'conflict', `object ${id} changed meanwhile; retry`);
    ctx.logger.info({ objectId: id, memberId }, 'Unshared object');
    res.status(204).end();
  });

  return router;
}
