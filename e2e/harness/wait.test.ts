import { describe, expect, it } from 'vitest';
import { ComponentStartError } from './errors.ts';
import { DeadlineExceededError, waitFor } from './wait.ts';

describe('waitFor', () => {
  it('returns the first value that is neither undefined nor false', async () => {
    let calls = 0;
    const value = await waitFor(() => (++calls < 3 ? false : `ready after ${calls}`), { description: 'x', timeoutMs: 5000, intervalMs: 1 });
    expect(value).toBe('ready after 3');
  });

  it('names what it waited for and the last error at the deadline', async () => {
    const failing = waitFor(
      () => {
        throw new Error('connection refused');
      },
      { description: 'etcd to answer', timeoutMs: 20, intervalMs: 5 },
    );
    await expect(failing).rejects.toThrow(DeadlineExceededError);
    await expect(failing).rejects.toThrow(/waiting for etcd to answer \(last error: connection refused\)/);
  });

  it('stops at once when abortIf gives a reason', async () => {
    let calls = 0;
    const aborted = waitFor(() => ++calls > 1000, {
      description: 'a server',
      timeoutMs: 60_000,
      abortIf: () => 'the process exited with code 1',
    });
    await expect(aborted).rejects.toThrow('Gave up waiting for a server: the process exited with code 1');
    expect(calls).toBe(0);
  });
});

describe('ComponentStartError', () => {
  it.each([
    ['listen tcp 127.0.0.1:2379: bind: address already in use', true],
    ['Error: listen EADDRINUSE: address already in use 127.0.0.1:9000', true],
    ['flag provided but not defined: -bogus', false],
  ])('classifies %j as a taken port: %s', (log, taken) => {
    expect(new ComponentStartError('etcd', 'the process exited with code 1 before it was ready', log).portTaken).toBe(taken);
  });

  it('names the component and carries the log tail in its message', () => {
    const err = new ComponentStartError('kube-apiserver', 'not ready within 5 ms', 'line one\nline two');
    expect(err.message).toMatch(/^kube-apiserver failed to start: not ready within 5 ms/);
    expect(err.message).toContain('--- last lines of the kube-apiserver log ---\nline one\nline two');
  });
});
