// Accounts: the administrator creates users and sets their storage quotas; a user registers,
// lists and deletes its devices and rotates its account token; anyone asks who they are and how
// much storage they use. Only an account token mints or replaces credentials: a stolen device
// token must not be able to make more of them.
import { Router } from 'express';
import type express from 'express';
import { ApiError } from '@meshwork/contract';
import { presentedSecretHash } from '../auth.ts';
import type { RouteHooks } from '../hooks.ts';
import { notFound } from '../errors.ts';
import { createDeviceBody, createUserBody, quotaBody, validate } from '../schemas.ts';
import {
  createUser,
  currentUser,
  deleteDevice,
  listDevices,
  registerDevice,
  rotateAccountToken,
  type AccountDeps,
} from '../sync/accounts.ts';
import type { QuotaCache } from '../sync/quota-cache.ts';

/** Routes for users, devices, account tokens and `GET /v1/me`. */
export function accountRoutes(
  hooks: RouteHooks,
  accounts: AccountDeps & { quotas?: Pick<QuotaCache, 'set'> },
  json: express.RequestHandler,
): Router {
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
    hooks.route(
      { principal: 'account', slot: 'caller', parse: (req) => validate(createDeviceBody, req.body) },
      async ({ res, principal, input }) => {
        res.status(201).json(await registerDevice(accounts, principal.userId, input.name));
      },
    ),
  );

  router.get(
    '/v1/devices',
    hooks.route({ principal: 'member', slot: 'caller' }, async ({ res, principal }) => {
      res.setHeader('Cache-Control', 'private, no-cache').json({ devices: await listDevices(accounts, principal) });
    }),
  );

  router.delete(
    '/v1/devices/:id',
    hooks.route({ ids: ['id'], slot: 'device', principal: 'member' }, async ({ res, principal, id }) => {
      await deleteDevice(accounts, principal, id);
      res.status(204).end();
    }),
  );

  router.post(
    '/v1/me/token',
    hooks.route(
      {
        principal: 'account',
        slot: 'caller',
        parse: (req) => {
          const presented = presentedSecretHash(req.headers.authorization);
          // The hooks authenticated this header as an account token, so it parses.
          if (presented === undefined) throw new ApiError('unauthenticated', 'an account token is required');
          return presented;
        },
      },
      async ({ res, principal, input }) => {
        res.setHeader('Cache-Control', 'no-store').json(await rotateAccountToken(accounts, principal.userId, input));
      },
    ),
  );

  router.get(
    '/v1/me',
    hooks.route({ principal: 'member', slot: 'caller' }, async ({ res, principal }) => {
      const user = await currentUser(accounts, principal.userId);
      const storage = { usedBytes: await accounts.metadata.storageUsed(user.id), quotaBytes: user.quotaBytes ?? null };
      res.json({
        id: user.id,
        name: user.name,
        createdAt: user.createdAt,
        deviceId: principal.kind === 'device' ? principal.deviceId : null,
        storage,
      });
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
      // Applies here at once; other processes read it within quotaCacheMillis.
      accounts.quotas?.set(userId, user.quotaBytes ?? null);
      res.json({ userId, quotaBytes: user.quotaBytes ?? null, usedBytes: await accounts.metadata.storageUsed(userId) });
    }),
  );

  return router;
}
