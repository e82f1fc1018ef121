// The prober role's configuration, parsed once at start from the environment with the
// contract's schema (@meshwork/contract, env.ts: proberEnvSchema); a bad value names its variable.
import { ProberEnv, parseEnvironment, proberEnvSchema, type LogLevel } from '@meshwork/contract';

/** The prober role's configuration. */
export interface ProberConfig {
  listen: { host: string; port: number };
  target: string;
  accountToken: string;
  intervalMs: number;
  stepTimeoutMs: number;
  fileBytes: number;
  logLevel: LogLevel;
}

/** Parses and validates the prober's configuration from `env`. */
export function parseProberConfig(env: NodeJS.ProcessEnv): ProberConfig {
  const e = parseEnvironment(proberEnvSchema, env);
  return {
    listen: e[ProberEnv.listen],
    target: e[ProberEnv.target],
    accountToken: e[ProberEnv.accountToken],
    intervalMs: e[ProberEnv.intervalSeconds] * 1000,
    stepTimeoutMs: e[ProberEnv.stepTimeoutSeconds] * 1000,
    fileBytes: e[ProberEnv.fileBytes],
    logLevel: e[ProberEnv.logLevel],
  };
}
