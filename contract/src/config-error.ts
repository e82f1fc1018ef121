// The one error for invalid configuration, shared by every role that reads its settings from
// the environment (the data plane, the operator): it names the bad field, so the termination
// message and the operator's status say what to fix.
import type { z } from 'zod';
import { configInvalidMessage } from './exit-codes.ts';
import { MeshworkError } from './errors.ts';

/** Raised for invalid configuration; `field` is the environment variable (or setting) at fault. */
export class ConfigError extends MeshworkError {
  /** The variable or setting at fault. */
  readonly field: string;

  constructor(field: string, message: string, options?: { cause?: unknown }) {
    super('config_invalid', configInvalidMessage(field, message), options);
    this.field = field;
  }
}

/**
 * Parses `env` with `schema`, or throws a ConfigError naming the first bad variable ("is
 * required" when it is absent, the schema's message otherwise).
 */
export function parseEnvironment<S extends z.ZodType>(schema: S, env: Record<string, string | undefined>): z.output<S> {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  // The variable, not the element of a list inside it (MESHWORK_ETCD_ENDPOINTS, not ...ENDPOINTS.0).
  const field = String(issue.path[0] ?? 'environment');
  throw new ConfigError(field, env[field] === undefined ? 'is required' : issue.message, { cause: result.error });
}
