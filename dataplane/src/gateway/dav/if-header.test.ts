// The If header: parsing tagged and untagged lists, Not, ETags, and evaluation.
import { describe, expect, it } from 'vitest';
import { evaluateIf, IfHeaderError, parseIfHeader, submittedTokens } from './if-header.ts';

const token = 'opaquelocktoken:1234';
const state = (lockTokens: string[], etag: string | undefined) => () => ({ lockTokens, etag });

describe('parseIfHeader', () => {
  it('parses untagged lists with Not and ETags', () => {
    expect(parseIfHeader(`(<${token}> ["42"]) (Not <DAV:no-lock>)`)).toEqual([
      {
        resource: undefined,
        conditions: [
          { not: false, kind: 'token', value: token },
          { not: false, kind: 'etag', value: '"42"' },
        ],
      },
      { resource: undefined, conditions: [{ not: true, kind: 'token', value: 'DAV:no-lock' }] },
    ]);
  });

  it('parses tagged lists', () => {
    const lists = parseIfHeader(`<http://h/dav/a> (<${token}>) <http://h/dav/b> (["1"])`);
    expect(lists.map((l) => l.resource)).toEqual(['http://h/dav/a', 'http://h/dav/b']);
  });

  it.each(['', '(', '(<unclosed', '()', 'garbage', '(["1"]', '(<a>) <http://h/x> (<b>)'])('refuses %j', (header) => {
    expect(() => parseIfHeader(header)).toThrow(IfHeaderError);
  });
});

describe('evaluateIf', () => {
  it('holds when any list holds in full', () => {
    expect(evaluateIf(parseIfHeader(`(<${token}>)`), state([token], '"1"'))).toBe(true);
    expect(evaluateIf(parseIfHeader(`(<${token}> ["2"])`), state([token], '"1"'))).toBe(false);
    expect(evaluateIf(parseIfHeader(`(<${token}> ["2"]) (Not <DAV:no-lock>)`), state([token], '"1"'))).toBe(true);
    expect(evaluateIf(parseIfHeader('(<DAV:no-lock>)'), state([], '"1"'))).toBe(false);
    expect(evaluateIf(parseIfHeader('(["1"])'), state([], undefined))).toBe(false);
    expect(evaluateIf(parseIfHeader('([W/"1"])'), state([], '"1"'))).toBe(true);
  });

  it('submits the tokens named without Not', () => {
    expect([...submittedTokens(parseIfHeader(`(<${token}>) (Not <other>)`))]).toEqual([token]);
  });
});
