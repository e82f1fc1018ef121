// The prompt for a secret on a terminal: raw mode, nothing echoed, Enter ends it, Backspace
// erases, Ctrl-C interrupts (exit 130). Only the prompt and a line break reach the terminal.
import { CliError, CliExit } from './exit-codes.ts';

/** The part of a terminal's stdin the prompt uses. */
export interface PromptInput {
  setRawMode(raw: boolean): unknown;
  resume(): unknown;
  pause(): unknown;
  on(event: 'data', listener: (chunk: Buffer | string) => void): unknown;
  off(event: 'data', listener: (chunk: Buffer | string) => void): unknown;
}

/** Reads one line from a terminal without echoing it. */
export function promptHidden(stdin: PromptInput, output: { write(text: string): unknown }, prompt: string): Promise<string> {
  output.write(prompt);
  return new Promise((resolve, reject) => {
    let text = '';
    const finish = (error?: Error): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      output.write('\n');
      if (error) reject(error);
      else resolve(text);
    };
    const onData = (chunk: Buffer | string): void => {
      for (const ch of chunk.toString()) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return finish();
        if (ch === '\u0003') return finish(new CliError(CliExit.interrupted, 'interrupted'));
        if (ch === '\u007f' || ch === '\b') text = text.slice(0, -1);
        else text += ch;
      }
    };
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on('data', onData);
  });
}
