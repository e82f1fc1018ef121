// Where the gateway sends a request: the pure decision, from the method, the URL and the
// Authorization header alone, so that routing costs no store read. The rules are the
// partition's own (partition/hooks.ts, docs/api.md "Partitioning"): object routes go to the
// slot of the object id, device routes to the slot of the device id, account routes, the
// notification poll and the block routes to the slot of the caller's user (the block routes are
// scoped per caller, ADR 24, and any partition serves them; the caller's partition keeps a
// caller's traffic together). A device token routes by the device id: a user's devices are
// minted in the user's slot. What names no slot (creating a user, a request without a token of
// ours) goes to any partition, which answers it (201, or 401/403 as the hooks decide). A
// browser's session cookie routes like its user's account token: the session id is minted in
// the user's slot (ADR 42).
import { bearerSubject, sessionSubject } from '@meshwork/contract';
import { slotOf } from '../slots.ts';

/** Where a request goes: the owner of one slot, or any partition. */
export type RouteTarget = { kind: 'slot'; slot: number; by: 'object' | 'device' | 'user' | 'caller' } | { kind: 'any' };

/** The gateway's decision for one request. */
export interface RoutePlan {
  target: RouteTarget;
  /** A long poll: sent over the long-poll pool, and its answer may take `waitSeconds` longer. */
  longPoll: boolean;
  waitSeconds: number;
}

const idPattern = /^[A-Za-z0-9_-]{1,64}$/;
// The partition's default wait of a notification poll (docs/api.md) and its largest wait.
const defaultNotificationWait = 30;
const maxWait = 60;

function waitOf(query: URLSearchParams, fallback: number): number {
  const text = query.get('wait');
  if (text === null) return fallback;
  const n = Number(text);
  // A malformed wait is the partition's 400 to answer; it answers at once.
  return Number.isInteger(n) && n >= 0 ? Math.min(n, maxWait) : 0;
}

function slotOfCaller(authorization: string | undefined, cookie: string | undefined): RouteTarget {
  // The partition reads the cookie only without an Authorization header (ADR 42); so does routing.
  const subject = authorization === undefined ? sessionSubject(cookie) : bearerSubject(authorization);
  return subject === undefined ? { kind: 'any' } : { kind: 'slot', slot: slotOf(subject.id), by: 'caller' };
}

function slotOfId(id: string | undefined, by: 'object' | 'device' | 'user'): RouteTarget {
  // A malformed id is answered 400 by whichever partition gets it.
  return id !== undefined && idPattern.test(id) ? { kind: 'slot', slot: slotOf(id), by } : { kind: 'any' };
}

/** The route plan of an API request (`pathname` under `/v1/`, undecoded; `search` with or without its `?`). */
export function planRoute(method: string, pathname: string, search: string, authorization: string | undefined, cookie?: string): RoutePlan {
  const segments = pathname.split('/').slice(2);
  const [area, id, sub] = segments;
  const immediate = (target: RouteTarget): RoutePlan => ({ target, longPoll: false, waitSeconds: 0 });
  switch (area) {
    case 'objects': {
      if (segments.length === 1) return immediate(slotOfCaller(authorization, cookie));
      const target = slotOfId(id, 'object');
      if (method === 'GET' && sub === 'changes' && segments.length === 3) {
        const wait = waitOf(new URLSearchParams(search), 0);
        return { target, longPoll: wait > 0, waitSeconds: wait };
      }
      return immediate(target);
    }
    case 'devices':
      return immediate(segments.length === 1 ? slotOfCaller(authorization, cookie) : slotOfId(id, 'device'));
    case 'users':
      return immediate(segments.length === 1 ? { kind: 'any' } : slotOfId(id, 'user'));
    case 'notifications': {
      const query = new URLSearchParams(search);
      // Without a cursor the poll answers at once, whatever `wait` says.
      const wait = query.has('cursor') ? waitOf(query, defaultNotificationWait) : 0;
      return { target: slotOfCaller(authorization, cookie), longPoll: method === 'GET' && wait > 0, waitSeconds: wait };
    }
    case 'me':
    case 'blocks':
      return immediate(slotOfCaller(authorization, cookie));
    default:
      return immediate({ kind: 'any' });
  }
}
