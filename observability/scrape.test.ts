// Pod discovery for the local stack's Prometheus: which pods become targets, with which labels.
import { describe, expect, it } from 'vitest';
import { podTargets, prometheusConfig, type DiscoveredPod } from './scrape.ts';

const pod = (name: string, labels: Record<string, string>, extra: { ip?: string; phase?: string; port?: string } = {}): DiscoveredPod => ({
  metadata: { name, namespace: 'ns', labels },
  spec: { containers: [{ ports: [{ name: extra.port ?? 'http', containerPort: 8080 }] }] },
  status: { phase: extra.phase ?? 'Running', ...(extra.ip === '' ? {} : { podIP: extra.ip ?? '198.19.9.2' }) },
});
const member = { 'app.kubernetes.io/name': 'meshwork', 'app.kubernetes.io/component': 'partition', 'meshwork.io/partition': 'p0' };

describe('podTargets', () => {
  it.each([
    [
      'a partition member',
      pod('p0-0', member),
      [{ targets: ['198.19.9.2:8080'], labels: { namespace: 'ns', pod: 'p0-0', role: 'partition', partition: 'p0' } }],
    ],
    [
      'a gateway pod',
      pod('m-gateway-x', { 'app.kubernetes.io/name': 'meshwork', 'app.kubernetes.io/component': 'gateway', 'meshwork.io/mesh': 'm' }),
      [{ targets: ['198.19.9.2:8080'], labels: { namespace: 'ns', pod: 'm-gateway-x', role: 'gateway', mesh: 'm' } }],
    ],
    ['a pod of another application', pod('web-0', { app: 'web' }), []],
    ['a pod without an address yet', pod('p0-1', member, { ip: '' }), []],
    ['a pod that ended', pod('p0-2', member, { phase: 'Failed' }), []],
    ['a pod without an http port', pod('p0-3', member, { port: 'metrics' }), []],
  ])('%s', (_name, input, expected) => {
    expect(podTargets([input])).toEqual(expected);
  });
});

describe('prometheusConfig', () => {
  it('scrapes fixed targets and discovered pods at the interval, with the rule files', () => {
    const config = prometheusConfig({
      scrapeInterval: '5s',
      discoveryUrl: 'http://127.0.0.1:1/targets',
      targets: [{ address: '127.0.0.1:2', labels: { role: 'operator' } }],
      ruleFiles: ['/rules.yaml'],
    });
    expect(config).toEqual({
      global: { scrape_interval: '5s', evaluation_interval: '5s' },
      rule_files: ['/rules.yaml'],
      scrape_configs: [
        {
          job_name: 'meshwork-processes',
          metrics_path: '/metrics',
          static_configs: [{ targets: ['127.0.0.1:2'], labels: { role: 'operator' } }],
        },
        {
          job_name: 'meshwork-pods',
          metrics_path: '/metrics',
          http_sd_configs: [{ url: 'http://127.0.0.1:1/targets', refresh_interval: '5s' }],
        },
      ],
    });
  });
});
