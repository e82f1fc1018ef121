// The secret prompt: what is typed is read and never echoed; Backspace, Enter and Ctrl-C.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { CliError, CliExit } from './exit-codes.ts';
import { promptHidden } from './prompt.ts';

class FakeTerminal extends EventEmitter {
  raw: boolean[] = [];
  setRawMode(raw: boolean): void {
    this.raw.push(raw);
  }
  resume(): void {}
  pause(): void {}
}

function prompt(keys: string[]): { answer: Promise<string>; written: string[]; terminal: FakeTerminal } {
  const terminal = new FakeTerminal();
  const written: string[] = [];
  const answer = promptHidden(terminal, { write: (t: string) => written.push(t) }, 'Token: ');
  for (const k of keys) terminal.emit('data', Buffer.from(k));
  return { answer, written, terminal };
}

describe('promptHidden', () => {
  it.each([
    [['mwu.abc\r'], 'mwu.abc'],
    [['mwu.', 'abc', '\n'], 'mwu.abc'],
    [['mwu.abx\u007fc\r'], 'mwu.abc'],
    [['mwu.abx\bc\r'], 'mwu.abc'],
    [['\r'], ''],
    [['mwu.abc\u0004'], 'mwu.abc'],
  ])('%j reads %j and echoes nothing', async (keys, expected) => {
    const { answer, written, terminal } = prompt(keys);
    expect(await answer).toBe(expected);
    expect(written).toEqual(['Token: ', '\n']);
    expect(terminal.raw).toEqual([true, false]);
    expect(terminal.listenerCount('data')).toBe(0);
  });

  it('is interrupted by Ctrl-C (exit 130)', async () => {
    const { answer, terminal } = prompt(['mwu.\u0003']);
    const error = await answer.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).exitCode).toBe(CliExit.interrupted);
    expect(terminal.raw).toEqual([true, false]);
  });
});
