// The Prometheus scrape configuration that discovers every Meshwork pod through the Kubernetes
// API and gives its series the labels the dashboards and alerts read (ADR 39): role,
// partition, mesh, namespace, pod. The chart's PodMonitor and ServiceMonitor carry the same
// relabelings (templates/_helpers.tpl); the local stack and the dashboards' e2e test use this.

/** Pod labels copied onto every series, as `[meta label, target label]`. */
export const podLabelTargets: readonly [string, string][] = [
  ['__meta_kubernetes_pod_label_app_kubernetes_io_component', 'role'],
  ['__meta_kubernetes_pod_label_meshwork_io_partition', 'partition'],
  ['__meta_kubernetes_pod_label_meshwork_io_mesh', 'mesh'],
  ['__meta_kubernetes_namespace', 'namespace'],
  ['__meta_kubernetes_pod_name', 'pod'],
];

/** A target scraped without discovery, with the labels discovery would have given it. */
export interface StaticTarget {
  /** host:port */
  address: string;
  labels: Record<string, string>;
}

/** Options of the scrape configuration: pods discovered through `kubeconfig`, or fixed `targets`. */
export interface ScrapeOptions {
  /** A kubeconfig that may list and watch pods in every namespace. */
  kubeconfig?: string;
  /** Processes to scrape instead (tests that run the roles as plain processes). */
  targets?: StaticTarget[];
  /** How often each pod is scraped, e.g. "5s". */
  scrapeInterval: string;
  /** Rule files Prometheus evaluates (absolute paths). */
  ruleFiles?: string[];
}

/** A prometheus.yml (as an object) that scrapes the `http` port of every running Meshwork pod. */
export function prometheusConfig(options: ScrapeOptions): Record<string, unknown> {
  return {
    global: { scrape_interval: options.scrapeInterval, evaluation_interval: options.scrapeInterval },
    ...(options.ruleFiles?.length ? { rule_files: options.ruleFiles } : {}),
    scrape_configs: [
      ...(options.targets
        ? [
            {
              job_name: 'meshwork-processes',
              metrics_path: '/metrics',
              static_configs: options.targets.map((t) => ({ targets: [t.address], labels: t.labels })),
            },
          ]
        : []),
      ...(options.kubeconfig === undefined ? [] : [podScrapeConfig(options.kubeconfig)]),
    ],
  };
}

function podScrapeConfig(kubeconfig: string): Record<string, unknown> {
  return {
    job_name: 'meshwork-pods',
    metrics_path: '/metrics',
    kubernetes_sd_configs: [{ role: 'pod', kubeconfig_file: kubeconfig }],
    relabel_configs: [
      { source_labels: ['__meta_kubernetes_pod_label_app_kubernetes_io_name'], regex: 'meshwork', action: 'keep' },
      { source_labels: ['__meta_kubernetes_pod_container_port_name'], regex: 'http', action: 'keep' },
      { source_labels: ['__meta_kubernetes_pod_phase'], regex: 'Succeeded|Failed', action: 'drop' },
      ...podLabelTargets.map(([source, target]) => ({ source_labels: [source], target_label: target })),
    ],
  };
}
