// The program as a function, over in-memory streams: help on stdout, a failure as one line
// (or one JSON object) on stderr with its exit code, and a stack only with MESHWORK_DEBUG=1.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { main, type CliIo } from './main.ts';

const temp = mkdtempSync(join(tmpdir(), 'meshwork-cli-main-'));
afterAll(() => rmSync(temp, { recursive: true, force: true }));

async function run(argv: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const sink = (into: string[]): Writable =>
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        into.push(chunk.toString());
        done();
      },
    });
  const io: CliIo = {
    stdout: sink(out),
    stderr: sink(err),
    stdin: process.stdin,
    env: { MESHWORK_CONFIG_DIR: join(temp, 'config'), MESHWORK_STATE_DIR: join(temp, 'state'), ...env },
    home: temp,
    onSignal: () => () => undefined,
  };
  const code = await main(argv, io);
  return { code, out: out.join(''), err: err.join('') };
}

describe('main', () => {
  it.each([[['help']], [['--help']], [['put', '--help']], [['help', 'devices']]])('%j prints help on stdout and exits 0', async (argv) => {
    const { code, out, err } = await run(argv);
    expect(code).toBe(0);
    expect(out).toMatch(/^Usage: meshwork/m);
    expect(err).toBe('');
  });

  it('prints a usage error and the command usage on stderr (64)', async () => {
    const { code, out, err } = await run(['get']);
    expect(code).toBe(64);
    expect(out).toBe('');
    expect(err).toMatch(/^meshwork: get needs ID:PATH\n\nUsage: meshwork get ID:PATH \[LOCAL_FILE\]/);
  });

  it('prints one line without a stack for a failure', async () => {
    const { code, err } = await run(['whoami']);
    expect(code).toBe(77);
    expect(err).toBe('meshwork: not logged in; run meshwork login --server URL\n');
  });

  it('prints the failure as one JSON object on stderr with --json', async () => {
    const { code, out, err } = await run(['whoami', '--json']);
    expect(code).toBe(77);
    expect(out).toBe('');
    expect(JSON.parse(err)).toEqual({
      error: { exitCode: 77, code: 'unauthorized', message: 'not logged in; run meshwork login --server URL' },
    });
  });

  it('adds the stack with MESHWORK_DEBUG=1', async () => {
    const { code, err } = await run(['whoami'], { MESHWORK_DEBUG: '1' });
    expect(code).toBe(77);
    expect(err.split('\n')[0]).toBe('meshwork: not logged in; run meshwork login --server URL');
    expect(err).toMatch(/CliError: not logged in[\s\S]*\n\s+at /);
  });

  it('answers status with nothing synced without a login', async () => {
    const { code, out } = await run(['status']);
    expect(code).toBe(0);
    expect(out).toMatch(/^nothing synced yet/);
  });
});
