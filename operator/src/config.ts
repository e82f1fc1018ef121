// The operator's configuration, read once from the environment and validated; a bad
// value stops the process at start with a message naming the variable.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';

const boolean = z.enum(['true', 'false']).transform((v) => v === 'true');
const address = z
  .string()
  .regex(/^[^:]+:\d{1,5}$/, 'must be host:port')
  .transform((v) => {
    const i = v.lastIndexOf(':');
    return { host: v.slice(0, i), port: Number(v.slice(i + 1)) };
  });

const schema = z.object({
  KUBECONFIG: z.string().min(1).optional(),
  MESHWORK_OPERATOR_NAMESPACE: z.string().min(1).optional(),
  POD_NAMESPACE: z.string().min(1).optional(),
  MESHWORK_OPERATOR_WATCH_NAMESPACE: z.string().default(''),
  MESHWORK_OPERATOR_HTTP_ADDRESS: address.default({ host: '0.0.0.0', port: 8081 }),
  MESHWORK_OPERATOR_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(8),
  MESHWORK_OPERATOR_LEADER_ELECT: boolean.default(true),
  MESHWORK_OPERATOR_LEASE_NAME: z.string().min(1).default('meshwork-operator'),
  MESHWORK_OPERATOR_IDENTITY: z.string().min(1).optional(),
  MESHWORK_IMAGE: z.string().min(1).default('meshwork/meshwork:0.1.0'),
  MESHWORK_WATCHDOG_MAX_UNHEALTHY_PERCENT: z.coerce.number().int().min(0).max(100).default(50),
  MESHWORK_LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
});

export interface OperatorConfig {
  kubeconfig: string | undefined;
  /** Where the leader Lease lives. */
  namespace: string;
  watchNamespace: string;
  http: { host: string; port: number };
  concurrency: number;
  leaderElect: boolean;
  leaseName: string;
  identity: string;
  image: string;
  logLevel: string;
  /** Above this share of unhealthy members across all partitions, the watchdog repairs nothing. */
  maxUnhealthyPercent: number;
}

/** Raised when the environment holds an invalid setting; names the variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Parses the operator's configuration from `env`. */
export function loadConfig(env: NodeJS.ProcessEnv): OperatorConfig {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`Invalid configuration: ${issue.path.join('.')}: ${issue.message}`, { cause: parsed.error });
  }
  const c = parsed.data;
  return {
    kubeconfig: c.KUBECONFIG,
    namespace: c.MESHWORK_OPERATOR_NAMESPACE ?? c.POD_NAMESPACE ?? 'meshwork-system',
    watchNamespace: c.MESHWORK_OPERATOR_WATCH_NAMESPACE,
    http: c.MESHWORK_OPERATOR_HTTP_ADDRESS,
    concurrency: c.MESHWORK_OPERATOR_CONCURRENCY,
    leaderElect: c.MESHWORK_OPERATOR_LEADER_ELECT,
    leaseName: c.MESHWORK_OPERATOR_LEASE_NAME,
    identity: c.MESHWORK_OPERATOR_IDENTITY ?? `${hostname()}_${randomBytes(4).toString('hex')}`,
    image: c.MESHWORK_IMAGE,
    logLevel: c.MESHWORK_LOG_LEVEL,
    maxUnhealthyPercent: c.MESHWORK_WATCHDOG_MAX_UNHEALTHY_PERCENT,
  };
}
