import { describe, expect, it } from 'vitest';
import { isNotificationPoll } from './app.ts';

describe('isNotificationPoll', () => {
  // The requests express's router would give to `GET /v1/notifications`: case-insensitive,
  // one optional trailing slash, query and fragment ignored; HEAD keeps going through express.
  it.each([
    ['GET', '/v1/notifications', true],
    ['GET', '/v1/notifications?cursor=1&wait=30', true],
    ['GET', '/V1/Notifications/', true],
    ['GET', '/v1/notifications#x', true],
    ['GET', '/v1/notifications//', false],
    ['GET', '/v1/notificationsx', false],
    ['GET', '/v1/notific%61tions', false],
    ['GET', '/v1/objects/o1/changes?wait=30', false],
    ['HEAD', '/v1/notifications', false],
    ['POST', '/v1/notifications', false],
  ])('%s %s: %s', (method, url, expected) => {
    expect(isNotificationPoll(method, url)).toBe(expected);
  });
});
