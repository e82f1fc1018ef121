// How the `meshwork` command ends, and how a failure becomes one clear line and an exit code.
// Pure: it looks only at the error, so the whole mapping is a table test (exit-codes.test.ts)
// and docs/agent.md prints the same table. Codes follow sysexits(3) where one fits, so a shell
// script or a service manager can tell "log in again" (77) from "try later" (75, 69).
import { ApiError, MeshworkError } from '@meshwork/contract/errors';
import { NetworkError, RequestAbortedError, RequestTimeoutError, UnexpectedAnswerError } from '../errors.ts';
import { AgentStopped } from '../agent/index.ts';

/** The exit codes of `meshwork`, documented in docs/agent.md. */
export const CliExit = {
  ok: 0,
  /** Anything else that went wrong. */
  failure: 1,
  /** `sync --once` finished but some paths have problems (see `meshwork status`). */
  partial: 2,
  /** The command line is wrong (unknown command, bad or missing flag). */
  usage: 64,
  /** The input is wrong: an invalid path, a missing local or remote file, a file that exists without --force. */
  dataError: 65,
  /** The server could not be reached, or answered that it is unavailable, after the client's retries. */
  unavailable: 69,
  /** The server is busy or throttling this device: retry later. */
  temporary: 75,
  /** Not logged in, the token was refused (device revoked), or the caller may not do this. */
  noPermission: 77,
  /** Interrupted by Ctrl-C (SIGINT) during a one-shot transfer. */
  interrupted: 130,
} as const;

/** One of `meshwork`'s exit codes. */
export type CliExitCode = (typeof CliExit)[keyof typeof CliExit];

/** The command line is wrong; the usage of the command is printed with it. */
export class UsageError extends Error {
  /** The command whose usage to print (undefined: the general usage). */
  readonly command: string | undefined;
  constructor(message: string, command?: string) {
    super(message);
    this.name = 'UsageError';
    this.command = command;
  }
}

/** A failure the command already put into words, with the exit code to end with. */
export class CliError extends Error {
  readonly exitCode: CliExitCode;
  constructor(exitCode: CliExitCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

/** The message for a device token the server refuses. */
export const revokedMessage = 'this device was revoked; run meshwork login again';

/** The message when there is no configuration. */
export const notLoggedInMessage = 'not logged in; run meshwork login --server URL';

/** What a failure prints (one line, no stack) and the code the command exits with. */
export interface Outcome {
  exitCode: CliExitCode;
  /** A machine-readable name of the failure, for `--json`. */
  code: string;
  message: string;
}

const temporaryCodes = new Set([
  'rate_limited',
  'device_offline',
  'relay_busy',
  'too_many_long_polls',
  'too_many_polls',
  'busy',
  'draining',
  'overloaded',
  'ownership_lost',
]);
const unavailableCodes = new Set([
  'store_unavailable',
  'partition_unavailable',
  'bad_gateway',
  'gateway_timeout',
  'internal',
  'not_ready',
  'unhealthy',
  'event_loop_stalled',
  'misdirected',
]);
const dataCodes = new Set([
  'invalid_request',
  'invalid_json',
  'invalid_path',
  'invalid_cursor',
  'not_found',
  'conflict',
  'blocks_missing',
  'not_a_file',
  'peer_to_peer_only',
  'precondition_failed',
  'too_large',
  'entry_too_large',
  'range_not_satisfiable',
  'hash_mismatch',
]);

/** The exit code and one-line message for anything a command throws. */
export function outcomeOf(error: unknown): Outcome {
  if (error instanceof UsageError) return { exitCode: CliExit.usage, code: 'usage', message: error.message };
  if (error instanceof CliError) return { exitCode: error.exitCode, code: codeOfExit(error.exitCode), message: error.message };
  if (error instanceof AgentStopped) {
    const message = error.code === 'unauthorized' ? revokedMessage : error.message;
    return { exitCode: CliExit.noPermission, code: error.code, message };
  }
  if (error instanceof ApiError || error instanceof UnexpectedAnswerError) return outcomeOfAnswer(error);
  if (error instanceof RequestAbortedError) return { exitCode: CliExit.interrupted, code: 'aborted', message: 'interrupted' };
  if (error instanceof RequestTimeoutError || error instanceof NetworkError) {
    return { exitCode: CliExit.unavailable, code: error.code, message: `the server is unavailable: ${error.message}` };
  }
  if (error instanceof MeshworkError) return { exitCode: CliExit.failure, code: error.code, message: error.message };
  const message = error instanceof Error ? error.message : String(error);
  return { exitCode: CliExit.failure, code: 'failure', message };
}

function outcomeOfAnswer(error: ApiError | UnexpectedAnswerError): Outcome {
  const code = error.code;
  const said = error.message;
  if (code === 'unauthenticated' || error.status === 401)
    return { exitCode: CliExit.noPermission, code: 'unauthenticated', message: revokedMessage };
  if (code === 'forbidden' || error.status === 403)
    return { exitCode: CliExit.noPermission, code: 'forbidden', message: `not allowed: ${said}` };
  if (code === 'insufficient_storage') return { exitCode: CliExit.failure, code, message: `over the storage quota: ${said}` };
  if (temporaryCodes.has(code) || error.status === 429) {
    return { exitCode: CliExit.temporary, code, message: `the server is busy, try again later: ${said}` };
  }
  if (unavailableCodes.has(code) || error.status >= 500) {
    return { exitCode: CliExit.unavailable, code, message: `the server is unavailable: ${said}` };
  }
  if (dataCodes.has(code) || (error.status >= 400 && error.status < 500)) return { exitCode: CliExit.dataError, code, message: said };
  return { exitCode: CliExit.failure, code, message: said };
}

function codeOfExit(exitCode: CliExitCode): string {
  const names: Record<number, string> = {
    [CliExit.failure]: 'failure',
    [CliExit.partial]: 'partial',
    [CliExit.usage]: 'usage',
    [CliExit.dataError]: 'bad_input',
    [CliExit.unavailable]: 'unavailable',
    [CliExit.temporary]: 'temporary',
    [CliExit.noPermission]: 'unauthorized',
    [CliExit.interrupted]: 'aborted',
  };
  return names[exitCode] ?? 'failure';
}
