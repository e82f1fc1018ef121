// The scrape configuration: Kubernetes pod discovery with the chart's relabelings, checked by
// the promtool that `make tools` builds with Prometheus.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { requireBinary } from '../e2e/harness/binaries.ts';
import { repoRoot } from './generate.ts';
import { podRelabelings, prometheusConfig } from './scrape.ts';

const dir = mkdtempSync(join(tmpdir(), 'meshwork-scrape-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const kubernetes = { apiServer: 'https://127.0.0.1:6443', caFile: join(dir, 'ca.crt'), tokenFile: join(dir, 'token') };

describe('prometheusConfig', () => {
  it('scrapes fixed targets and the pods discovered through the API server, at the interval, with the rule files', () => {
    const config = prometheusConfig({
      scrapeInterval: '5s',
      kubernetes,
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
          kubernetes_sd_configs: [
            {
              role: 'pod',
              api_server: 'https://127.0.0.1:6443',
              tls_config: { ca_file: kubernetes.caFile },
              authorization: { type: 'Bearer', credentials_file: kubernetes.tokenFile },
              selectors: [{ role: 'pod', label: 'app.kubernetes.io/name=meshwork' }],
            },
          ],
          relabel_configs: podRelabelings,
        },
      ],
    });
  });

  it('gives pods the labels the chart gives them', () => {
    // meshwork.metricsRelabelings: `- sourceLabels: [X]` then `targetLabel: Y`.
    const helpers = readFileSync(join(repoRoot, 'charts/meshwork/templates/_helpers.tpl'), 'utf8');
    const block = /define "meshwork\.metricsRelabelings"([\s\S]*?)\{\{- end/.exec(helpers)![1]!;
    const chart = [...block.matchAll(/sourceLabels: \[(\w+)\]\s+targetLabel: (\w+)/g)].map((m) => [m[1], m[2]]);
    expect(chart.length).toBe(5);
    const ours = podRelabelings.filter((r) => r.target_label !== undefined).map((r) => [(r.source_labels as string[])[0], r.target_label]);
    expect(ours).toEqual(chart);
  });

  it('is a configuration Prometheus accepts', () => {
    writeFileSync(kubernetes.caFile, '');
    writeFileSync(kubernetes.tokenFile, 'token\n');
    const file = join(dir, 'prometheus.yml');
    writeFileSync(file, stringify(prometheusConfig({ scrapeInterval: '5s', kubernetes })));
    const run = spawnSync(requireBinary('promtool'), ['check', 'config', '--syntax-only', file], { encoding: 'utf8' });
    expect(run.status, `${run.stdout}${run.stderr}`).toBe(0);
  });
});
