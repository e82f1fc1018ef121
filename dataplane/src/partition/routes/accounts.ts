// Accounts: the administrator creates users and sets their storage quotas; a user registers
// devices; anyone asks who they are and how much storage they use.
import { Router } from 'express';
import type express from 'express';
import type { RouteHooks } from '../hooks.ts';
import { notFound } from '../errors.ts';
import { createDeviceBody, createUserBody, quotaBody, validate } from '../schemas.ts';
import { createUser, currentUser, registerDevice, type AccountDeps } from '../sync/accounts.ts';

/** Routes for users, devices and `GET /v1/me`. */
export function accountRoutes(hooks: RouteHooks, accounts: AccountDeps, json: express.RequestHandler): Router {
  const router = Router();

  router.post(
    '/v1/users',
    json,
    hooks.route({ principal: 'admin', parse: (req) => validate(createUserBody, req.body) }, async ({ res, input }) => {
      const user = await createUser(accounts, input.name);
      res.status(201).location(`/v1/users/${user.id}`).json(user);
    }),
  );

  router.post(
    '/v1/devices',
    json,
    hooks.route({ principal: 'member', slot: 'caller', parse: (req) => validate(createDeviceBody, req.body) }, async ({ res, principal, input }) => {
      res.status(201).json(await registerDevice(accounts, principal.userId, input.name));
    }),
  );

  router.get(
    '/v1/me',
    hooks.route({ principal: 'member', slot: 'caller' }, async ({ res, principal }) => {
      const user = await currentUser(accounts, principal.userId);
      const storage = { usedBytes: await accounts.metadata.storageUsed(user.id), quotaBytes: user.quotaBytes ?? null };
      res.json({ id: user.id, name: user.name, createdAt: user.createdAt, deviceId: principal.kind === 'device' ? principal.deviceId : null, storage });
    }),
  );

  // Not routed by slot: the quota is read by whichever partition takes the user's uploads.
  router.put(
    '/v1/users/:id/quota',
    json,
    hooks.route({ ids: ['id'], principal: 'admin', parse: (req) => validate(quotaBody, req.body) }, async ({ req, res, input }) => {
      const userId = String(req.params.id);
      const user = await accounts.metadata.setUserQuota(userId, input.quotaBytes);
      if (user === undefined) throw notFound(`user ${userId}`);
      res.json({ userId, quotaBytes: user.quotaBytes ?? null, usedBytes: await accounts.metadata.storageUsed(userId) });
    }),
  );

  return router;
}
