// Change notification: one long poll per device over every object its user is a member of;
// without a cursor, the user's live objects and a cursor to poll from, at once.
import type { RequestHandler } from 'express';
import { parseCursor } from '../../cursor.ts';
import { modifierOf, type RouteHooks } from '../hooks.ts';
import { defaultNotificationWaitSeconds, type LongPolls } from '../long-poll/long-polls.ts';
import { parseWaitSeconds } from '../long-poll/params.ts';
import { queryOf, queryValue } from '../request-params.ts';

/** The handler of `GET /v1/notifications`. */
export function notificationHandler(hooks: RouteHooks, longPolls: Pick<LongPolls, 'notifications'>): RequestHandler {
  return hooks.route(
    {
      principal: 'member',
      slot: 'caller',
      parse: (req) => {
        // Parsed from the URL here, not through req.query, which would leave a parsed URL on the waiting request.
        const query = queryOf(req.url);
        const cursorText = queryValue(query, 'cursor');
        // No cursor: the live objects of the user at once, whatever `wait` says (validated all the same).
        const wait = parseWaitSeconds(query.wait, defaultNotificationWaitSeconds);
        return { cursor: cursorText === undefined ? undefined : parseCursor(cursorText), wait };
      },
    },
    ({ res, next, principal, input }) => {
      longPolls.notifications({ userId: principal.userId, clientId: modifierOf(principal) }, input.cursor, input.wait, res, next);
    },
  );
}
