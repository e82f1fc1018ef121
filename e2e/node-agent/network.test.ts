// The network plan of the local nodes (ADR 27): addresses and names per block, pure.
import { describe, expect, it } from 'vitest';
import { corefile } from '../harness/coredns.ts';
import { planNetwork } from './network.ts';

describe('planNetwork', () => {
  it.each([
    { block: 1, host: '198.19.8.1', cidr: '198.19.8.0/21', node1: '198.19.9.1', pod1: '198.19.9.2', lastPod3: '198.19.11.254' },
    { block: 2, host: '198.19.16.1', cidr: '198.19.16.0/21', node1: '198.19.17.1', pod1: '198.19.17.2', lastPod3: '198.19.19.254' },
    { block: 31, host: '198.19.248.1', cidr: '198.19.248.0/21', node1: '198.19.249.1', pod1: '198.19.249.2', lastPod3: '198.19.251.254' },
  ])('block $block: host $host, nodes and pods inside $cidr', ({ block, host, cidr, node1, pod1, lastPod3 }) => {
    const plan = planNetwork(block, ['a', 'b', 'c']);
    expect(plan).toMatchObject({ block, bridge: `mwbr${block}`, hostIP: host, cidr, prefixLength: 21 });
    expect(plan.nodes.map((n) => [n.name, n.netns, n.hostVeth])).toEqual([
      ['a', `mw${block}-n1`, `mw${block}n1`],
      ['b', `mw${block}-n2`, `mw${block}n2`],
      ['c', `mw${block}-n3`, `mw${block}n3`],
    ]);
    expect(plan.nodes[0]!.ip).toBe(node1);
    expect(plan.nodes[0]!.podIPs[0]).toBe(pod1);
    expect(plan.nodes[2]!.podIPs.at(-1)).toBe(lastPod3);
    expect(plan.nodes[0]!.podIPs).toHaveLength(253);
  });

  it('never overlaps the Service CIDR 198.18.128.0/20 nor another block', () => {
    const all = [1, 2, 3].flatMap((b) => planNetwork(b, ['a', 'b', 'c', 'd', 'e', 'f', 'g']).nodes.flatMap((n) => [n.ip, ...n.podIPs]));
    expect(new Set(all).size).toBe(all.length);
    expect(all.every((ip) => ip.startsWith('198.19.'))).toBe(true);
  });

  it.each([
    { block: -1, nodes: 3 },
    { block: 32, nodes: 3 },
    { block: 1, nodes: 8 },
  ])('refuses block $block with $nodes nodes', ({ block, nodes }) => {
    expect(() =>
      planNetwork(
        block,
        Array.from({ length: nodes }, (_, i) => `n${i}`),
      ),
    ).toThrow(RangeError);
  });

  it('keeps interface names within the kernel limit of 15 characters', () => {
    const plan = planNetwork(31, ['a', 'b', 'c', 'd', 'e', 'f', 'g']);
    for (const name of [plan.bridge, ...plan.nodes.flatMap((n) => [n.netns, n.hostVeth])]) expect(name.length).toBeLessThanOrEqual(15);
  });
});

describe('corefile', () => {
  it('serves cluster.local from the API server on the given address only', () => {
    const text = corefile('198.19.8.1', '/stack/admin.kubeconfig');
    expect(text).toContain('bind 198.19.8.1');
    expect(text).toContain('ready 198.19.8.1:8181');
    expect(text).toMatch(/kubernetes cluster\.local in-addr\.arpa ip6\.arpa \{\n {4}kubeconfig \/stack\/admin\.kubeconfig/);
  });
});
