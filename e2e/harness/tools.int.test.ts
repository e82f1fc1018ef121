// The pinned infrastructure reports the versions that tools/ pins, and rebuilding it with
// nothing changed is a no-op.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot, requireBinary } from './binaries.ts';

/** The version a tools/ module's go.mod requires for `module`. */
function pinned(tool: string, module: string): string {
  const goMod = readFileSync(join(repoRoot, 'tools', tool, 'go.mod'), 'utf8');
  const match = new RegExp(`^\\s*(?:require\\s+)?${module.replaceAll('.', '\\.')}\\s+(v\\S+)`, 'm').exec(goMod);
  if (!match?.[1]) throw new Error(`tools/${tool}/go.mod does not require ${module}`);
  return match[1];
}

function run(binary: string, args: string[]): string {
  return execFileSync(requireBinary(binary), args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

describe('the pinned binaries', () => {
  const kubernetes = pinned('kubernetes', 'k8s.io/kubernetes');

  it('pins Kubernetes 1.36 and every staging module to the matching v0.36 release', () => {
    expect(kubernetes).toMatch(/^v1\.36\.\d+$/);
    const goMod = readFileSync(join(repoRoot, 'tools', 'kubernetes', 'go.mod'), 'utf8');
    const replaced = [...goMod.matchAll(/^\s*(k8s\.io\/\S+) => (k8s\.io\/\S+) (v\S+)$/gm)];
    expect(replaced.map((m) => m[1])).toEqual(
      expect.arrayContaining(['k8s.io/api', 'k8s.io/apimachinery', 'k8s.io/cri-streaming', 'k8s.io/streaming']),
    );
    for (const [, from, to, version] of replaced) {
      expect(to).toBe(from);
      expect(version).toBe(kubernetes.replace(/^v1\./, 'v0.'));
    }
  });

  it.each(['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kube-proxy'])(
    '%s --version prints the pinned Kubernetes version',
    (binary) => {
      expect(run(binary, ['--version']).trim()).toBe(`Kubernetes ${kubernetes}`);
    },
  );

  it('kubectl version --client prints the pinned Kubernetes version', () => {
    expect(run('kubectl', ['version', '--client'])).toContain(`Client Version: ${kubernetes}`);
  });

  it('etcd --version prints the pinned 3.6 release', () => {
    const version = pinned('etcd', 'go.etcd.io/etcd/server/v3');
    expect(version).toMatch(/^v3\.6\./);
    expect(run('etcd', ['--version'])).toContain(`etcd Version: ${version.slice(1)}`);
  });

  it('minio --version prints the release of the pinned commit', () => {
    const version = pinned('minio', 'github.com/minio/minio');
    const commit = version.split('-').at(-1)!;
    const stamp = version.split('-').at(-2)!; // yyyymmddhhmmss
    const release = `RELEASE.${stamp.slice(0, 4)}-${stamp.slice(4, 6)}-${stamp.slice(6, 8)}T${stamp.slice(8, 10)}-${stamp.slice(10, 12)}-${stamp.slice(12, 14)}Z`;
    expect(run('minio', ['--version'])).toContain(`minio version ${release} (commit-id=${commit})`);
  });

  it('helm version prints the pinned Helm 3 release', () => {
    const version = pinned('helm', 'helm.sh/helm/v3');
    expect(version).toMatch(/^v3\./);
    expect(run('helm', ['version', '--template', '{{.Version}}'])).toBe(version);
  });

  it('coredns -version prints the pinned release, with the plugins the local stack uses', () => {
    const version = pinned('coredns', 'github.com/coredns/coredns');
    expect(run('coredns', ['-version'])).toContain(`CoreDNS-${version.slice(1)}`);
    const plugins = run('coredns', ['-plugins']).split(/\s+/);
    expect(plugins).toEqual(expect.arrayContaining(['bind', 'kubernetes', 'ready', 'errors']));
  });

  it('jaeger version prints the pinned v1.75 release', () => {
    const version = pinned('jaeger', 'github.com/jaegertracing/jaeger');
    expect(version).toBe('v1.75.0');
    expect(JSON.parse(run('jaeger', ['version']).trim().split('\n').at(-1)!)).toMatchObject({ gitVersion: version });
  });

  it.each(['prometheus', 'promtool'])(
    '%s --version prints the Prometheus 3 release of the pinned module, with Kubernetes discovery only',
    (binary) => {
      const version = pinned('prometheus', 'github.com/prometheus/prometheus');
      // Module v0.3MM.P is Prometheus 3.MM.P.
      const [, minor, patch] = /^v0\.3(\d\d)\.(\d+)$/.exec(version)!;
      const output = run(binary, ['--version']);
      expect(output).toContain(`${binary}, version 3.${Number(minor)}.${patch} `);
      expect(output).toMatch(/tags:\s+remove_all_sd,enable_kubernetes_sd/);
    },
  );

  it('rclone version prints the pinned release, with only the WebDAV, S3 and local backends', () => {
    const version = pinned('rclone', 'github.com/rclone/rclone');
    expect(run('rclone', ['version']).split('\n')[0]).toBe(`rclone ${version}`);
    const backends = run('rclone', ['help', 'backends']);
    for (const backend of ['local', 's3', 'webdav']) expect(backends).toMatch(new RegExp(`^\\s+${backend}\\s`, 'm'));
    expect(backends).not.toMatch(/^\s+drive\s/m);
  });

  it('a second make tools with nothing changed builds nothing', () => {
    const output = execFileSync('bash', [join(repoRoot, 'tools', 'build.sh')], { encoding: 'utf8', env: { ...process.env } });
    for (const tool of ['kubernetes', 'etcd', 'minio', 'helm', 'coredns', 'jaeger', 'prometheus', 'rclone'])
      expect(output).toContain(`tools: ${tool} is up to date`);
    expect(output).not.toContain('building');
  });
});
