// The operator's configuration, read once from the environment and validated; a bad
// value stops the process at start with a ConfigError naming the variable. The variable names
// are the contract's (@meshwork/contract, env.ts).
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { OperatorEnv, operatorHttpPort, parseEnvironment } from '@meshwork/contract';
import { defaultImage } from './specs/common.ts';

const boolean = z.enum(['true', 'false']).transform((v) => v === 'true');
const address = z
  .string()
  .regex(/^[^:]+:\d{1,5}$/, 'must be host:port')
  .transform((v) => {
    const i = v.lastIndexOf(':');
    return { host: v.slice(0, i), port: Number(v.slice(i + 1)) };
  });

const schema = z.object({
  [OperatorEnv.kubeconfig]: z.string().min(1).optional(),
  [OperatorEnv.namespace]: z.string().min(1).optional(),
  [OperatorEnv.podNamespace]: z.string().min(1).optional(),
  [OperatorEnv.watchNamespace]: z.string().default(''),
  [OperatorEnv.httpAddress]: address.default({ host: '0.0.0.0', port: operatorHttpPort }),
  [OperatorEnv.concurrency]: z.coerce.number().int().min(1).max(64).default(8),
  [OperatorEnv.leaderElect]: boolean.default(true),
  [OperatorEnv.leaseName]: z.string().min(1).default('meshwork-operator'),
  [OperatorEnv.identity]: z.string().min(1).optional(),
  [OperatorEnv.image]: z.string().min(1).default(defaultImage),
  [OperatorEnv.maxUnhealthyPercent]: z.coerce.number().int().min(0).max(100).default(50),
  [OperatorEnv.logLevel]: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
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

/** Parses the operator's configuration from `env`; throws the contract's ConfigError naming the bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv): OperatorConfig {
  const c = parseEnvironment(schema, env);
  return {
    kubeconfig: c[OperatorEnv.kubeconfig],
    namespace: c[OperatorEnv.namespace] ?? c[OperatorEnv.podNamespace] ?? 'meshwork-system',
    watchNamespace: c[OperatorEnv.watchNamespace],
    http: c[OperatorEnv.httpAddress],
    concurrency: c[OperatorEnv.concurrency],
    leaderElect: c[OperatorEnv.leaderElect],
    leaseName: c[OperatorEnv.leaseName],
    identity: c[OperatorEnv.identity] ?? `${hostname()}_${randomBytes(4).toString('hex')}`,
    image: c[OperatorEnv.image],
    logLevel: c[OperatorEnv.logLevel],
    maxUnhealthyPercent: c[OperatorEnv.maxUnhealthyPercent],
  };
}
