// The gateway role's configuration, parsed once at start from the environment with the
// contract's schema (@meshwork/contract, env.ts: gatewayEnvSchema); a bad value names its variable.
import { GatewayEnv, gatewayEnvSchema, parseEnvironment, type LogLevel } from '@meshwork/contract';

/** The gateway role's configuration. */
export interface GatewayConfig {
  listen: { host: string; port: number };
  etcdEndpoints: string[];
  /** The directory of `tls.crt` and `tls.key`; undefined in plain HTTP mode. */
  tlsDir: string | undefined;
  upstreamTimeoutMs: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  maxHeaderBytes: number;
  upstreamSockets: number;
  probeIntervalMs: number;
  concurrency: { min: number; max: number };
  logLevel: LogLevel;
  shutdownGraceSeconds: number;
  livenessMaxEventLoopDelayMs: number;
  otlpEndpoint: string | undefined;
  /** The built web UI's directory; undefined: the default (web.ts, defaultWebDir). */
  webDir: string | undefined;
}

/** Parses and validates the gateway's configuration from `env`. */
export function parseGatewayConfig(env: NodeJS.ProcessEnv): GatewayConfig {
  const e = parseEnvironment(gatewayEnvSchema, env);
  return {
    listen: e[GatewayEnv.listen],
    etcdEndpoints: e[GatewayEnv.etcdEndpoints],
    tlsDir: e[GatewayEnv.plainHttp] ? undefined : e[GatewayEnv.tlsDir],
    upstreamTimeoutMs: e[GatewayEnv.upstreamTimeoutSeconds] * 1000,
    headersTimeoutMs: e[GatewayEnv.headersTimeoutSeconds] * 1000,
    requestTimeoutMs: e[GatewayEnv.requestTimeoutSeconds] * 1000,
    maxHeaderBytes: e[GatewayEnv.maxHeaderBytes],
    upstreamSockets: e[GatewayEnv.upstreamSockets],
    probeIntervalMs: e[GatewayEnv.probeIntervalMs],
    concurrency: { min: e[GatewayEnv.concurrencyMin], max: e[GatewayEnv.concurrencyMax] },
    logLevel: e[GatewayEnv.logLevel],
    shutdownGraceSeconds: e[GatewayEnv.shutdownGraceSeconds],
    livenessMaxEventLoopDelayMs: e[GatewayEnv.livenessMaxEventLoopDelayMs],
    otlpEndpoint: e[GatewayEnv.otlpEndpoint],
    webDir: e[GatewayEnv.webDir],
  };
}
