// Change notification: one long poll per device over every object its user is a member of.
import type { RequestHandler } from 'express';
import { parseCursor } from '../../cursor.ts';
import { modifierOf, type RouteHooks } from '../hooks.ts';
import { defaultNotificationWaitSeconds, type LongPolls } from '../long-poll/long-polls.ts';
import { parseWaitSeconds } from '../long-poll/params.ts';
import { queryString } from '../request-params.ts';

/** The handler of `GET /v1/notifications`. */
export function notificationHandler(hooks: RouteHooks, longPolls: Pick<LongPolls, 'notifications'>): RequestHandler {
  return hooks.route(
    {
      principal: 'member',
      slot: 'caller',
      parse: (req) => {
        const cursorText = queryString(req, 'cursor');
        // No cursor: everything is news, as for a device that has synced nothing yet.
        return { cursor: cursorText === undefined ? 0 : parseCursor(cursorText), wait: parseWaitSeconds(req.query.wait, defaultNotificationWaitSeconds) };
      },
    },
    ({ res, next, principal, input }) => {
      longPolls.notifications({ userId: principal.userId, clientId: modifierOf(principal) }, input.cursor, input.wait, res, next);
    },
  );
}
