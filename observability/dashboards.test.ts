// The dashboards: generated files match the code (no drift), every panel has a unit, reads the
// `datasource` variable, uses $__rate_interval, and names only series that a component exports.
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dashboardSpecs } from './dashboards.ts';
import { generatedFiles, repoRoot } from './generate.ts';
import { exportedSeries, seriesIn } from './metrics.ts';

const panels = dashboardSpecs.flatMap((d) => d.rows.flatMap((r) => r.panels.map((p) => ({ dashboard: d.title, ...p }))));
const exported = exportedSeries(repoRoot);

describe('dashboards', () => {
  it.each([...generatedFiles().keys()])('%s is up to date (make dashboards)', (path) => {
    const file = join(repoRoot, path);
    expect(existsSync(file), `${path} is missing: run make dashboards`).toBe(true);
    expect(readFileSync(file, 'utf8'), `${path} differs from what make dashboards writes`).toBe(generatedFiles().get(path));
  });

  it('are four, with distinct uids and titles', () => {
    expect(dashboardSpecs.map((d) => d.title)).toEqual([
      'Meshwork / Overview',
      'Meshwork / Partition',
      'Meshwork / Operator and watchdog',
      'Meshwork / Stores',
    ]);
    expect(new Set(panels.map((p) => `${p.dashboard}/${p.title}`)).size).toBe(panels.length);
  });

  it('every generated panel has a unit and reads the datasource variable', () => {
    for (const spec of dashboardSpecs) {
      const json = JSON.parse(generatedFiles().get(`charts/meshwork/dashboards/${spec.file}`)!) as {
        templating: { list: { name: string; type: string }[] };
        panels: {
          type: string;
          title: string;
          datasource?: { uid: string };
          fieldConfig?: { defaults: { unit?: string } };
          targets?: { datasource?: { uid: string } }[];
        }[];
      };
      expect(json.templating.list.filter((v) => v.type === 'datasource').map((v) => v.name)).toEqual(['datasource']);
      for (const panel of json.panels.filter((p) => p.type !== 'row')) {
        expect(panel.fieldConfig?.defaults.unit, panel.title).toBeTruthy();
        expect(panel.datasource?.uid, panel.title).toBe('${datasource}');
        for (const t of panel.targets ?? []) expect(t.datasource?.uid, panel.title).toBe('${datasource}');
      }
    }
  });

  it.each(panels.map((p) => [`${p.dashboard} / ${p.title}`, p] as const))('%s', (_name, panel) => {
    expect(panel.queries.length).toBeGreaterThan(0);
    for (const q of panel.queries) {
      // Ranges come from Grafana: $__rate_interval (or, for rare events, the dashboard's $__range), never a fixed window.
      for (const range of q.expr.matchAll(/\[([^\]]*)\]/g)) expect(['$__rate_interval', '$__range'], q.expr).toContain(range[1]);
      const missing = seriesIn(q.expr).filter((s) => !exported.has(s));
      expect(missing, `series no component exports: ${missing.join(', ')}`).toEqual([]);
    }
  });
});

describe('seriesIn', () => {
  it.each([
    ['sum by (role) (rate(a_total{x="y"}[$__rate_interval]))', ['a_total']],
    ['histogram_quantile(0.99, sum by (le) (rate(b_bucket[5m]))) > 2.5', ['b_bucket']],
    ['(sum by (r) (rate(c{s=~"5.."}[1m])) or sum by (r) (rate(c[1m])) * 0) / sum by (r) (rate(c[1m]))', ['c']],
    ['absent(up{role="operator"} == 1)', ['up']],
    ['max(d{level="4"}) > 0 and on() e', ['d', 'e']],
  ])('%s reads %j', (expr, names) => {
    expect(seriesIn(expr).sort()).toEqual(names);
  });
});
