// A real Kubernetes control plane on loopback: etcd, kube-apiserver (TLS, client
// certificates, RBAC, service-account keys), kube-controller-manager and kube-scheduler.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { startEtcd, type EtcdServer } from './etcd.ts';
import { requireBinary } from './binaries.ts';
import { ComponentStartError } from './errors.ts';
import { LocalPki } from './pki.ts';
import { freePorts } from './ports.ts';
import { ManagedProcess } from './process.ts';

export interface ControlPlaneOptions {
  /** Keep state here (kept on stop, reused on the next start); a temporary directory otherwise. */
  dir?: string;
  /** Fixed API server port; a free one otherwise. */
  apiServerPort?: number;
  /**
   * Address the API server listens on and advertises (default 127.0.0.1). A non-loopback
   * address (the local stack's host address, ADR 27) also becomes the `kubernetes` Service's
   * endpoint.
   */
  address?: string;
  /** Extra flags per component. */
  extraArgs?: Partial<Record<'kube-apiserver' | 'kube-controller-manager' | 'kube-scheduler', string[]>>;
  timeoutMs?: number;
}

export interface ControlPlane {
  /** https://127.0.0.1:PORT */
  server: string;
  dir: string;
  /** Path of a kubeconfig for a cluster administrator (system:masters). */
  adminKubeconfig: string;
  /** A KubeConfig loaded from adminKubeconfig. */
  kubeConfig(): KubeConfig;
  /** Path of the CA certificate that signed the API server's serving certificate. */
  caFile: string;
  etcd: EtcdServer;
  processes: ManagedProcess[];
  /** Writes a kubeconfig that authenticates as a ServiceAccount (token from the TokenRequest API). */
  mintServiceAccountKubeconfig(namespace: string, serviceAccount: string, expirationSeconds?: number): Promise<string>;
  stop(): Promise<void>;
}

/** Service CIDR of the local cluster; its first address is the `kubernetes` Service. */
export const serviceCidr = '198.18.128.0/20';

interface TlsOptions {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  insecure?: boolean;
}

/** GETs an HTTPS URL with the given TLS material and resolves with its status code. */
function httpsStatus(url: string, tls: TlsOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'GET', ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: !tls.insecure, timeout: 2000 },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** A kubeconfig document with embedded credentials. */
function kubeconfigYaml(server: string, caData: string, user: string, credentials: Record<string, string>): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'meshwork-local', cluster: { server, 'certificate-authority-data': caData } }],
    users: [{ name: user, user: credentials }],
    contexts: [{ name: user, context: { cluster: 'meshwork-local', user, namespace: 'default' } }],
    'current-context': user,
  });
}

/** Starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler and waits for all of them. */
export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startControlPlaneOnce(options);
    } catch (err) {
      const retry = err instanceof ComponentStartError && err.portTaken && options.apiServerPort === undefined && attempt < 3;
      if (!retry) throw err;
    }
  }
}

async function startControlPlaneOnce(options: ControlPlaneOptions): Promise<ControlPlane> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  const [apiserverBin, cmBin, schedBin] = ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler'].map(requireBinary);
  requireBinary('etcd');
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'meshwork-k8s-')));
  const pkiDir = join(dir, 'pki');
  const logDir = join(dir, 'logs');
  await mkdir(pkiDir, { recursive: true });
  await mkdir(logDir, { recursive: true });

  const pki = await LocalPki.open(pkiDir);
  const sa = await pki.serviceAccountKey();
  // One serving certificate per address, so a stack dir that changes mode gets the right names.
  const servingAddress = options.address ?? '127.0.0.1';
  const serving = await pki.issue({
    name: servingAddress === '127.0.0.1' ? 'apiserver' : `apiserver-${servingAddress}`,
    commonName: 'kube-apiserver',
    usage: 'server',
    altNames: [
      'IP:127.0.0.1',
      ...(servingAddress === '127.0.0.1' ? [] : [`IP:${servingAddress}`]),
      'IP:198.18.128.1',
      'DNS:localhost',
      'DNS:kubernetes',
      'DNS:kubernetes.default',
      'DNS:kubernetes.default.svc',
      'DNS:kubernetes.default.svc.cluster.local',
    ],
  });
  const admin = await pki.issue({ name: 'admin', commonName: 'meshwork-admin', organization: 'system:masters', usage: 'client' });
  const cm = await pki.issue({ name: 'controller-manager', commonName: 'system:kube-controller-manager', usage: 'client' });
  const sched = await pki.issue({ name: 'scheduler', commonName: 'system:kube-scheduler', usage: 'client' });

  const processes: ManagedProcess[] = [];
  const etcd = await startEtcd({ name: 'control-plane-etcd', dataDir: join(dir, 'etcd'), timeoutMs });
  const stopAll = async (): Promise<void> => {
    for (const p of [...processes].reverse()) await p.stop();
    await etcd.stop();
  };

  try {
    const [freeApi, cmPort, schedPort] = await freePorts(3);
    const apiPort = options.apiServerPort ?? freeApi!;
    const address = options.address ?? '127.0.0.1';
    const loopback = address.startsWith('127.');
    const server = `https://${address}:${apiPort}`;
    const caData = await LocalPki.base64(pki.caCert);
    const clientKubeconfig = async (name: string, pair: { cert: string; key: string }): Promise<string> => {
      const path = join(dir, `${name}.kubeconfig`);
      await writeFile(
        path,
        kubeconfigYaml(server, caData, name, {
          'client-certificate-data': await LocalPki.base64(pair.cert),
          'client-key-data': await LocalPki.base64(pair.key),
        }),
        { mode: 0o600 },
      );
      return path;
    };
    const adminKubeconfig = await clientKubeconfig('admin', admin);
    const cmKubeconfig = await clientKubeconfig('controller-manager', cm);
    const schedKubeconfig = await clientKubeconfig('scheduler', sched);

    const apiserver = ManagedProcess.start({
      component: 'kube-apiserver',
      binary: apiserverBin!,
      logFile: join(logDir, 'kube-apiserver.log'),
      args: [
        `--etcd-servers=${etcd.endpoint}`,
        `--bind-address=${address}`,
        `--advertise-address=${address}`,
        `--secure-port=${apiPort}`,
        `--tls-cert-file=${serving.cert}`,
        `--tls-private-key-file=${serving.key}`,
        `--client-ca-file=${pki.caCert}`,
        '--authorization-mode=Node,RBAC',
        '--anonymous-auth=false',
        `--service-account-key-file=${sa.pub}`,
        `--service-account-signing-key-file=${sa.key}`,
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        `--service-cluster-ip-range=${serviceCidr}`,
        // Loopback cannot be published as the kubernetes Service's endpoint.
        ...(loopback ? ['--endpoint-reconciler-type=none'] : []),
        '--allow-privileged=true',
        '--profiling=false',
        '--v=1',
        ...(options.extraArgs?.['kube-apiserver'] ?? []),
      ],
    });
    processes.push(apiserver);
    const adminTls = { ca: await readFile(pki.caCert), cert: await readFile(admin.cert), key: await readFile(admin.key) };
    await apiserver.waitReady(async () => (await httpsStatus(`${server}/readyz`, adminTls)) === 200, {
      timeoutMs,
      what: 'to answer /readyz',
    });

    const common = (kubeconfig: string, port: number): string[] => [
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${port}`,
      '--leader-elect=false',
      '--profiling=false',
      '--v=1',
    ];
    const controllerManager = ManagedProcess.start({
      component: 'kube-controller-manager',
      binary: cmBin!,
      logFile: join(logDir, 'kube-controller-manager.log'),
      args: [
        ...common(cmKubeconfig, cmPort!),
        `--root-ca-file=${pki.caCert}`,
        `--service-account-private-key-file=${sa.key}`,
        `--cluster-signing-cert-file=${pki.caCert}`,
        `--cluster-signing-key-file=${pki.caKey}`,
        '--use-service-account-credentials=true',
        `--service-cluster-ip-range=${serviceCidr}`,
        ...(options.extraArgs?.['kube-controller-manager'] ?? []),
      ],
    });
    processes.push(controllerManager);
    const scheduler = ManagedProcess.start({
      component: 'kube-scheduler',
      binary: schedBin!,
      logFile: join(logDir, 'kube-scheduler.log'),
      args: [...common(schedKubeconfig, schedPort!), ...(options.extraArgs?.['kube-scheduler'] ?? [])],
    });
    processes.push(scheduler);
    const healthy = (port: number) => async () => (await httpsStatus(`https://127.0.0.1:${port}/healthz`, { insecure: true })) === 200;
    await Promise.all([
      controllerManager.waitReady(healthy(cmPort!), { timeoutMs, what: 'to answer /healthz' }),
      scheduler.waitReady(healthy(schedPort!), { timeoutMs, what: 'to answer /healthz' }),
    ]);

    const kubeConfig = (): KubeConfig => {
      const kc = new KubeConfig();
      kc.loadFromFile(adminKubeconfig);
      return kc;
    };
    // The controller manager is working once it has given the default namespace its ServiceAccount,
    // which every Pod admission needs.
    const core = kubeConfig().makeApiClient(CoreV1Api);
    await controllerManager.waitReady(
      async () => {
        try {
          await core.readNamespacedServiceAccount({ name: 'default', namespace: 'default' });
          return true;
        } catch {
          return false;
        }
      },
      { timeoutMs, what: 'to create the default ServiceAccount' },
    );

    return {
      server,
      dir,
      adminKubeconfig,
      kubeConfig,
      caFile: pki.caCert,
      etcd,
      processes,
      mintServiceAccountKubeconfig: (namespace, serviceAccount, expirationSeconds) =>
        mintServiceAccountKubeconfig(adminKubeconfig, namespace, serviceAccount, expirationSeconds),
      stop: async () => {
        await stopAll();
        if (ownDir) await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await stopAll();
    if (ownDir) await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Writes, beside `adminKubeconfig`, a kubeconfig that authenticates as a ServiceAccount
 * with a token from the TokenRequest API, so RBAC is exercised for real.
 */
export async function mintServiceAccountKubeconfig(
  adminKubeconfig: string,
  namespace: string,
  serviceAccount: string,
  expirationSeconds = 3600,
): Promise<string> {
  const kc = new KubeConfig();
  kc.loadFromFile(adminKubeconfig);
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error(`${adminKubeconfig} has no current cluster`);
  const token = await kc.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
    name: serviceAccount,
    namespace,
    body: { spec: { audiences: [], expirationSeconds } },
  });
  const value = token.status?.token;
  if (!value) throw new Error(`The API server returned no token for ServiceAccount ${namespace}/${serviceAccount}`);
  const user = `system:serviceaccount:${namespace}:${serviceAccount}`;
  const path = join(dirname(adminKubeconfig), `sa-${namespace}-${serviceAccount}.kubeconfig`);
  const caData = cluster.caData ?? (cluster.caFile ? await LocalPki.base64(cluster.caFile) : '');
  await writeFile(path, kubeconfigYaml(cluster.server, caData, user, { token: value }), { mode: 0o600 });
  return path;
}
