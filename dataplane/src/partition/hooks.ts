// The partition's route shape, after fastify's (lib/route.js): a route declares what must hold
// before its handler runs, and the hooks run in one fixed order: ids in the URL → the slot of
// the object or device (421 before anything is read) → the caller (401, 403) → the caller's own
// slot → the handler's parsing (the validation step, 400/428) → access to the object named by
// :id (404 for a stranger, 403 for a lacking role). The handler then only calls a service and
// answers. The hooks run inside one request handler: a waiting long poll keeps its handler
// chain alive, and each level of it costs memory per poll.
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { timingSafeEqual } from 'node:crypto';
import { ApiError, csrfHeaderName } from '@meshwork/contract';
import { slotOf } from '../slots.ts';
import { withSlotFence, type SlotFence } from '../stores/slot-fence.ts';
import type { ObjectRecord, Role, Versioned } from '../stores/metadata-store.ts';
import type { Authenticator, Principal } from './auth.ts';
import { invalidRequest } from './errors.ts';
import type { SlotMap } from './slot-map.ts';
import type { SlotOwners } from './slot-owners.ts';
import type { ObjectAccess } from './sync/access.ts';

/** A principal acting for a user: an account or a device token. */
export type Caller = Exclude<Principal, { kind: 'admin' }>;

/**
 * Who may call a route: anyone with a valid token, a user or device, only an account token
 * (what mints or replaces credentials: a stolen device token must not), the administrator, or
 * the device named by :id.
 */
export type PrincipalRule = 'any' | 'member' | 'account' | 'admin' | 'device-itself' | 'session';

type PrincipalOf<K extends PrincipalRule> = K extends 'any'
  ? Principal
  : K extends 'admin'
    ? { kind: 'admin' }
    : K extends 'device-itself'
      ? Extract<Principal, { kind: 'device' }>
      : K extends 'account'
        ? Extract<Principal, { kind: 'user' }>
        : K extends 'session'
          ? Extract<Principal, { kind: 'session' }>
          : Caller;

/** The role a route needs on the object named by :id; `cached` lets a write use the write cache. */
export interface AccessRule {
  need: Role;
  cached?: boolean;
}

/** What a route declares; see the file's opening comment for the order the hooks run in. */
export interface RouteOptions<K extends PrincipalRule, I, A extends AccessRule | undefined> {
  /** Route parameters that must be ids, checked in this order before anything else. */
  ids?: readonly string[];
  /** Other checks of the URL that come before authentication (a malformed name is 400 even without a token). */
  checkUrl?: (req: Request) => void;
  /** The slot the request must be in: of the object, device or user named by :id (before authentication) or of the caller. */
  slot?: 'object' | 'device' | 'user' | 'caller';
  principal: K;
  /** Parses the request (parameters, query, headers, body) before access is checked. */
  parse?: (req: Request, principal: PrincipalOf<K>) => I;
  access?: A;
}

/** What a handler receives once every hook has passed. */
export interface RouteCall<K extends PrincipalRule, I, A extends AccessRule | undefined> {
  req: Request;
  res: Response;
  next: NextFunction;
  principal: PrincipalOf<K>;
  /** The :id parameter (empty for routes without one). */
  id: string;
  input: I;
  object: A extends AccessRule ? Versioned<ObjectRecord> : undefined;
}

/** What the hooks need: the authenticator, this partition's slots and the slot map, the access rule. */
export interface HookDeps {
  auth: Pick<Authenticator, 'authenticate'>;
  partition: string;
  /** Which slots this partition serves now, and each one's fence (slot-owners.ts). */
  owners: Pick<SlotOwners, 'fenceFor' | 'keyedOwner'>;
  slotMap: Pick<SlotMap, 'ownerOf' | 'memberOf'>;
  access: Pick<ObjectAccess, 'load' | 'loadForWrite'>;
}

const idPattern = /^[A-Za-z0-9_-]{1,64}$/;

/** Validates an id taken from the URL. */
export function idParam(value: unknown, field: string): string {
  if (typeof value !== 'string' || !idPattern.test(value)) throw invalidRequest(field, `${field}: is not a valid id`);
  return value;
}

/** The caller of a user's route; the administrator is refused. */
export function asCaller(principal: Principal): Caller {
  if (principal.kind === 'admin') throw new ApiError('forbidden', 'the administrator token cannot act as a user');
  return principal;
}

function checkPrincipal(rule: PrincipalRule, principal: Principal, id: string): Principal {
  if (rule === 'any') return principal;
  if (rule === 'admin') {
    if (principal.kind !== 'admin') throw new ApiError('forbidden', 'only the administrator may create users');
    return principal;
  }
  const caller = asCaller(principal);
  if (rule === 'account' && caller.kind !== 'user')
    throw new ApiError('forbidden', 'only an account token may do this, not a device token');
  if (rule === 'session' && caller.kind !== 'session') throw new ApiError('forbidden', 'only a signed-in session may do this, not a token');
  if (rule === 'device-itself' && (caller.kind !== 'device' || caller.deviceId !== id)) {
    throw new ApiError('forbidden', 'only the device itself may set or clear its presence');
  }
  return caller;
}

/**
 * Refuses a request that a signed-in browser might have been made to send by another site: a
 * state-changing request needs the session's CSRF token in `X-CSRF-Token`, and any request
 * marked cross-site by the browser (`Sec-Fetch-Site`) or from another origin (`Origin`) is
 * refused. Reads may come from a top-level navigation (a download link), so only their origin
 * markers are checked.
 */
export function checkSessionRequest(req: Pick<Request, 'method' | 'headers'>, csrfToken: string): void {
  checkSameOrigin(req);
  if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return;
  const presented = req.headers[csrfHeaderName];
  if (typeof presented !== 'string' || !sameText(presented, csrfToken)) {
    throw new ApiError('forbidden', `a signed-in session's ${req.method} needs its CSRF token in X-CSRF-Token (GET /v1/me/session)`);
  }
}

/** Refuses a request the browser marks as coming from another site, or whose Origin is not the host it was sent to. */
export function checkSameOrigin(req: Pick<Request, 'method' | 'headers'>): void {
  const site = req.headers['sec-fetch-site'];
  const navigation = req.headers['sec-fetch-mode'] === 'navigate' && (req.method === 'GET' || req.method === 'HEAD');
  if (site !== undefined && site !== 'same-origin' && site !== 'none' && !navigation) {
    throw new ApiError('forbidden', `a cross-site request (Sec-Fetch-Site: ${String(site)}) may not use the session cookie`);
  }
  const origin = req.headers.origin;
  if (origin === 'null') throw new ApiError('forbidden', 'a request from an opaque origin may not use the session cookie');
  if (origin !== undefined) {
    const forwarded = req.headers['x-forwarded-host'];
    const host = (Array.isArray(forwarded) ? forwarded[0] : forwarded) ?? req.headers.host;
    let originHost: string | undefined;
    try {
      originHost = new URL(origin).host;
    } catch {
      originHost = undefined;
    }
    if (originHost === undefined || originHost !== host) {
      throw new ApiError('forbidden', `a request from origin ${origin} may not use the session cookie of ${String(host)}`);
    }
  }
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The route hooks of one partition process. */
export class RouteHooks {
  readonly #deps: HookDeps;

  constructor(deps: HookDeps) {
    this.#deps = deps;
  }

  /** Authenticates the request once (the throttle's gate may have done it already); 401 without a valid token. */
  async principalOf(req: Request, res: Response): Promise<Principal> {
    const known = res.locals.principal as Principal | undefined;
    if (known) return known;
    // The throttle's gate authenticated already and failed: the same answer, without a second lookup.
    if (res.locals.authError !== undefined) throw res.locals.authError;
    const principal = await this.#deps.auth.authenticate(req.headers.authorization, req.headers.cookie);
    res.locals.principal = principal;
    return principal;
  }

  /** Answers 421 with the owner's address unless this partition owns `slot`; the request's slot fence when it does. */
  async requireOwnedSlot(slot: number, what: string): Promise<SlotFence> {
    const fence = this.#deps.owners.fenceFor(slot);
    if (fence !== undefined) return fence;
    // An owner key, once a slot has one, names the owner; the claims in the slot map otherwise.
    const keyed = this.#deps.owners.keyedOwner(slot);
    const owner = keyed === undefined ? await this.#deps.slotMap.ownerOf(slot) : await this.#deps.slotMap.memberOf(keyed);
    throw new ApiError('misdirected', `${what} is in slot ${slot}, which partition ${this.#deps.partition} does not own`, {
      details: { slot, owner: owner?.url ?? null, ownerPartition: owner?.partition ?? null },
    });
  }

  /** A request handler that runs the hooks `options` declares, then `handler`. */
  route<K extends PrincipalRule, I = undefined, A extends AccessRule | undefined = undefined>(
    options: RouteOptions<K, I, A>,
    handler: (call: RouteCall<K, I, A>) => void | Promise<void>,
  ): RequestHandler {
    return async (req, res, next) => {
      const params = req.params as Record<string, unknown>;
      let id = '';
      for (const name of options.ids ?? []) {
        const value = idParam(params[name], name);
        if (name === 'id') id = value;
      }
      options.checkUrl?.(req);
      let fence: SlotFence | undefined;
      if (options.slot === 'object' || options.slot === 'device' || options.slot === 'user') {
        fence = await this.requireOwnedSlot(slotOf(id), `${options.slot} ${id}`);
      }
      const authenticated = await this.principalOf(req, res);
      // A cookie comes with every request the browser makes, a cross-site one too: a session's writes need proof (ADR 42).
      if (authenticated.kind === 'session') checkSessionRequest(req, authenticated.csrfToken);
      const principal = checkPrincipal(options.principal, authenticated, id) as PrincipalOf<K>;
      if (options.slot === 'caller') {
        const userId = (principal as Caller).userId;
        fence = await this.requireOwnedSlot(slotOf(userId), `user ${userId}`);
      }
      const input = options.parse === undefined ? (undefined as I) : options.parse(req, principal);
      let object: Versioned<ObjectRecord> | undefined;
      if (options.access !== undefined) {
        const { userId } = principal as Caller;
        const { need, cached } = options.access;
        object = cached ? await this.#deps.access.loadForWrite(userId, id, need) : await this.#deps.access.load(userId, id, need);
      }
      // Every metadata write of the handler compares the slot's owner key (ADR 34).
      await withSlotFence(fence, () => handler({ req, res, next, principal, id, input, object: object as RouteCall<K, I, A>['object'] }));
    };
  }
}

/** The modifier recorded on a caller's writes: its device, or the user for an account token. */
export function modifierOf(caller: Caller): string {
  return caller.kind === 'device' ? caller.deviceId : caller.userId;
}
