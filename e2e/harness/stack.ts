// What the global setup hands to tests: the addresses and credentials of the shared servers.
import { KubeConfig } from '@kubernetes/client-node';
import { Client } from 'minio';

export interface SharedStack {
  etcd: { endpoint: string };
  minio: { endpoint: string; host: string; port: number; accessKey: string; secretKey: string; bucket: string };
  controlPlane: { server: string; adminKubeconfig: string; dir: string };
}

/** A KubeConfig for the shared control plane's administrator. */
export function adminKubeConfig(stack: SharedStack): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(stack.controlPlane.adminKubeconfig);
  return kc;
}

/** A MinIO client for the shared MinIO server. */
export function minioClient(stack: SharedStack): Client {
  const m = stack.minio;
  return new Client({ endPoint: m.host, port: m.port, useSSL: false, accessKey: m.accessKey, secretKey: m.secretKey, pathStyle: true });
}
