// Accounts: the administrator creates users; a user registers devices with its account token (a
// stolen device token must not mint more credentials); anyone asks who they are.
import { Router } from 'express';
import type express from 'express';
import type { RouteHooks } from '../hooks.ts';
import { createDeviceBody, createUserBody, validate } from '../schemas.ts';
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
    hooks.route({ principal: 'account', slot: 'caller', parse: (req) => validate(createDeviceBody, req.body) }, async ({ res, principal, input }) => {
      res.status(201).json(await registerDevice(accounts, principal.userId, input.name));
    }),
  );

  router.get(
    '/v1/me',
    hooks.route({ principal: 'member', slot: 'caller' }, async ({ res, principal }) => {
      const user = await currentUser(accounts, principal.userId);
      res.json({ id: user.id, name: user.name, createdAt: user.createdAt, deviceId: principal.kind === 'device' ? principal.deviceId : null });
    }),
  );

  return router;
}
