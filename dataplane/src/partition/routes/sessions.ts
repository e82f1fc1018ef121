// Sign-in for people (ADR 42): setting a password, signing in (which sets the session cookie),
// what a page needs to know about its session (its CSRF token), signing out and signing out
// everywhere. Sign-in is the one route that takes no credential: it checks the request's origin
// itself, so that another site cannot sign a browser in to an account of its choosing.
import { Router } from 'express';
import type express from 'express';
import { ApiError, sessionCookieName } from '@meshwork/contract';
import { checkSameOrigin, idParam, type RouteHooks } from '../hooks.ts';
import { setPasswordBody, signInBody, validate } from '../schemas.ts';
import { withSlotFence } from '../../stores/slot-fence.ts';
import { slotOf } from '../../slots.ts';
import { sessionLifetimeSeconds, setPassword, signIn, signOut, signOutEverywhere, type SignInDeps } from '../sign-in/sign-in.ts';

/** The client's address as the gateway saw it (its last X-Forwarded-For hop), else the socket's peer. */
export function clientAddress(req: express.Request): string {
  const forwarded = req.headers['x-forwarded-for'];
  const chain = (Array.isArray(forwarded) ? forwarded.join(',') : (forwarded ?? '')).split(',').map((s) => s.trim());
  const last = chain.at(-1);
  return last !== undefined && last !== '' ? last : (req.socket.remoteAddress ?? 'unknown');
}

/** Whether the client reached the mesh over TLS (the gateway says so in X-Forwarded-Proto). */
function overTls(req: express.Request): boolean {
  return req.headers['x-forwarded-proto'] === 'https' || req.secure;
}

/** The Set-Cookie value of a session cookie (`maxAge` 0: clear it). */
export function sessionCookie(token: string, maxAgeSeconds: number, secure: boolean): string {
  return [
    `${sessionCookieName}=${token}`,
    'Path=/',
    `Max-Age=${maxAgeSeconds}`,
    'HttpOnly',
    'SameSite=Lax',
    ...(secure ? ['Secure'] : []),
  ].join('; ');
}

/** Routes for passwords and sign-in sessions. */
export function sessionRoutes(hooks: RouteHooks, deps: SignInDeps, json: express.RequestHandler): Router {
  const router = Router();

  router.put(
    '/v1/users/:id/password',
    json,
    hooks.route(
      { ids: ['id'], slot: 'user', principal: 'any', parse: (req) => validate(setPasswordBody, req.body) },
      async ({ res, principal, id, input }) => {
        await setPassword(deps, principal, id, input);
        res.status(204).end();
      },
    ),
  );

  router.post('/v1/users/:id/sessions', json, async (req, res) => {
    const userId = idParam(req.params.id, 'id');
    const fence = await hooks.requireOwnedSlot(slotOf(userId), `user ${userId}`);
    checkSameOrigin(req);
    const input = validate(signInBody, req.body);
    const session = await withSlotFence(fence, () => signIn(deps, userId, input.password, clientAddress(req)));
    res
      .status(201)
      .setHeader('Cache-Control', 'no-store')
      .setHeader('Set-Cookie', sessionCookie(session.token, sessionLifetimeSeconds, overTls(req)))
      .json({ userId: session.userId, sessionId: session.sessionId, expiresAt: session.expiresAt, csrfToken: session.csrfToken });
  });

  router.get(
    '/v1/me/session',
    hooks.route({ principal: 'session', slot: 'caller' }, ({ res, principal }) => {
      res
        .setHeader('Cache-Control', 'no-store')
        .json({ userId: principal.userId, sessionId: principal.sessionId, csrfToken: principal.csrfToken });
    }),
  );

  router.delete(
    '/v1/me/session',
    hooks.route({ principal: 'session', slot: 'caller' }, async ({ req, res, principal }) => {
      await signOut(deps, principal);
      res
        .status(204)
        .setHeader('Set-Cookie', sessionCookie('', 0, overTls(req)))
        .end();
    }),
  );

  router.delete(
    '/v1/me/sessions',
    hooks.route({ principal: 'member', slot: 'caller' }, async ({ req, res, principal }) => {
      if (principal.kind === 'device') throw new ApiError('forbidden', 'a device token cannot end sessions; use the account token');
      const ended = await signOutEverywhere(deps, principal.userId);
      if (principal.kind === 'session') res.setHeader('Set-Cookie', sessionCookie('', 0, overTls(req)));
      res.json({ endedSessions: ended });
    }),
  );

  return router;
}
