// The Prometheus scrape configuration of the local stack and the dashboards' e2e test. Pods are
// discovered through the Kubernetes API (`kubernetes_sd_configs`, role pod) and get the labels
// the dashboards and alerts read (ADR 39): role (from app.kubernetes.io/component), partition,
// mesh, namespace, pod. The chart's PodMonitor and ServiceMonitor add the same labels with the
// same relabelings (templates/_helpers.tpl, meshwork.metricsRelabelings).

/** A target scraped without discovery, with the labels discovery would have given it. */
export interface StaticTarget {
  /** host:port */
  address: string;
  labels: Record<string, string>;
}

/** How Prometheus reaches the API server to discover pods: as a ServiceAccount with a bearer token. */
export interface KubernetesDiscovery {
  /** https://HOST:PORT */
  apiServer: string;
  /** The CA that signed the API server's certificate (PEM file). */
  caFile: string;
  /** A file holding the ServiceAccount's token (re-read by Prometheus at each request). */
  tokenFile: string;
}

/** Options of the scrape configuration: pods discovered through the API server, or fixed `targets`. */
export interface ScrapeOptions {
  /** Discover the Meshwork pods of every namespace through this API server. */
  kubernetes?: KubernetesDiscovery;
  /** Processes to scrape instead (tests that run the roles as plain processes). */
  targets?: StaticTarget[];
  /** How often each target is scraped, e.g. "5s". */
  scrapeInterval: string;
  /** Rule files Prometheus evaluates (absolute paths). */
  ruleFiles?: string[];
}

/** The pod label every Meshwork pod carries; discovery asks the API server for these pods only. */
export const meshworkPodSelector = 'app.kubernetes.io/name=meshwork';

/**
 * The relabelings of a discovered pod: keep the container port named `http` of a pod that has not
 * ended, and copy the labels the dashboards read (as the chart's meshwork.metricsRelabelings).
 */
export const podRelabelings: readonly Record<string, unknown>[] = [
  { source_labels: ['__meta_kubernetes_pod_container_port_name'], regex: 'http', action: 'keep' },
  { source_labels: ['__meta_kubernetes_pod_phase'], regex: 'Succeeded|Failed', action: 'drop' },
  { source_labels: ['__meta_kubernetes_pod_label_app_kubernetes_io_component'], target_label: 'role' },
  { source_labels: ['__meta_kubernetes_pod_label_meshwork_io_partition'], target_label: 'partition' },
  { source_labels: ['__meta_kubernetes_pod_label_meshwork_io_mesh'], target_label: 'mesh' },
  { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
  { source_labels: ['__meta_kubernetes_pod_name'], target_label: 'pod' },
];

/** A prometheus.yml (as an object) that scrapes the given targets or the discovered pods. */
export function prometheusConfig(options: ScrapeOptions): Record<string, unknown> {
  const jobs: Record<string, unknown>[] = [];
  if (options.targets)
    jobs.push({
      job_name: 'meshwork-processes',
      metrics_path: '/metrics',
      static_configs: options.targets.map((t) => ({ targets: [t.address], labels: t.labels })),
    });
  if (options.kubernetes !== undefined)
    jobs.push({
      job_name: 'meshwork-pods',
      metrics_path: '/metrics',
      kubernetes_sd_configs: [
        {
          role: 'pod',
          api_server: options.kubernetes.apiServer,
          tls_config: { ca_file: options.kubernetes.caFile },
          authorization: { type: 'Bearer', credentials_file: options.kubernetes.tokenFile },
          selectors: [{ role: 'pod', label: meshworkPodSelector }],
        },
      ],
      relabel_configs: podRelabelings,
    });
  return {
    global: { scrape_interval: options.scrapeInterval, evaluation_interval: options.scrapeInterval },
    ...(options.ruleFiles?.length ? { rule_files: options.ruleFiles } : {}),
    scrape_configs: jobs,
  };
}
