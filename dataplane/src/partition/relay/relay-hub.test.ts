// The relay's pure parts: the per-device byte rate that paces relayed answers and refuses new
// requests when far behind, and the headers of a device's answer that reach the caller.
import { describe, expect, it } from 'vitest';
import { ByteRate, passedHeaders } from './relay-hub.ts';

describe('ByteRate', () => {
  it.each([
    ['within the first second', [[0, 500]], 0, 0],
    ['exactly the rate', [[0, 1000]], 0, 0],
    ['over by half a second', [[0, 1500]], 500, 0.5],
    [
      'refilled by the time passed',
      [
        [0, 1000],
        [500, 500],
      ],
      0,
      0,
    ],
    [
      'in debt across takes',
      [
        [0, 1000],
        [0, 2000],
      ],
      2000,
      2,
    ],
    [
      'refilled no further than one second',
      [
        [0, 0],
        [10_000, 1500],
      ],
      500,
      0.5,
    ],
  ] as const)('%s', (_, takes, lastWaitMs, debtSeconds) => {
    const rate = new ByteRate(1000, 0);
    let wait = 0;
    let at = 0;
    for (const [now, bytes] of takes) {
      wait = rate.take(bytes, now);
      at = now;
    }
    expect(wait).toBe(lastWaitMs);
    expect(rate.debtSeconds(at)).toBeCloseTo(debtSeconds);
  });
});

describe('passedHeaders', () => {
  it("passes the content's headers and drops everything else of the device's", () => {
    expect(
      passedHeaders({
        ':status': '206',
        'content-type': 'application/octet-stream',
        'content-length': '10',
        'content-range': 'bytes 0-9/100',
        etag: '"x"',
        'set-cookie': ['device=secret'],
        'access-control-allow-origin': '*',
        location: 'https://evil.example/',
      }),
    ).toEqual({ 'content-type': 'application/octet-stream', 'content-length': '10', 'content-range': 'bytes 0-9/100', etag: '"x"' });
  });
});
