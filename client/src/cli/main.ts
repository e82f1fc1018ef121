// The `meshwork` program as a function: argv and the process's streams in, an exit code out.
// It parses the command line, prints help, runs the command, and turns any failure into one
// line on stderr (a JSON object with --json) and an exit code; a stack trace only with
// MESHWORK_DEBUG=1. meshwork.ts is the executable that calls it.
import { inspect } from 'node:util';
import { commandSpec, helpText, parseCommandLine, type ParsedCommand } from './args.ts';
import { runCommand, type CliIo } from './commands.ts';
import { CliExit, UsageError, outcomeOf, type CliExitCode } from './exit-codes.ts';

export type { CliIo, SyncEngine } from './commands.ts';

/** Runs `meshwork` with these arguments; answers the exit code. */
export async function main(argv: readonly string[], io: CliIo): Promise<CliExitCode> {
  let cmd: ParsedCommand | undefined;
  try {
    cmd = parseCommandLine(argv);
    if (cmd.help) {
      io.stdout.write(helpText(cmd.command === 'help' ? undefined : cmd.command));
      return CliExit.ok;
    }
    if (cmd.command === 'help') {
      io.stdout.write(helpText(cmd.args[0]));
      return CliExit.ok;
    }
    const parsed = cmd;
    // One trace per command: every request it sends is a child span. `sync` runs for as long as
    // it is left running: there, each pass is a trace of its own (the agent starts it).
    if (io.tracing === undefined || parsed.command === 'sync') return await runCommand(io, parsed);
    return await io.tracing.startTrace(`meshwork ${parsed.command}`, {}, () => runCommand(io, parsed));
  } catch (err) {
    const outcome = outcomeOf(err);
    const json = cmd?.json ?? argv.includes('--json');
    if (json) io.stderr.write(`${JSON.stringify({ error: outcome })}\n`);
    else io.stderr.write(`meshwork: ${outcome.message}\n`);
    if (err instanceof UsageError && !json) {
      const name = err.command;
      io.stderr.write(`\n${helpText(name !== undefined && (commandSpec(name) !== undefined || !name.includes(' ')) ? name : undefined)}`);
    }
    if (io.env.MESHWORK_DEBUG === '1') io.stderr.write(`${debugText(err)}\n`);
    return outcome.exitCode;
  }
}

/** The stack and causes of an error, for MESHWORK_DEBUG=1. */
function debugText(err: unknown): string {
  const parts: string[] = [];
  let current: unknown = err;
  for (let depth = 0; current !== undefined && depth < 5; depth++) {
    parts.push(current instanceof Error ? (current.stack ?? current.message) : inspect(current));
    current = current instanceof Error ? current.cause : undefined;
    if (current !== undefined) parts.push('caused by:');
  }
  return parts.join('\n');
}
