// Error mapping: every error answer becomes a typed error that keeps its status, code, details
// and headers, whether or not its code is in the catalogue and whether or not it is JSON.
import { describe, expect, it } from 'vitest';
import { ApiError } from '@meshwork/contract';
import { UnexpectedAnswerError, errorFromAnswer, isRetryableAnswer } from './errors.ts';

describe('errorFromAnswer', () => {
  it('raises the catalogue ApiError with details and headers from the envelope', () => {
    const body = JSON.stringify({
      error: { code: 'precondition_failed', message: 'someone else committed', currentVersion: '42', current: { path: 'a' } },
    });
    const err = errorFromAnswer(412, { etag: '"42"' }, body, 'PUT entry');
    expect(err).toBeInstanceOf(ApiError);
    expect(err.code).toBe('precondition_failed');
    expect(err.status).toBe(412);
    expect(err.message).toBe('someone else committed');
    expect(err.details).toEqual({ currentVersion: '42', current: { path: 'a' } });
    expect(err.headers).toEqual({ etag: '"42"' });
  });

  it.each([
    ['an unknown code', 418, JSON.stringify({ error: { code: 'teapot', message: 'short and stout' } }), 'teapot'],
    ['a known code with another status', 500, JSON.stringify({ error: { code: 'not_found', message: 'x' } }), 'not_found'],
    ['a body that is not JSON', 502, '<html>Bad Gateway</html>', 'http_502'],
    ['an empty body', 503, '', 'http_503'],
    ['JSON without the envelope', 400, JSON.stringify({ message: 'no' }), 'http_400'],
  ])('raises UnexpectedAnswerError with the status for %s', (_what, status, body, code) => {
    const err = errorFromAnswer(status, { 'retry-after': '2' }, body, 'GET /x');
    expect(err).toBeInstanceOf(UnexpectedAnswerError);
    expect(err).not.toBeInstanceOf(ApiError);
    expect(err.status).toBe(status);
    expect(err.code).toBe(code);
    expect(err.headers['retry-after']).toBe('2');
  });

  it('keeps the body of an answer that is not the envelope', () => {
    const err = errorFromAnswer(502, {}, 'upstream went away', 'GET /x') as UnexpectedAnswerError;
    expect(err.body).toBe('upstream went away');
    expect(err.message).toContain('502');
  });
});

describe('isRetryableAnswer', () => {
  const envelope = (code: string): string => JSON.stringify({ error: { code, message: code } });
  it.each([
    [429, 'rate_limited', true],
    [429, 'too_many_long_polls', true],
    [503, 'overloaded', true],
    [503, 'draining', true],
    [503, 'not_ready', true],
    [421, 'misdirected', false],
    [500, 'internal', false],
    [412, 'precondition_failed', false],
    [404, 'not_found', false],
  ])('%i %s → %s', (status, code, retryable) => {
    expect(isRetryableAnswer(errorFromAnswer(status, {}, envelope(code), 'x'))).toBe(retryable);
  });

  it('treats an unknown 503 or 429 as retryable and an unknown 500 as not', () => {
    expect(isRetryableAnswer(errorFromAnswer(503, {}, 'Service Unavailable', 'x'))).toBe(true);
    expect(isRetryableAnswer(errorFromAnswer(429, {}, '', 'x'))).toBe(true);
    expect(isRetryableAnswer(errorFromAnswer(500, {}, '', 'x'))).toBe(false);
  });
});
