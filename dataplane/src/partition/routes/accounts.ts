// Accounts: the administrator creates users; a user registers devices; anyone asks who they are.
import { Router } from 'express';
import type express from 'express';
import { mintIdInSlot, slotOf } from '../../slots.ts';
import { ApiError } from '../api-error.ts';
import { mintToken } from '../auth.ts';
import { memberPrincipalOf, principalOf, requireOwnedSlot, type PartitionContext } from '../context.ts';
import { createDeviceBody, createUserBody, validate } from '../schemas.ts';

/** A random slot among those this partition owns, for minting user ids. */
function randomOwnedSlot(ctx: PartitionContext): number {
  const total = ctx.config.slots.reduce((n, r) => n + r.last - r.first + 1, 0);
  let pick = Math.floor(Math.random() * total);
  for (const r of ctx.config.slots) {
    const size = r.last - r.first + 1;
    if (pick < size) return r.first + pick;
    pick -= size;
  }
  return ctx.config.slots[0]!.first;
}

/** Routes for users, devices and `GET /v1/me`. */
export function accountRoutes(ctx: PartitionContext, json: express.RequestHandler): Router {
  const router = Router();

  router.post('/v1/users', json, async (req, res) => {
    const principal = await principalOf(ctx, req, res);
    if (principal.kind !== 'admin') throw new ApiError(403, 'forbidden', 'only the administrator may create users');
    const body = validate(createUserBody, req.body);
    const id = mintIdInSlot('u', randomOwnedSlot(ctx));
    const { token, tokenHash } = mintToken('user', id);
    const createdAt = new Date().toISOString();
    if (!(await ctx.metadata.createUser({ id, name: body.name, tokenHash, createdAt }))) throw new ApiError(409, 'conflict', `user ${id} already exists`);
    ctx.logger.info({ userId: id }, 'Created user');
    res.status(201).location(`/v1/users/${id}`).json({ id, name: body.name, createdAt, token });
  });

  router.post('/v1/devices', json, async (req, res) => {
    const principal = await memberPrincipalOf(ctx, req, res);
    await requireOwnedSlot(ctx, slotOf(principal.userId), `user ${principal.userId}`);
    const body = validate(createDeviceBody, req.body);
    const id = mintIdInSlot('d', slotOf(principal.userId));
    const { token, tokenHash } = mintToken('device', id);
    const createdAt = new Date().toISOString();
    if (!(await ctx.metadata.createDevice({ id, userId: principal.userId, name: body.name, tokenHash, createdAt }))) {
      throw new ApiError(409, 'conflict', `device ${id} already exists`);
    }
    ctx.logger.info({ userId: principal.userId, deviceId: id }, 'Registered device');
    res.status(201).json({ id, userId: principal.userId, name: body.name, createdAt, token });
  });

  router.get('/v1/me', async (req, res) => {
    const principal = await memberPrincipalOf(ctx, req, res);
    await requireOwnedSlot(ctx, slotOf(principal.userId), `user ${principal.userId}`);
    const user = await ctx.metadata.getUser(principal.userId);
    if (user === undefined) throw new ApiError(401, 'unauthenticated', 'the account no longer exists');
    res.json({ id: user.id, name: user.name, createdAt: user.createdAt, deviceId: principal.kind === 'device' ? principal.deviceId : null });
  });

  return router;
}
