// CoreDNS as the local cluster's DNS (ADR 27): its kubernetes plugin watches the API server
// and answers cluster.local names (Services, headless Services' pods) on the stack's host
// address, behind the `kube-dns` Service whose ClusterIP every node namespace's resolv.conf
// names, as on a real cluster.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ManagedProcess } from './process.ts';

/** The ClusterIP of the `kube-system/kube-dns` Service (the tenth address of the Service CIDR, as kubeadm picks). */
export const clusterDnsIP = '198.18.128.10';

/**
 * The `kube-dns` Service and its EndpointSlice: CoreDNS runs on the host, not as a pod, so the
 * Service has no selector and its one endpoint is the host address. Pure.
 */
export function kubeDnsManifest(hostIP: string): string {
  return `
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: { k8s-app: kube-dns, kubernetes.io/name: CoreDNS }
spec:
  clusterIP: ${clusterDnsIP}
  ports:
    - { name: dns, port: 53, protocol: UDP, targetPort: 53 }
    - { name: dns-tcp, port: 53, protocol: TCP, targetPort: 53 }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kube-dns-host
  namespace: kube-system
  labels: { kubernetes.io/service-name: kube-dns, endpointslice.kubernetes.io/managed-by: meshwork-local-stack }
addressType: IPv4
endpoints:
  - addresses: ['${hostIP}']
    conditions: { ready: true }
ports:
  - { name: dns, port: 53, protocol: UDP }
  - { name: dns-tcp, port: 53, protocol: TCP }
`;
}

export interface CoreDnsOptions {
  /** Address it serves DNS on (port 53) and readiness on (port 8181). */
  address: string;
  /** Kubeconfig it watches Services and EndpointSlices with. */
  kubeconfig: string;
  /** Directory for the Corefile and the log. */
  dir: string;
  timeoutMs?: number;
}

export interface CoreDns {
  /** The nameserver address. */
  address: string;
  process: ManagedProcess;
  stop(): Promise<void>;
}

/** The Corefile of the local cluster's DNS. Pure. */
export function corefile(address: string, kubeconfig: string): string {
  return [
    '.:53 {',
    `  bind ${address}`,
    '  errors',
    `  ready ${address}:8181`,
    '  kubernetes cluster.local in-addr.arpa ip6.arpa {',
    `    kubeconfig ${kubeconfig}`,
    '    pods insecure',
    '    fallthrough in-addr.arpa ip6.arpa',
    // Short, so that a pod that turns NotReady leaves the answers soon.
    '    ttl 5',
    '  }',
    '  loadbalance',
    '}',
    '',
  ].join('\n');
}

/** Starts CoreDNS and waits until its kubernetes plugin has synced with the API server. */
export async function startCoreDns(options: CoreDnsOptions): Promise<CoreDns> {
  await mkdir(options.dir, { recursive: true });
  const file = join(options.dir, 'Corefile');
  await writeFile(file, corefile(options.address, options.kubeconfig));
  const proc = ManagedProcess.start({
    component: 'coredns',
    binary: 'coredns',
    args: ['-conf', file],
    cwd: options.dir,
    logFile: join(options.dir, 'coredns.log'),
  });
  try {
    await proc.waitReady(
      async () =>
        (await fetch(`http://${options.address}:8181/ready`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined))?.ok ?? false,
      { timeoutMs: options.timeoutMs ?? 60_000, what: 'to answer /ready' },
    );
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return { address: options.address, process: proc, stop: async () => void (await proc.stop()) };
}
