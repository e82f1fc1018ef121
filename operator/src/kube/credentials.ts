// Where the API server is and how to authenticate to it: from a kubeconfig file (client
// certificates or bearer tokens) or from the pod's ServiceAccount when running in a cluster.
// The operator reads these itself rather than through client-node's KubeConfig, whose
// import alone loads the whole generated API (about 60 MB of resident memory).
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { MeshworkError } from '@meshwork/contract';
import { parse } from 'yaml';

/** Everything needed to open an authenticated connection to the API server. */
export interface Credentials {
  server: URL;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  insecureSkipTlsVerify?: boolean;
  /** The bearer token to send now (re-read from its file as it rotates). */
  token?: () => string;
}

/** Raised when a kubeconfig cannot be used; the message names the entry at fault. */
export class KubeconfigError extends MeshworkError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('kubeconfig_invalid', message, options);
  }
}

interface NamedCluster {
  name: string;
  cluster: {
    server?: string;
    'certificate-authority'?: string;
    'certificate-authority-data'?: string;
    'insecure-skip-tls-verify'?: boolean;
  };
}
interface NamedUser {
  name: string;
  user: {
    'client-certificate'?: string;
    'client-certificate-data'?: string;
    'client-key'?: string;
    'client-key-data'?: string;
    token?: string;
    tokenFile?: string;
    exec?: unknown;
    'auth-provider'?: unknown;
    username?: string;
  };
}
interface NamedContext {
  name: string;
  context: { cluster: string; user: string };
}
interface KubeconfigDocument {
  'current-context'?: string;
  clusters?: NamedCluster[];
  users?: NamedUser[];
  contexts?: NamedContext[];
}

/** A token file's content, re-read at most once a minute (projected tokens rotate hourly). */
function tokenFromFile(path: string): () => string {
  let value = '';
  let readAt = 0;
  return () => {
    if (Date.now() - readAt > 60_000) {
      value = readFileSync(path, 'utf8').trim();
      readAt = Date.now();
    }
    return value;
  };
}

/** Loads the current context of a kubeconfig file. */
export function loadKubeconfigFile(path: string): Credentials {
  let doc: KubeconfigDocument;
  try {
    doc = parse(readFileSync(path, 'utf8')) as KubeconfigDocument;
  } catch (err) {
    throw new KubeconfigError(`Could not read kubeconfig ${path}`, { cause: err });
  }
  const resolve = (file: string): string => (isAbsolute(file) ? file : join(dirname(path), file));
  const material = (data: string | undefined, file: string | undefined): Buffer | undefined =>
    data ? Buffer.from(data, 'base64') : file ? readFileSync(resolve(file)) : undefined;
  const contextName = doc['current-context'];
  const context = doc.contexts?.find((c) => c.name === contextName)?.context;
  if (!context) throw new KubeconfigError(`kubeconfig ${path}: current-context "${contextName ?? ''}" is not among its contexts`);
  const cluster = doc.clusters?.find((c) => c.name === context.cluster)?.cluster;
  if (!cluster?.server) throw new KubeconfigError(`kubeconfig ${path}: cluster "${context.cluster}" has no server`);
  const user = doc.users?.find((u) => u.name === context.user)?.user ?? {};
  if (user.exec || user['auth-provider'] || user.username) {
    throw new KubeconfigError(
      `kubeconfig ${path}: user "${context.user}" uses exec, auth-provider or basic auth, which the operator does not support; use a client certificate or a token`,
    );
  }
  const credentials: Credentials = {
    server: new URL(cluster.server),
    ca: material(cluster['certificate-authority-data'], cluster['certificate-authority']),
    cert: material(user['client-certificate-data'], user['client-certificate']),
    key: material(user['client-key-data'], user['client-key']),
    insecureSkipTlsVerify: cluster['insecure-skip-tls-verify'] === true,
  };
  if (user.token) {
    const token = user.token;
    credentials.token = () => token;
  } else if (user.tokenFile) {
    credentials.token = tokenFromFile(resolve(user.tokenFile));
  }
  return credentials;
}

const serviceAccountDir = '/var/run/secrets/kubernetes.io/serviceaccount';

/** The pod's own ServiceAccount, as every in-cluster client uses it. */
export function loadInClusterCredentials(env: NodeJS.ProcessEnv = process.env): Credentials {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  if (!host) throw new KubeconfigError('Not in a cluster: KUBERNETES_SERVICE_HOST is not set, and no KUBECONFIG was given');
  return {
    server: new URL(`https://${host.includes(':') ? `[${host}]` : host}:${port}`),
    ca: readFileSync(join(serviceAccountDir, 'ca.crt')),
    token: tokenFromFile(join(serviceAccountDir, 'token')),
  };
}
