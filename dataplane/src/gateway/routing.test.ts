// The gateway's routing rules as a table: which slot each route goes to, and which are long polls.
import { describe, expect, it } from 'vitest';
import { mintSessionToken, mintToken } from '../partition/auth.ts';
import { mintIdInSlot, slotOf } from '../slots.ts';
import { planRoute } from './routing.ts';

const user = mintIdInSlot('u', 100);
const device = mintIdInSlot('d', 100);
const object = mintIdInSlot('o', 3000);
const otherDevice = mintIdInSlot('d', 2000);
const userToken = `Bearer ${mintToken('user', user).token}`;
const deviceToken = `Bearer ${mintToken('device', device).token}`;
const sessionCookie = `theme=dark; mw_session=${mintSessionToken(mintIdInSlot('s', 100)).token}`;

describe('planRoute', () => {
  it.each([
    ['GET', `/v1/objects/${object}`, '', deviceToken, 3000],
    ['PUT', `/v1/objects/${object}/entries/a/b.txt`, '', deviceToken, 3000],
    ['GET', `/v1/objects/${object}/content/a.bin`, '', undefined, 3000],
    ['GET', '/v1/objects', '', userToken, 100],
    ['POST', '/v1/objects', '', deviceToken, 100],
    ['GET', '/v1/me', '', deviceToken, 100],
    ['POST', '/v1/me/token', '', userToken, 100],
    ['GET', '/v1/devices', '', userToken, 100],
    ['DELETE', `/v1/devices/${otherDevice}`, '', userToken, 2000],
    ['PUT', `/v1/devices/${otherDevice}/presence`, '', deviceToken, 2000],
    ['GET', '/v1/notifications', 'cursor=5&wait=30', deviceToken, 100],
    ['POST', '/v1/blocks/missing', '', deviceToken, 100],
    ['POST', '/v1/blocks/locations', '', deviceToken, 100],
    ['POST', '/v1/blocks/uploads', '', deviceToken, 100],
    ['POST', '/v1/blocks/uploaded', '', deviceToken, 100],
    ['PUT', `/v1/blocks/${'a'.repeat(64)}`, '', userToken, 100],
    ['PUT', `/v1/users/${user}/quota`, '', 'Bearer admin-token', 100],
  ])('%s %s goes to the slot of the object, device or caller', (method, path, search, auth, slot) => {
    expect(planRoute(method, path, search, auth).target).toMatchObject({ kind: 'slot', slot });
  });

  it.each([
    ['GET', '/v1/me/session', undefined, sessionCookie, 100],
    ['POST', '/v1/objects', undefined, sessionCookie, 100],
    ['GET', '/v1/devices', userToken, sessionCookie, 100],
    // The cookie counts only without an Authorization header, as on the partition.
    ['GET', '/v1/me', deviceToken, `mw_session=${mintSessionToken(mintIdInSlot('s', 900)).token}`, 100],
    ['POST', `/v1/users/${mintIdInSlot('u', 700)}/sessions`, undefined, undefined, 700],
  ])('%s %s with a session cookie goes to the slot of the session or token', (method, path, auth, cookie, slot) => {
    expect(planRoute(method, path, '', auth, cookie).target).toMatchObject({ kind: 'slot', slot });
  });

  it.each([
    ['POST', '/v1/users', '', 'Bearer admin-token'],
    ['GET', '/v1/me', '', undefined],
    ['GET', '/v1/me', '', 'Bearer not-one-of-ours'],
    ['GET', '/v1/objects/bad%20id', '', deviceToken],
    ['GET', '/v1/unknown', '', deviceToken],
  ])('%s %s (%s) goes to any partition', (method, path, search, auth) => {
    expect(planRoute(method, path, search, auth).target).toEqual({ kind: 'any' });
  });

  it.each([
    ['/v1/notifications', 'cursor=5', true, 30],
    ['/v1/notifications', 'cursor=5&wait=10', true, 10],
    ['/v1/notifications', 'cursor=5&wait=0', false, 0],
    ['/v1/notifications', 'wait=30', false, 0],
    ['/v1/notifications', 'cursor=5&wait=99', true, 60],
    ['/v1/notifications', 'cursor=5&wait=x', false, 0],
    [`/v1/objects/${object}/changes`, 'cursor=5&wait=20', true, 20],
    [`/v1/objects/${object}/changes`, 'cursor=5', false, 0],
    [`/v1/objects/${object}/entries`, 'wait=20', false, 0],
  ])('GET %s?%s is a long poll: %s (wait %d s)', (path, search, longPoll, wait) => {
    expect(planRoute('GET', path, search, deviceToken)).toMatchObject({ longPoll, waitSeconds: wait });
  });

  it("routes a device token by the device, which lives in its user's slot", () => {
    expect(slotOf(device)).toBe(slotOf(user));
  });
});
