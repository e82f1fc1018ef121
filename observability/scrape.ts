// The Prometheus scrape configuration of the local stack and the dashboards' e2e test, and the
// pod discovery that gives every series the labels the dashboards and alerts read (ADR 39):
// role (from app.kubernetes.io/component), partition, mesh, namespace, pod. The chart's
// PodMonitor and ServiceMonitor add the same labels with relabelings (templates/_helpers.tpl).

/** A target scraped without discovery, with the labels discovery would have given it. */
export interface StaticTarget {
  /** host:port */
  address: string;
  labels: Record<string, string>;
}

/** Options of the scrape configuration: pods listed by an HTTP discovery endpoint, or fixed `targets`. */
export interface ScrapeOptions {
  /**
   * An http_sd endpoint that answers the Meshwork pods as target groups (podTargets). Debian's
   * Prometheus is built without Kubernetes discovery, so the local stack lists the pods itself.
   */
  discoveryUrl?: string;
  /** Processes to scrape instead (tests that run the roles as plain processes). */
  targets?: StaticTarget[];
  /** How often each target is scraped, e.g. "5s". */
  scrapeInterval: string;
  /** Rule files Prometheus evaluates (absolute paths). */
  ruleFiles?: string[];
}

/** A prometheus.yml (as an object) that scrapes the given targets or the discovered pods. */
export function prometheusConfig(options: ScrapeOptions): Record<string, unknown> {
  const jobs: Record<string, unknown>[] = [];
  if (options.targets)
    jobs.push({
      job_name: 'meshwork-processes',
      metrics_path: '/metrics',
      static_configs: options.targets.map((t) => ({ targets: [t.address], labels: t.labels })),
    });
  if (options.discoveryUrl !== undefined)
    jobs.push({
      job_name: 'meshwork-pods',
      metrics_path: '/metrics',
      http_sd_configs: [{ url: options.discoveryUrl, refresh_interval: options.scrapeInterval }],
    });
  return {
    global: { scrape_interval: options.scrapeInterval, evaluation_interval: options.scrapeInterval },
    ...(options.ruleFiles?.length ? { rule_files: options.ruleFiles } : {}),
    scrape_configs: jobs,
  };
}

/** The parts of a pod that discovery reads. */
export interface DiscoveredPod {
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
  spec?: { containers: { ports?: { name?: string; containerPort: number }[] }[] };
  status?: { phase?: string; podIP?: string };
}

const podLabels: readonly [string, string][] = [
  ['app.kubernetes.io/component', 'role'],
  ['meshwork.io/partition', 'partition'],
  ['meshwork.io/mesh', 'mesh'],
];

/**
 * The http_sd target groups of the Meshwork pods among `pods`: the `http` port of every pod
 * labelled `app.kubernetes.io/name: meshwork` that has an address and has not ended, with the
 * labels role, partition, mesh, namespace and pod (as the chart's monitors add them).
 */
export function podTargets(pods: readonly DiscoveredPod[]): { targets: string[]; labels: Record<string, string> }[] {
  return pods.flatMap((pod) => {
    const labels = pod.metadata?.labels ?? {};
    const ip = pod.status?.podIP;
    if (labels['app.kubernetes.io/name'] !== 'meshwork' || !ip || pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed')
      return [];
    const port = pod.spec?.containers.flatMap((c) => c.ports ?? []).find((p) => p.name === 'http');
    if (!port) return [];
    const target: Record<string, string> = { namespace: pod.metadata?.namespace ?? '', pod: pod.metadata?.name ?? '' };
    for (const [label, name] of podLabels) if (labels[label]) target[name] = labels[label];
    return [{ targets: [`${ip}:${port.containerPort}`], labels: target }];
  });
}
