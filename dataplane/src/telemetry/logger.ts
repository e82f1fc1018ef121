// JSON logs (pino): every line made while serving a request carries the request's trace_id and
// span_id, and credentials are redacted wherever they might appear in a logged object.
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';
import type { Tracing } from './tracing.ts';

/** Logged fields that may hold a credential; their values are replaced by "[redacted]". */
export const redactedPaths: readonly string[] = [
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'headers.cookie',
  '*.headers.cookie',
  'token',
  '*.token',
  'adminToken',
  '*.adminToken',
  'secretKey',
  '*.secretKey',
  '*.*.secretKey',
  'accessKey',
  '*.accessKey',
  '*.*.accessKey',
];

export interface LoggerOptions {
  level: LevelWithSilent;
  /** Fields on every line (role, partition). */
  base: Record<string, unknown>;
  tracing: Tracing;
  /** Where lines go; stdout when absent. */
  destination?: DestinationStream;
}

/** Creates the process logger. */
export function createLogger(options: LoggerOptions): Logger {
  const { tracing } = options;
  const settings = {
    level: options.level,
    base: options.base,
    redact: { paths: [...redactedPaths], censor: '[redacted]' },
    // The active span's ids, or with export off the trace id a request came with.
    mixin: () => tracing.activeIds() ?? {},
  };
  return options.destination ? pino(settings, options.destination) : pino(settings);
}
