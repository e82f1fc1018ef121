// Choosing a member: ready ones in turn, unprobed ones only when none is ready, never an excluded one.
import { describe, expect, it } from 'vitest';
import { MemberStates } from './members.ts';
import type { PartitionView } from './slot-table.ts';

const partition: PartitionView = {
  name: 'p',
  members: ['a', 'b', 'c'].map((r) => ({ partition: 'p', replica: r, url: `http://${r}` })),
};

describe('MemberStates', () => {
  it('takes ready members in turn', () => {
    const states = new MemberStates();
    states.set('http://a', 'ready');
    states.set('http://b', 'ready');
    states.set('http://c', 'unready');
    const picks = Array.from({ length: 4 }, () => states.pick(partition)?.replica);
    expect(picks).toEqual(['a', 'b', 'a', 'b']);
  });

  it('falls back to members not yet probed, never to unready ones', () => {
    const states = new MemberStates();
    states.set('http://a', 'unready');
    expect(states.pick(partition, new Set(['http://b']))?.replica).toBe('c');
    states.set('http://b', 'unready');
    states.set('http://c', 'unready');
    expect(states.pick(partition)).toBeUndefined();
    expect(states.serves(partition)).toBe(false);
  });

  it('forgets members that left the slot map', () => {
    const states = new MemberStates();
    states.set('http://a', 'unready');
    states.retain(new Set(['http://b']));
    expect(states.stateOf('http://a')).toBe('unknown');
  });
});

describe('MemberStates.probed', () => {
  it.each([
    [['ready'], 'ready'],
    [['not_ready'], 'unready'],
    [['refused'], 'unready'],
    [['ready', 'no_answer', 'no_answer'], 'ready'],
    [['ready', 'no_answer', 'no_answer', 'no_answer'], 'unready'],
    [['no_answer', 'no_answer', 'ready', 'no_answer', 'no_answer'], 'ready'],
  ] as const)('after %j the member is %s', (results, state) => {
    const states = new MemberStates();
    for (const r of results) states.probed('http://a', r);
    expect(states.stateOf('http://a')).toBe(state);
  });
});
