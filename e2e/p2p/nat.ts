// A small internet inside the test, for the peer-to-peer and relay tests (#17): a home network
// behind a NAT router, and a "wide area" segment where the service and outside devices live.
//
//              host (root namespace)                      outside device(s)
//     service listens on 203.0.113.(16k+1)  ── bridge mwnat<k> ──  203.0.113.(16k+3…)
//                                                  │
//                                     router namespace: wan0 203.0.113.(16k+2)
//                                     iptables MASQUERADE for the LAN; new
//                                     connections from the WAN into the LAN dropped
//                                                  │ lanbr 198.51.100.1/24
//                                ┌─────────────────┴────────────────┐
//                       LAN device 198.51.100.11            LAN device 198.51.100.12 …
//
// Addresses come from the documentation ranges (RFC 5737): 203.0.113.0/24 is split into sixteen
// /28 blocks so that tests running at once each get their own wide-area segment (the host holds
// an address on it); 198.51.100.0/24 exists only inside a block's router and LAN namespaces, so
// every block reuses it. Outside devices route everything through the router, so a connection
// to a LAN address is silently dropped, as on the internet, rather than refused at once.
//
// Everything is made with `ip` and `iptables` and registered with the harness's reaper, so a
// killed test leaves nothing behind.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { forgetCleanup, registerCleanup } from '../harness/process.ts';
import { ipCommand, rootWithTools } from '../node-agent/network.ts';

const run = promisify(execFile);

/** How many NAT testbeds the machine can hold at once (203.0.113.0/24 in /28 blocks). */
export const natBlocks = 16;
/** The LAN behind every router. */
export const lanPrefix = '198.51.100';

/** A host of the testbed: a network namespace with one address. */
export interface NatHost {
  name: string;
  netns: string;
  ip: string;
}

/** The addresses and names of one testbed. Pure data: see planNat. */
export interface NatPlan {
  block: number;
  /** The wide-area bridge in the root namespace. */
  bridge: string;
  /** The host's address on the wide-area segment: where the service listens. */
  serviceIP: string;
  router: { netns: string; wanIP: string; lanIP: string; hostVeth: string };
  /** Devices behind the NAT. */
  lan: NatHost[];
  /** Devices on the wide-area segment, reachable by address. */
  outside: NatHost[];
  /** Host-side names of every veth made in the root namespace (moved or bridged). */
  links: string[];
}

/** Plans testbed `block` with LAN devices and outside devices named as given. Pure. */
export function planNat(block: number, lanNames: string[], outsideNames: string[]): NatPlan {
  if (!Number.isInteger(block) || block < 0 || block >= natBlocks) throw new RangeError(`NAT block ${block} is not in 0..${natBlocks - 1}`);
  if (lanNames.length > 8) throw new RangeError(`a NAT testbed holds at most 8 LAN devices, not ${lanNames.length}`);
  if (outsideNames.length > 11) throw new RangeError(`a NAT testbed holds at most 11 outside devices, not ${outsideNames.length}`);
  const base = block * 16;
  const wan = (n: number) => `203.0.113.${base + n}`;
  const prefix = `mwnat${block}`;
  return {
    block,
    bridge: prefix,
    serviceIP: wan(1),
    router: { netns: `${prefix}-router`, wanIP: wan(2), lanIP: `${lanPrefix}.1`, hostVeth: `${prefix}r` },
    lan: lanNames.map((name, i) => ({ name, netns: `${prefix}-l${i + 1}`, ip: `${lanPrefix}.${11 + i}` })),
    outside: outsideNames.map((name, i) => ({ name, netns: `${prefix}-o${i + 1}`, ip: wan(3 + i) })),
    links: [`${prefix}r`, ...lanNames.map((_, i) => `${prefix}l${i + 1}`), ...outsideNames.map((_, i) => `${prefix}o${i + 1}`)],
  };
}

/** Whether this process can build a testbed: root, with `ip` and `iptables`. */
export function natSupport(): { ok: true } | { ok: false; reason: string } {
  return rootWithTools(['ip', 'iptables'], 'network namespaces, veth pairs and iptables need root');
}

async function ip(...args: string[]): Promise<void> {
  await run(ipCommand(), args);
}

/** Runs a command inside a namespace and returns its stdout. */
export async function execIn(netns: string, command: string, args: string[], timeoutMs = 30_000): Promise<string> {
  const { stdout } = await run(ipCommand(), ['netns', 'exec', netns, command, ...args], { timeout: timeoutMs });
  return stdout;
}

/** The command line that runs `binary args` inside `netns` (for ManagedProcess or spawn). */
export function inNetns(netns: string, binary: string, args: string[]): { binary: string; args: string[] } {
  return { binary: ipCommand(), args: ['netns', 'exec', netns, binary, ...args] };
}

/** The error of a block another test holds (or one left behind without its reaper). */
export class NatBlockInUseError extends Error {
  constructor(block: number) {
    super(`NAT block ${block} is in use: the bridge mwnat${block} exists`);
    this.name = 'NatBlockInUseError';
  }
}

/** A testbed that exists on this machine; remove() takes it all away. */
export interface NatTestbed extends NatPlan {
  remove(): Promise<void>;
}

async function newNamespace(netns: string): Promise<void> {
  registerCleanup('netns', netns);
  await ip('netns', 'add', netns);
  await ip('-n', netns, 'link', 'set', 'lo', 'up');
}

/** Builds a testbed in the first free block. */
export async function createNat(lanNames: string[], outsideNames: string[]): Promise<NatTestbed> {
  for (let block = 0; block < natBlocks; block++) {
    if (existsSync(join('/sys/class/net', `mwnat${block}`))) continue;
    try {
      return await buildNat(planNat(block, lanNames, outsideNames));
    } catch (err) {
      // Another test took this block between the check and the bridge: try the next one.
      if (err instanceof NatBlockInUseError) continue;
      throw err;
    }
  }
  throw new Error(`every NAT block (0..${natBlocks - 1}) is in use`);
}

/**
 * Makes a host's namespace and a veth pair whose near end `link` `plug` attaches somewhere; the
 * far end is the host's eth0 with `address` and a default route through `gateway`.
 */
async function attachHost(
  host: NatHost,
  link: string,
  net: { address: string; gateway: string },
  plug: () => Promise<void>,
): Promise<void> {
  await newNamespace(host.netns);
  registerCleanup('link', link);
  await ip('link', 'add', link, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.netns);
  await plug();
  await ip('-n', host.netns, 'addr', 'add', net.address, 'dev', 'eth0');
  await ip('-n', host.netns, 'link', 'set', 'eth0', 'up');
  await ip('-n', host.netns, 'route', 'add', 'default', 'via', net.gateway);
}

/** Builds the testbed of `plan`; on failure removes what it made. */
export async function buildNat(plan: NatPlan): Promise<NatTestbed> {
  const testbed: NatTestbed = { ...plan, remove: () => removeNat(plan) };
  registerCleanup('link', plan.bridge);
  try {
    await ip('link', 'add', plan.bridge, 'type', 'bridge');
  } catch (err) {
    forgetCleanup('link', plan.bridge);
    if (existsSync(join('/sys/class/net', plan.bridge))) throw new NatBlockInUseError(plan.block);
    throw err;
  }
  try {
    await ip('addr', 'add', `${plan.serviceIP}/28`, 'dev', plan.bridge);
    await ip('link', 'set', plan.bridge, 'up');

    // The router: its WAN leg on the bridge, a LAN bridge inside, forwarding and NAT.
    const { router } = plan;
    await newNamespace(router.netns);
    registerCleanup('link', router.hostVeth);
    await ip('link', 'add', router.hostVeth, 'type', 'veth', 'peer', 'name', 'wan0', 'netns', router.netns);
    await ip('link', 'set', router.hostVeth, 'master', plan.bridge);
    await ip('link', 'set', router.hostVeth, 'up');
    await ip('-n', router.netns, 'addr', 'add', `${router.wanIP}/28`, 'dev', 'wan0');
    await ip('-n', router.netns, 'link', 'set', 'wan0', 'up');
    await ip('-n', router.netns, 'link', 'add', 'lanbr', 'type', 'bridge');
    await ip('-n', router.netns, 'addr', 'add', `${router.lanIP}/24`, 'dev', 'lanbr');
    await ip('-n', router.netns, 'link', 'set', 'lanbr', 'up');
    await execIn(router.netns, 'sh', ['-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward']);
    const iptables = (...args: string[]) => execIn(router.netns, 'iptables', ['-w', ...args]);
    await iptables('-t', 'nat', '-A', 'POSTROUTING', '-s', `${lanPrefix}.0/24`, '-o', 'wan0', '-j', 'MASQUERADE');
    await iptables('-A', 'FORWARD', '-i', 'wan0', '-o', 'lanbr', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT');
    await iptables('-A', 'FORWARD', '-i', 'wan0', '-o', 'lanbr', '-j', 'DROP');

    // LAN devices: a veth whose far end joins the router's LAN bridge (inside the router's
    // namespace, which takes it along when deleted: the reaper's link entry is then moot).
    for (const [i, host] of plan.lan.entries()) {
      const link = `mwnat${plan.block}l${i + 1}`;
      await attachHost(host, link, { address: `${host.ip}/24`, gateway: router.lanIP }, async () => {
        await ip('link', 'set', link, 'netns', router.netns);
        forgetCleanup('link', link);
        await ip('-n', router.netns, 'link', 'set', link, 'master', 'lanbr');
        await ip('-n', router.netns, 'link', 'set', link, 'up');
      });
    }
    // Outside devices: on the wide-area bridge; everything not on it goes to the router.
    for (const [i, host] of plan.outside.entries()) {
      const link = `mwnat${plan.block}o${i + 1}`;
      await attachHost(host, link, { address: `${host.ip}/28`, gateway: router.wanIP }, async () => {
        await ip('link', 'set', link, 'master', plan.bridge);
        await ip('link', 'set', link, 'up');
      });
    }
  } catch (err) {
    await removeNat(plan).catch(() => undefined);
    throw err;
  }
  return testbed;
}

/** Removes a testbed's namespaces, links and bridge (idempotent). */
export async function removeNat(plan: NatPlan): Promise<void> {
  for (const host of [...plan.lan, ...plan.outside, plan.router]) {
    if (existsSync(join('/run/netns', host.netns))) await ip('netns', 'del', host.netns).catch(() => undefined);
    forgetCleanup('netns', host.netns);
  }
  for (const link of [...plan.links, plan.bridge]) {
    if (existsSync(join('/sys/class/net', link))) await ip('link', 'del', link).catch(() => undefined);
    forgetCleanup('link', link);
  }
}
