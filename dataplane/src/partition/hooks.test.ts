// The order the route hooks answer in, as a table: which failure a request meets first when it
// has several (a bad id, a slot elsewhere, no token, the administrator's token, a malformed
// body, a stranger, a lacking role). The order is part of the API: a slot elsewhere is 421
// before authentication, and a malformed request is 400 whoever sends it.
import { ApiError } from '@meshwork/contract';
import type { Request, Response } from 'express';
import { describe, expect, it } from 'vitest';
import { mintIdInSlot } from '../slots.ts';
import type { ObjectRecord, Versioned } from '../stores/metadata-store.ts';
import type { Principal } from './auth.ts';
import { RouteHooks, type AccessRule, type PrincipalRule, type RouteOptions } from './hooks.ts';
import { ObjectAccess } from './sync/access.ts';

const owned = { first: 0, last: 2047 };
const ownedObject = mintIdInSlot('o', 100);
const foreignObject = mintIdInSlot('o', 3000);
const writer = mintIdInSlot('u', 101);
const reader = mintIdInSlot('u', 102);
const stranger = mintIdInSlot('u', 103);
const foreignUser = mintIdInSlot('u', 3001);
const device = mintIdInSlot('d', 104);

const tokens: Record<string, Principal> = {
  admin: { kind: 'admin' },
  writer: { kind: 'user', userId: writer },
  reader: { kind: 'device', userId: reader, deviceId: mintIdInSlot('d', 105) },
  stranger: { kind: 'user', userId: stranger },
  foreign: { kind: 'user', userId: foreignUser },
  device: { kind: 'device', userId: writer, deviceId: device },
};

const object: Versioned<ObjectRecord> = {
  value: {
    id: ownedObject,
    name: 'Docs',
    owner: writer,
    members: { [writer]: 'owner', [reader]: 'reader' },
    cloudStorage: true,
    createdAt: '',
    historyFloor: 0,
  },
  version: 7,
};

const hooks = new RouteHooks({
  // Stand-ins for the stores behind these narrow interfaces: only the order of the checks is under test.
  auth: {
    authenticate: (header) => {
      const principal = header === undefined ? undefined : tokens[header.replace(/^Bearer /, '')];
      return principal ? Promise.resolve(principal) : Promise.reject(new ApiError('unauthenticated', 'a bearer token is required'));
    },
  },
  partition: 'p1',
  owners: {
    fenceFor: (slot) => (slot >= owned.first && slot <= owned.last ? { slot, revision: 0 } : undefined),
    keyedOwner: () => undefined,
  },
  slotMap: {
    memberOf: () => Promise.resolve(undefined),
    ownerOf: () =>
      Promise.resolve({
        partition: 'p2',
        replica: 'p2-0',
        slots: '2048-4095',
        url: 'http://p2.mesh:8080',
        instance: 'i1',
        registeredAt: '',
      }),
  },
  access: new ObjectAccess({ getObject: (id) => Promise.resolve(id === ownedObject ? object : undefined) }),
});

type Outcome = number | 'handled';

async function outcome<K extends PrincipalRule, A extends AccessRule | undefined>(
  options: RouteOptions<K, { name: string } | undefined, A>,
  params: Record<string, string>,
  token: string | undefined,
  body: unknown = { name: 'ok' },
): Promise<{ outcome: Outcome; error?: ApiError; object?: unknown }> {
  let seen: unknown;
  const handler = hooks.route(options, (call) => {
    seen = call.object;
  });
  const req = { params, headers: token === undefined ? {} : { authorization: `Bearer ${token}` }, query: {}, body } as unknown as Request;
  const res = { locals: {} } as unknown as Response;
  try {
    await handler(req, res, () => undefined);
    return { outcome: 'handled', object: seen };
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    return { outcome: err.status, error: err };
  }
}

const parseName = (req: Request): { name: string } => {
  const body = req.body as { name?: unknown };
  if (typeof body.name !== 'string') throw new ApiError('invalid_request', 'body.name: is required', { details: { field: 'body.name' } });
  return { name: body.name };
};

describe('an object route (ids, object slot, member, parse, writer access)', () => {
  const options = { ids: ['id'], slot: 'object', principal: 'member', parse: parseName, access: { need: 'writer' } } as const;

  it.each<[string, string, string | undefined, unknown, Outcome, string | undefined]>([
    ['a bad id before the slot and the token', 'no/such id', undefined, {}, 400, 'invalid_request'],
    ['a slot elsewhere before the token', foreignObject, undefined, {}, 421, 'misdirected'],
    ['no token', ownedObject, undefined, {}, 401, 'unauthenticated'],
    ['the administrator', ownedObject, 'admin', {}, 403, 'forbidden'],
    ['a malformed body before access, even from a stranger', ownedObject, 'stranger', {}, 400, 'invalid_request'],
    ['a stranger', ownedObject, 'stranger', { name: 'x' }, 404, 'not_found'],
    ['a reader who needs to write', ownedObject, 'reader', { name: 'x' }, 403, 'forbidden'],
    ['the owner', ownedObject, 'writer', { name: 'x' }, 'handled', undefined],
  ])('%s', async (_what, id, token, body, expected, code) => {
    const result = await outcome(options, { id }, token, body);
    expect(result.outcome).toBe(expected);
    expect(result.error?.code).toBe(code);
  });

  it('tells a misdirected caller where the slot lives', async () => {
    const { error } = await outcome(options, { id: foreignObject }, 'writer');
    expect(error?.details).toEqual({ slot: 3000, owner: 'http://p2.mesh:8080', ownerPartition: 'p2' });
  });

  it('hands the handler the object it checked', async () => {
    expect((await outcome(options, { id: ownedObject }, 'writer')).object).toBe(object);
  });
});

describe("a route by the caller's slot", () => {
  const options = { principal: 'member', slot: 'caller' } as const;

  it.each<[string, string | undefined, Outcome]>([
    ['no token is 401, not 421', undefined, 401],
    ['a user of a slot elsewhere', 'foreign', 421],
    ['a user of an owned slot', 'writer', 'handled'],
  ])('%s', async (_what, token, expected) => {
    expect((await outcome(options, {}, token)).outcome).toBe(expected);
  });
});

describe('a route for the device itself', () => {
  const options = { ids: ['id'], slot: 'device', principal: 'device-itself' } as const;

  it.each<[string, string | undefined, Outcome]>([
    ['the device', 'device', 'handled'],
    ['another device of the same user', 'reader', 403],
    ['its user with an account token', 'writer', 403],
    ['no token', undefined, 401],
  ])('%s', async (_what, token, expected) => {
    expect((await outcome(options, { id: device }, token)).outcome).toBe(expected);
  });
});

describe('an administrator route', () => {
  it.each<[string | undefined, Outcome]>([
    ['admin', 'handled'],
    ['writer', 403],
    [undefined, 401],
  ])('token %s', async (token, expected) => {
    expect((await outcome({ principal: 'admin' }, {}, token)).outcome).toBe(expected);
  });
});

describe('an account-token route (what mints or replaces credentials)', () => {
  const options = { principal: 'account', slot: 'caller', parse: parseName } as const;

  it.each<[string, string | undefined, unknown, Outcome, string | undefined]>([
    ['the account token', 'writer', { name: 'x' }, 'handled', undefined],
    ['a device token of the same user', 'device', { name: 'x' }, 403, 'forbidden'],
    ['a device token, before its body is parsed', 'device', {}, 403, 'forbidden'],
    ['the administrator, who acts for no user', 'admin', { name: 'x' }, 403, 'forbidden'],
    ['no token', undefined, { name: 'x' }, 401, 'unauthenticated'],
    ['an account of a slot elsewhere', 'foreign', { name: 'x' }, 421, 'misdirected'],
  ])('%s', async (_what, token, body, expected, code) => {
    const result = await outcome(options, {}, token, body);
    expect(result.outcome).toBe(expected);
    expect(result.error?.code).toBe(code);
  });
});
