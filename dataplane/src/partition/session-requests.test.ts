// Which requests a signed-in session may make (ADR 42), as a table: reads unless the browser
// marks them cross-site (a top-level navigation aside), writes only with the session's CSRF
// token, and nothing from another origin.
import type { Request } from 'express';
import { describe, expect, it } from 'vitest';
import { ApiError } from '@meshwork/contract';
import { checkSessionRequest } from './hooks.ts';

const csrf = 'the-csrf-token';

function verdict(method: string, headers: Record<string, string>): string {
  try {
    checkSessionRequest({ method, headers: { host: 'mesh.example', ...headers } } as Pick<Request, 'method' | 'headers'>, csrf);
    return 'allowed';
  } catch (err) {
    if (err instanceof ApiError) return String(err.status);
    throw err;
  }
}

describe('checkSessionRequest', () => {
  it.each<[string, Record<string, string>, string]>([
    ['GET', {}, 'allowed'],
    ['GET', { 'sec-fetch-site': 'same-origin' }, 'allowed'],
    ['GET', { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'cors' }, '403'],
    ['GET', { 'sec-fetch-site': 'same-site', 'sec-fetch-mode': 'no-cors' }, '403'],
    ['GET', { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate' }, 'allowed'],
    ['POST', { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'x-csrf-token': csrf }, '403'],
    ['POST', {}, '403'],
    ['POST', { 'x-csrf-token': 'the-csrf-tokem' }, '403'],
    ['POST', { 'x-csrf-token': csrf }, 'allowed'],
    ['DELETE', { 'x-csrf-token': csrf, 'sec-fetch-site': 'same-origin', origin: 'https://mesh.example' }, 'allowed'],
    ['PUT', { 'x-csrf-token': csrf, origin: 'https://evil.example' }, '403'],
    ['PUT', { 'x-csrf-token': csrf, origin: 'null' }, '403'],
    ['PUT', { 'x-csrf-token': csrf, origin: 'not a url' }, '403'],
    ['PUT', { 'x-csrf-token': csrf, origin: 'https://mesh.example', 'x-forwarded-host': 'gw.example' }, '403'],
    ['PUT', { 'x-csrf-token': csrf, origin: 'https://gw.example', 'x-forwarded-host': 'gw.example' }, 'allowed'],
  ])('%s with %o: %s', (method, headers, expected) => {
    expect(verdict(method, headers)).toBe(expected);
  });
});
