import { describe, expect, it } from 'vitest';
import { Subscriptions } from './subscriptions.ts';

interface Sub {
  name: string;
}

const a: Sub = { name: 'a' };
const b: Sub = { name: 'b' };
const c: Sub = { name: 'c' };

type Step = ['sub' | 'unsub', string, Sub, boolean];

describe('Subscriptions', () => {
  it.each<[string, Step[], Record<string, string[]>]>([
    ['one subscriber', [['sub', 'o1', a, true]], { o1: ['a'] }],
    [
      'the same subscriber twice counts once',
      [
        ['sub', 'o1', a, true],
        ['sub', 'o1', a, false],
      ],
      { o1: ['a'] },
    ],
    [
      'two subscribers, then one leaves',
      [
        ['sub', 'o1', a, true],
        ['sub', 'o1', b, false],
        ['unsub', 'o1', a, false],
      ],
      { o1: ['b'] },
    ],
    [
      'the last one leaves',
      [
        ['sub', 'o1', a, true],
        ['unsub', 'o1', a, true],
      ],
      {},
    ],
    [
      'three, then two leave',
      [
        ['sub', 'o1', a, true],
        ['sub', 'o1', b, false],
        ['sub', 'o1', c, false],
        ['unsub', 'o1', c, false],
        ['unsub', 'o1', a, false],
      ],
      { o1: ['b'] },
    ],
    [
      'three, all leave',
      [
        ['sub', 'o1', a, true],
        ['sub', 'o1', b, false],
        ['sub', 'o1', c, false],
        ['unsub', 'o1', c, false],
        ['unsub', 'o1', a, false],
        ['unsub', 'o1', b, true],
      ],
      {},
    ],
    [
      'a stranger leaving changes nothing',
      [
        ['sub', 'o1', a, true],
        ['unsub', 'o1', b, false],
        ['unsub', 'o2', a, false],
      ],
      { o1: ['a'] },
    ],
    [
      'keys are independent',
      [
        ['sub', 'o1', a, true],
        ['sub', 'o2', a, true],
        ['sub', 'o2', b, false],
        ['unsub', 'o1', a, true],
      ],
      { o2: ['a', 'b'] },
    ],
  ])('%s', (_name, steps, expected) => {
    const subs = new Subscriptions<Sub>();
    for (const [op, key, sub, result] of steps) {
      expect(op === 'sub' ? subs.subscribe(key, sub) : subs.unsubscribe(key, sub), `${op} ${key} ${sub.name}`).toBe(result);
    }
    const actual = Object.fromEntries(
      subs.keys().map((k) => [
        k,
        subs
          .subscribersOf(k)
          .map((s) => s.name)
          .sort(),
      ]),
    );
    expect(actual).toEqual(expected);
    expect(subs.size).toBe(Object.keys(expected).length);
  });

  it('lets a callback unsubscribe while the subscribers are walked', () => {
    const subs = new Subscriptions<Sub>();
    subs.subscribe('o1', a);
    subs.subscribe('o1', b);
    const seen: string[] = [];
    for (const sub of subs.subscribersOf('o1')) {
      seen.push(sub.name);
      subs.unsubscribe('o1', sub);
    }
    expect(seen.sort()).toEqual(['a', 'b']);
    expect(subs.has('o1')).toBe(false);
  });
});
