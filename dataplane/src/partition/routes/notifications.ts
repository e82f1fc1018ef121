// Change notification: one long poll per device over every object its user is a member of.
import type { RequestHandler } from 'express';
import { parseCursor } from '../../cursor.ts';
import { slotOf } from '../../slots.ts';
import { ApiError } from '../api-error.ts';
import { memberPrincipalOf, requireOwnedSlot, type PartitionContext } from '../context.ts';
import { defaultNotificationWaitSeconds } from '../long-poll/long-polls.ts';
import { parseWaitSeconds } from '../long-poll/params.ts';

/** The handler of `GET /v1/notifications`. */
export function notificationHandler(ctx: PartitionContext): RequestHandler {
  return async (req, res, next) => {
    const principal = await memberPrincipalOf(ctx, req, res);
    await requireOwnedSlot(ctx, slotOf(principal.userId), `user ${principal.userId}`);
    const cursorText = req.query.cursor;
    if (cursorText !== undefined && typeof cursorText !== 'string') throw new ApiError(400, 'invalid_request', 'cursor: must be given once', { field: 'cursor' });
    // No cursor: everything is news, as for a device that has synced nothing yet.
    const cursor = cursorText === undefined ? 0 : parseCursor(cursorText);
    const wait = parseWaitSeconds(req.query.wait, defaultNotificationWaitSeconds);
    const clientId = principal.kind === 'device' ? principal.deviceId : principal.userId;
    ctx.longPolls.notifications({ userId: principal.userId, clientId }, cursor, wait, res, next);
  };
}
