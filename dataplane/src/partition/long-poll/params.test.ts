import { describe, expect, it } from 'vitest';
import { ApiError } from '@meshwork/contract';
import { parseWaitSeconds } from './params.ts';

describe('parseWaitSeconds', () => {
  it.each([
    [undefined, 30],
    ['0', 0],
    ['1', 1],
    ['30', 30],
    ['060', 60],
    ['60', 60],
  ])('reads %j as %i', (value, expected) => {
    expect(parseWaitSeconds(value, 30)).toBe(expected);
  });

  it.each([['61'], ['600'], ['-1'], ['1.5'], ['1e1'], [''], [' 5'], ['abc'], ['0x10'], [['5', '6']]])(
    'refuses %j naming the field',
    (value) => {
      let caught: unknown;
      try {
        parseWaitSeconds(value, 30);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(ApiError);
      expect((caught as ApiError).status).toBe(400);
      expect((caught as ApiError).details).toEqual({ field: 'wait' });
      expect((caught as ApiError).message).toMatch(/^wait: /);
    },
  );
});
