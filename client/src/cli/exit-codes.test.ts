// The exit codes of `meshwork`: every kind of failure and the code and message it ends with,
// and the table docs/agent.md prints.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ApiError, MeshworkError } from '@meshwork/contract';
import { AgentStopped } from '../agent/index.ts';
import { NetworkError, RequestAbortedError, RequestTimeoutError, UnexpectedAnswerError } from '../errors.ts';
import { CliError, CliExit, UsageError, outcomeOf, revokedMessage } from './exit-codes.ts';

describe('outcomeOf', () => {
  it.each([
    ['a usage error', new UsageError('bad flag'), 64, 'usage', /^bad flag$/],
    ['a CliError', new CliError(CliExit.dataError, 'no file o:a'), 65, 'bad_input', /^no file o:a$/],
    [
      'a revoked device (401)',
      new ApiError('unauthenticated', 'revoked'),
      77,
      'unauthenticated',
      /^this device was revoked; run meshwork login again$/,
    ],
    ['a 401 outside the catalogue', new UnexpectedAnswerError('http_401', 401, 'GET answered 401', {}), 77, 'unauthenticated', /revoked/],
    ['forbidden', new ApiError('forbidden', 'readers cannot write'), 77, 'forbidden', /^not allowed: readers cannot write$/],
    ['not_found', new ApiError('not_found', 'no such entry'), 65, 'not_found', /^no such entry$/],
    ['invalid_path', new ApiError('invalid_path', 'path: .. segment'), 65, 'invalid_path', /\.\. segment/],
    ['precondition_failed', new ApiError('precondition_failed', 'changed'), 65, 'precondition_failed', /changed/],
    ['entry_too_large', new ApiError('entry_too_large', 'too big'), 65, 'entry_too_large', /too big/],
    ['rate_limited', new ApiError('rate_limited', 'slow down'), 75, 'rate_limited', /^the server is busy, try again later: slow down$/],
    ['draining', new ApiError('draining', 'shutting down'), 75, 'draining', /busy/],
    ['overloaded', new ApiError('overloaded', 'shedding'), 75, 'overloaded', /busy/],
    ['store_unavailable', new ApiError('store_unavailable', 'etcd'), 69, 'store_unavailable', /^the server is unavailable: etcd$/],
    ['bad_gateway', new ApiError('bad_gateway', 'broke'), 69, 'bad_gateway', /unavailable/],
    ['an unknown 5xx', new UnexpectedAnswerError('http_500', 500, 'proxy error', {}), 69, 'http_500', /unavailable/],
    ['an unknown 4xx', new UnexpectedAnswerError('teapot', 418, 'teapot', {}), 65, 'teapot', /teapot/],
    ['insufficient_storage', new ApiError('insufficient_storage', 'quota'), 1, 'insufficient_storage', /^over the storage quota: quota$/],
    [
      'a network error',
      new NetworkError('GET http://h/v1/me failed: ECONNREFUSED', { cause: undefined }),
      69,
      'network_error',
      /unavailable.*ECONNREFUSED/,
    ],
    ['a timeout', new RequestTimeoutError('no answer within 60000 ms'), 69, 'timeout', /unavailable/],
    ['an abort', new RequestAbortedError('aborted', { cause: undefined }), 130, 'aborted', /^interrupted$/],
    [
      'the agent stopped: revoked',
      new AgentStopped('unauthorized', 'the server refused the token'),
      77,
      'unauthorized',
      /^this device was revoked/,
    ],
    [
      'the agent stopped: object gone',
      new AgentStopped('object_gone', 'object o1 was deleted or you were removed'),
      77,
      'object_gone',
      /o1 was deleted/,
    ],
    ['another MeshworkError', new MeshworkError('odd', 'odd thing'), 1, 'odd', /^odd thing$/],
    ['a plain Error', new Error('the sync engine is not built yet'), 1, 'failure', /not built yet/],
    ['a string', 'boom', 1, 'failure', /^boom$/],
  ])('%s', (_what, error, exitCode, code, message) => {
    const outcome = outcomeOf(error);
    expect(outcome.exitCode).toBe(exitCode);
    expect(outcome.code).toBe(code);
    expect(outcome.message).toMatch(message);
    expect(outcome.message).not.toContain('\n');
  });

  it('says exactly what the brief promises for a revoked device', () => {
    expect(revokedMessage).toBe('this device was revoked; run meshwork login again');
  });
});

describe('docs/agent.md', () => {
  it('prints every exit code in its table', () => {
    const here = dirname(fileURLToPath(import.meta.url));
    const doc = readFileSync(join(here, '../../../docs/agent.md'), 'utf8');
    for (const code of Object.values(CliExit)) expect(doc).toMatch(new RegExp(`^\\| \`${code}\` \\|`, 'm'));
  });
});
