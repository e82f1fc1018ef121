import { describe, expect, it } from 'vitest';
import { sessionSubject, sessionTokenOf } from './sessions.ts';

const token = `mws.s123.${'a'.repeat(43)}`;

describe('the session cookie', () => {
  it.each<[string | undefined, string | undefined]>([
    [undefined, undefined],
    ['', undefined],
    [`mw_session=${token}`, token],
    [`theme=dark; mw_session=${token}; other=1`, token],
    [`mw_session=mwu.s123.${'a'.repeat(43)}`, undefined],
    [`xmw_session=${token}`, undefined],
    [`mw_session=${token}x`, undefined],
  ])('%j holds %j', (header, expected) => {
    expect(sessionTokenOf(header)).toBe(expected);
  });

  it('names the session id the gateway routes by', () => {
    expect(sessionSubject(`mw_session=${token}`)).toEqual({ kind: 'session', id: 's123' });
    expect(sessionSubject('mw_session=garbage')).toBeUndefined();
  });
});
