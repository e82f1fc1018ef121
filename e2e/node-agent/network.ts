// Real network identities for the local nodes (ADR 27): each node is a network namespace
// joined by a veth pair to one bridge on the host, with addresses from 198.19.0.0/16 (RFC
// 2544, beside the Service CIDR 198.18.128.0/20). A node's pods share its namespace, each with
// its own address, and kube-proxy runs there. Everything is made and removed with `ip`; the
// host gets a bridge and an address, and no firewall rule.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { forgetCleanup, registerCleanup } from '../harness/process.ts';

const run = promisify(execFile);

/** The blocks a machine can hold at once: block b owns 198.19.(8b).0/21. */
export const networkBlocks = 32;
/** At most this many nodes per block (one /24 each). */
export const maxNodesPerBlock = 7;

/** Names and addresses of one node's namespace. */
export interface NodeNetworkPlan {
  name: string;
  netns: string;
  /** The host end of the veth pair (on the bridge); the node end is `eth0` in the namespace. */
  hostVeth: string;
  /** The node's InternalIP. */
  ip: string;
  /** Addresses handed to pods, in order. */
  podIPs: string[];
}

/** The addresses and names of one agent's network: a bridge with the host's address, and the nodes. */
export interface NetworkPlan {
  block: number;
  bridge: string;
  /** The host's address on the bridge: where the stack's servers listen for the pods. */
  hostIP: string;
  /** Every node and pod address of the block (kube-proxy's --cluster-cidr). */
  cidr: string;
  prefixLength: number;
  nodes: NodeNetworkPlan[];
}

/** Plans the network of block `block` (0..31) for nodes named `${prefix}-1..N`. Pure. */
export function planNetwork(block: number, nodeNames: string[]): NetworkPlan {
  if (!Number.isInteger(block) || block < 0 || block >= networkBlocks)
    throw new RangeError(`network block ${block} is not in 0..${networkBlocks - 1}`);
  if (nodeNames.length > maxNodesPerBlock)
    throw new RangeError(`a network block holds at most ${maxNodesPerBlock} nodes, not ${nodeNames.length}`);
  const base = block * 8;
  return {
    block,
    bridge: `mwbr${block}`,
    hostIP: `198.19.${base}.1`,
    cidr: `198.19.${base}.0/21`,
    prefixLength: 21,
    nodes: nodeNames.map((name, k) => {
      const third = base + k + 1;
      return {
        name,
        netns: `mw${block}-n${k + 1}`,
        hostVeth: `mw${block}n${k + 1}`,
        ip: `198.19.${third}.1`,
        podIPs: Array.from({ length: 253 }, (_, i) => `198.19.${third}.${i + 2}`),
      };
    }),
  };
}

/** Whether this process can build namespaces: root, with `ip` and `nft` installed. */
export function networkSupport(): { ok: true } | { ok: false; reason: string } {
  return rootWithTools(['ip', 'nft'], 'network namespaces, veth pairs and nftables need root');
}

/** Whether this process runs as root with every one of `tools` installed; `why` says why root is needed. */
export function rootWithTools(tools: string[], why: string): { ok: true } | { ok: false; reason: string } {
  if (process.getuid?.() !== 0) return { ok: false, reason: why };
  for (const tool of tools) {
    if (!['/usr/sbin', '/sbin', '/usr/bin', '/bin'].some((d) => existsSync(join(d, tool))))
      return { ok: false, reason: `the ${tool} command is missing (make deps installs it)` };
  }
  return { ok: true };
}

/** The first block whose bridge does not exist on this machine (another stack or test holds the others). */
export function freeNetworkBlock(exclude: number[] = []): number {
  for (let b = 1; b < networkBlocks; b++) {
    if (!exclude.includes(b) && !existsSync(`/sys/class/net/mwbr${b}`)) return b;
  }
  throw new Error(`all ${networkBlocks - 1} local network blocks are in use (ip link show type bridge)`);
}

async function ip(...args: string[]): Promise<void> {
  try {
    await run('ip', args);
  } catch (err) {
    throw new Error(`ip ${args.join(' ')} failed: ${String((err as { stderr?: string }).stderr ?? err).trim()}`, { cause: err });
  }
}

/** Where `ip netns exec` finds a namespace's own resolv.conf. */
export function netnsEtcDir(netns: string): string {
  return join('/etc/netns', netns);
}

/** The error of a block whose bridge exists: another stack or test holds it, or one left it behind. */
export class NetworkBlockInUseError extends Error {
  readonly block: number;
  constructor(block: number) {
    super(
      `network block ${block} is in use: the bridge mwbr${block} exists (another local stack or test runs on it, or one was killed without its reaper: make down removes a stack's leftovers)`,
    );
    this.name = 'NetworkBlockInUseError';
    this.block = block;
  }
}

/** Creates the bridge and gives the host its address on it; never takes over an existing one. */
export async function createBridge(plan: NetworkPlan): Promise<void> {
  if (existsSync(join('/sys/class/net', plan.bridge))) throw new NetworkBlockInUseError(plan.block);
  registerCleanup('link', plan.bridge);
  await ip('link', 'add', plan.bridge, 'type', 'bridge');
  await ip('addr', 'add', `${plan.hostIP}/${plan.prefixLength}`, 'dev', plan.bridge);
  await ip('link', 'set', plan.bridge, 'up');
}

/** Creates one node's namespace (forwarding on), its veth pair on the bridge, its address, route and resolv.conf. */
export async function createNodeNetwork(
  plan: NetworkPlan,
  node: NodeNetworkPlan,
  dns: { nameserver: string; search: string[] },
): Promise<void> {
  registerCleanup('netns', node.netns);
  await ip('netns', 'add', node.netns);
  await ip('link', 'add', node.hostVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', node.netns);
  await ip('link', 'set', node.hostVeth, 'master', plan.bridge);
  await ip('link', 'set', node.hostVeth, 'up');
  await ip('-n', node.netns, 'link', 'set', 'lo', 'up');
  await ip('-n', node.netns, 'addr', 'add', `${node.ip}/${plan.prefixLength}`, 'dev', 'eth0');
  await ip('-n', node.netns, 'link', 'set', 'eth0', 'up');
  await ip('-n', node.netns, 'route', 'add', 'default', 'via', plan.hostIP);
  // A node forwards what kube-proxy sends on (a NodePort answered by a pod on another node).
  await ip('netns', 'exec', node.netns, 'sh', '-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward');
  const etc = netnsEtcDir(node.netns);
  await mkdir(etc, { recursive: true });
  await writeFile(join(etc, 'resolv.conf'), `nameserver ${dns.nameserver}\nsearch ${dns.search.join(' ')}\noptions ndots:5\n`);
  await writeFile(join(etc, 'hosts'), `127.0.0.1 localhost\n${node.ip} ${node.name}\n`);
}

/** Gives a pod its address in its node's namespace. */
export async function addPodAddress(node: NodeNetworkPlan, podIP: string): Promise<void> {
  await ip('-n', node.netns, 'addr', 'replace', `${podIP}/32`, 'dev', 'eth0');
}

/** Cuts a node off the bridge (a powered-off node answers nobody) or joins it again. */
export async function setNodeLink(node: NodeNetworkPlan, up: boolean): Promise<void> {
  await ip('link', 'set', node.hostVeth, up ? 'up' : 'down');
}

/** Takes a pod's address away (its sockets are gone with its process). */
export async function removePodAddress(node: NodeNetworkPlan, podIP: string): Promise<void> {
  await ip('-n', node.netns, 'addr', 'del', `${podIP}/32`, 'dev', 'eth0').catch(() => undefined);
}

/** Deletes nodes' namespaces (with their veths and kube-proxy's rules) and their /etc/netns files. */
export async function removeNodeNetworks(nodes: Pick<NodeNetworkPlan, 'netns' | 'hostVeth'>[]): Promise<void> {
  for (const node of nodes) {
    if (existsSync(join('/run/netns', node.netns))) await ip('netns', 'del', node.netns).catch(() => undefined);
    if (existsSync(join('/sys/class/net', node.hostVeth))) await ip('link', 'del', node.hostVeth).catch(() => undefined);
    await rm(netnsEtcDir(node.netns), { recursive: true, force: true });
    forgetCleanup('netns', node.netns);
  }
}

/** Deletes every node namespace of the plan and the bridge. */
export async function removeNetwork(
  plan: Pick<NetworkPlan, 'bridge'> & { nodes: Pick<NodeNetworkPlan, 'netns' | 'hostVeth'>[] },
): Promise<void> {
  await removeNodeNetworks(plan.nodes);
  if (existsSync(join('/sys/class/net', plan.bridge))) await ip('link', 'del', plan.bridge);
  forgetCleanup('link', plan.bridge);
}

/** Names of what is left of block `block` on this machine (namespaces, links), for tests and make down. */
export function leftovers(block: number): string[] {
  const plan = fullPlan(block);
  return [
    ...plan.nodes.flatMap((n) => [join('/run/netns', n.netns), join('/sys/class/net', n.hostVeth), netnsEtcDir(n.netns)]),
    join('/sys/class/net', plan.bridge),
  ].filter((p) => existsSync(p));
}

/** The plan of every node a block can hold: what make down and tests sweep. */
export function fullPlan(block: number): NetworkPlan {
  return planNetwork(
    block,
    Array.from({ length: maxNodesPerBlock }, (_, i) => `n${i + 1}`),
  );
}

/** Where the `ip` command is, for running a process inside a namespace with `ip netns exec`. */
export function ipCommand(): string {
  return ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((p) => existsSync(p)) ?? 'ip';
}
