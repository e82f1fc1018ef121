import { describe, expect, it } from 'vitest';
import { deepHealthOk } from '@meshwork/contract';
import { deepHealthAnswer, livenessAnswer, readinessAnswer } from './answers.ts';

const loop = { delayMs: 3, maxDelayMs: 700, limitMs: 500, windowMs: 10_000 };
const passing = [{ name: 'etcd', ok: true }];
const failing = [
  { name: 'etcd', ok: true },
  { name: 'slot-map', ok: false, error: 'watch lost' },
  { name: 'draining', ok: false },
];

describe('health answers', () => {
  it.each([
    { name: 'live', answer: livenessAnswer({ ...loop, ok: true }), status: 200, error: undefined },
    {
      name: 'stalled',
      answer: livenessAnswer({ ...loop, ok: false }),
      status: 503,
      error: { code: 'event_loop_stalled', message: 'the event loop stalled for 700 ms within the last 10 s (limit 500 ms)' },
    },
    { name: 'ready', answer: readinessAnswer({ ok: true, checks: passing }), status: 200, error: undefined },
    {
      name: 'not ready',
      answer: readinessAnswer({ ok: false, checks: failing }),
      status: 503,
      error: { code: 'not_ready', message: 'slot-map: watch lost; draining: failing' },
    },
    {
      name: 'deep healthy',
      answer: deepHealthAnswer({ ok: true, checkedAt: 'now', checks: passing.map((c) => ({ ...c, ms: 1 })), faults: [] }),
      status: 200,
      error: undefined,
    },
    {
      name: 'deep unhealthy',
      answer: deepHealthAnswer({ ok: false, checkedAt: 'now', checks: failing.map((c) => ({ ...c, ms: 1 })), faults: [] }),
      status: 503,
      error: { code: 'unhealthy', message: 'slot-map: watch lost; draining: failing' },
    },
  ])('$name answers $status', ({ answer, status, error }) => {
    expect(answer.status).toBe(status);
    expect(answer.body.error).toEqual(error);
  });

  it('keeps the bodies of the operations API', () => {
    expect(livenessAnswer({ ...loop, ok: true }).body).toEqual({
      status: 'ok',
      eventLoopDelayMs: 3,
      maxEventLoopDelayMs: 700,
      limitMs: 500,
    });
    expect(readinessAnswer({ ok: false, checks: failing }).body).toMatchObject({ status: 'not_ready', checks: failing });
    expect(deepHealthAnswer({ ok: true, checkedAt: 'now', checks: [], faults: [] }).body).toEqual({
      status: deepHealthOk,
      checkedAt: 'now',
      checks: [],
    });
  });
});
