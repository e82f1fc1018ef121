// How a container's environment, command and paths are computed, as a kubelet would:
// downward-API fields, ConfigMap/Secret references, $(VAR) expansion, and the mapping of
// in-pod paths (volume mounts, the termination-message file) to host directories.
import type { V1Container, V1EnvVar, V1Pod } from '@kubernetes/client-node';
import { MeshworkError } from '@meshwork/contract';

/** Values the kubelet knows about a pod when it starts a container. */
export interface PodFacts {
  podIP: string;
  hostIP: string;
  nodeName: string;
}

/** Reads keys of ConfigMaps and Secrets in the pod's namespace (undefined if absent). */
export interface ReferenceResolver {
  configMapKey(name: string, key: string): Promise<string | undefined>;
  secretKey(name: string, key: string): Promise<string | undefined>;
  configMap(name: string): Promise<Record<string, string> | undefined>;
  secret(name: string): Promise<Record<string, string> | undefined>;
}

/** A container that cannot be started as specified (CreateContainerConfigError). */
export class ContainerConfigError extends MeshworkError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('container_config', message, options);
  }
}

/** Resolves a downward-API `fieldRef` path against a pod. */
export function downwardField(pod: V1Pod, facts: PodFacts, fieldPath: string): string {
  const meta = pod.metadata ?? {};
  const label = /^metadata\.labels\['(.+)'\]$/.exec(fieldPath);
  if (label) return meta.labels?.[label[1]!] ?? '';
  const annotation = /^metadata\.annotations\['(.+)'\]$/.exec(fieldPath);
  if (annotation) return meta.annotations?.[annotation[1]!] ?? '';
  switch (fieldPath) {
    case 'metadata.name':
      return meta.name ?? '';
    case 'metadata.namespace':
      return meta.namespace ?? '';
    case 'metadata.uid':
      return meta.uid ?? '';
    case 'spec.nodeName':
      return facts.nodeName;
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName ?? '';
    case 'status.podIP':
    case 'status.podIPs':
      return facts.podIP;
    case 'status.hostIP':
    case 'status.hostIPs':
      return facts.hostIP;
    default:
      throw new ContainerConfigError(`unsupported downward API field ${fieldPath}`);
  }
}

/** Expands $(VAR) references as Kubernetes does; $$ escapes a dollar; unknown names stay as written. */
export function expandReferences(value: string, env: Record<string, string>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (match, name: string | undefined) => {
    if (match === '$$') return '$';
    return name !== undefined && name in env ? env[name]! : match;
  });
}

/** Maps in-pod paths (mount paths, the termination-message path) to host paths, longest prefix first. */
export function pathMapper(mounts: { podPath: string; hostPath: string }[]): (value: string) => string {
  const sorted = [...mounts].sort((a, b) => b.podPath.length - a.podPath.length);
  const one = (value: string): string => {
    for (const { podPath, hostPath } of sorted) {
      if (value === podPath) return hostPath;
      if (value.startsWith(podPath.endsWith('/') ? podPath : `${podPath}/`))
        return hostPath + value.slice(podPath.replace(/\/$/, '').length);
    }
    return value;
  };
  // A comma-separated list of paths (MESHWORK_DATA_DIRS) maps element by element.
  return (value) =>
    value.includes(',') && value.split(',').every((v) => v.startsWith('/')) ? value.split(',').map(one).join(',') : one(value);
}

async function envVarValue(
  pod: V1Pod,
  facts: PodFacts,
  resolver: ReferenceResolver,
  env: Record<string, string>,
  v: V1EnvVar,
): Promise<string | undefined> {
  if (v.value !== undefined) return expandReferences(v.value, env);
  const from = v.valueFrom;
  if (!from) return '';
  if (from.fieldRef) return downwardField(pod, facts, from.fieldRef.fieldPath);
  if (from.configMapKeyRef) {
    const value = await resolver.configMapKey(from.configMapKeyRef.name ?? '', from.configMapKeyRef.key);
    if (value === undefined && !from.configMapKeyRef.optional) {
      throw new ContainerConfigError(`configmap "${from.configMapKeyRef.name}" key "${from.configMapKeyRef.key}" not found`);
    }
    return value;
  }
  if (from.secretKeyRef) {
    const value = await resolver.secretKey(from.secretKeyRef.name ?? '', from.secretKeyRef.key);
    if (value === undefined && !from.secretKeyRef.optional) {
      throw new ContainerConfigError(`secret "${from.secretKeyRef.name}" key "${from.secretKeyRef.key}" not found`);
    }
    return value;
  }
  if (from.resourceFieldRef) {
    const resources = pod.spec?.containers.find((c) => c.name === (from.resourceFieldRef?.containerName ?? c.name))?.resources;
    const [kind, resource] = from.resourceFieldRef.resource.split('.') as ['limits' | 'requests', string];
    return String(resources?.[kind]?.[resource] ?? '');
  }
  throw new ContainerConfigError(`environment variable ${v.name} has an unsupported valueFrom`);
}

/**
 * The environment of a container: envFrom, then env in order (each may refer to earlier ones
 * with $(VAR)). POD_NAME, POD_NAMESPACE, POD_IP and NODE_NAME are provided when the spec does not
 * set them, so that processes sharing one host can bind their own pod IP.
 */
export async function containerEnv(
  pod: V1Pod,
  container: V1Container,
  facts: PodFacts,
  resolver: ReferenceResolver,
): Promise<Record<string, string>> {
  const env: Record<string, string> = {
    POD_NAME: pod.metadata?.name ?? '',
    POD_NAMESPACE: pod.metadata?.namespace ?? '',
    POD_IP: facts.podIP,
    NODE_NAME: facts.nodeName,
  };
  for (const source of container.envFrom ?? []) {
    const ref = source.configMapRef ?? source.secretRef;
    const data = source.configMapRef ? await resolver.configMap(ref?.name ?? '') : await resolver.secret(ref?.name ?? '');
    if (data === undefined) {
      if (ref?.optional) continue;
      throw new ContainerConfigError(`${source.configMapRef ? 'configmap' : 'secret'} "${ref?.name}" not found`);
    }
    for (const [key, value] of Object.entries(data)) env[(source.prefix ?? '') + key] = value;
  }
  for (const v of container.env ?? []) {
    const value = await envVarValue(pod, facts, resolver, env, v);
    if (value !== undefined) env[v.name] = value;
  }
  return env;
}

/** The command line of a container: command (or the image's entrypoint) plus args, with $(VAR) expanded. */
export function containerCommand(container: V1Container, entrypoint: string[], env: Record<string, string>): string[] {
  const command = container.command?.length ? container.command : entrypoint;
  return [...command, ...(container.args ?? [])].map((part) => expandReferences(part, env));
}
