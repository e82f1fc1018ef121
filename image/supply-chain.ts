// The image build's bookkeeping (image/build.sh runs it): makes npm's CycloneDX SBOM
// reproducible, writes the licence list of everything the image holds, and reports the
// image's size. Kept apart from build.sh because each step parses JSON.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

interface CycloneDxLicense {
  license?: { id?: string; name?: string };
  expression?: string;
}

interface CycloneDxComponent {
  'bom-ref'?: string;
  group?: string;
  name: string;
  version?: string;
  licenses?: CycloneDxLicense[];
}

interface CycloneDxBom {
  serialNumber?: string;
  metadata?: { timestamp?: string; component?: CycloneDxComponent };
  components?: CycloneDxComponent[];
}

/** The build's time: SOURCE_DATE_EPOCH (the last commit's) as an ISO date. */
function sourceDate(): string {
  const epoch = Number(process.env.SOURCE_DATE_EPOCH);
  if (!Number.isInteger(epoch)) throw new Error('SOURCE_DATE_EPOCH must be set to whole seconds');
  return new Date(epoch * 1000).toISOString().replace(/\.000Z$/, 'Z');
}

/**
 * npm's SBOM with its two varying fields fixed: the timestamp is the commit's time and the
 * serial number a UUID derived from the rest of the document, so the same dependencies give
 * the same file.
 */
export function reproducibleSbom(raw: CycloneDxBom, timestamp: string): CycloneDxBom {
  const bom: CycloneDxBom = { ...raw, metadata: { ...raw.metadata, timestamp } };
  delete bom.serialNumber;
  const hex = createHash('sha256').update(JSON.stringify(bom)).digest('hex');
  // An RFC 4122 name-based UUID layout (version 5 bits, variant bits) over the digest.
  const variant = ((parseInt(hex.slice(16, 18), 16) & 0x3f) | 0x80).toString(16);
  const uuid = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(18, 20)}-${hex.slice(20, 32)}`;
  return { ...bom, serialNumber: `urn:uuid:${uuid}` };
}

/** A component's licences as one SPDX-like expression, or undefined when the package names none. */
function licenseOf(component: CycloneDxComponent): string | undefined {
  const parts = (component.licenses ?? []).map((l) => l.expression ?? l.license?.id ?? l.license?.name ?? '').filter((s) => s !== '');
  return parts.length === 0 ? undefined : parts.join(' AND ');
}

/** A component's package name with its scope: npm names a workspace by its folder, its bom-ref has the real name. */
function packageNameOf(component: CycloneDxComponent): string {
  const ref = component['bom-ref'];
  if (ref !== undefined && component.version !== undefined && ref.endsWith(`@${component.version}`))
    return ref.slice(0, -component.version.length - 1);
  return component.group ? `${component.group}/${component.name}` : component.name;
}

/** The packages listed in a dpkg status file, with their versions. */
export function debianPackages(status: string): { name: string; version: string }[] {
  return status
    .split(/\n\n+/)
    .map((stanza) => ({ name: /^Package: (.+)$/m.exec(stanza)?.[1], version: /^Version: (.+)$/m.exec(stanza)?.[1] }))
    .filter((p): p is { name: string; version: string } => p.name !== undefined && p.version !== undefined)
    .sort((a, b) => (a.name < b.name ? -1 : 1));
}

/** The licence list (tab-separated: source, name, version, licence) of every part of the image. */
export function licenseList(bom: CycloneDxBom, dpkgStatus: string, nodeVersion: string): string {
  const rows = [['source', 'name', 'version', 'license']];
  rows.push(['node', 'node', nodeVersion, 'MIT (bundled components: /usr/local/share/doc/node/LICENSE)']);
  // The project's own workspaces (@meshwork/*) declare no licence of their own: they are the project's.
  const project = bom.metadata?.component ? licenseOf(bom.metadata.component) : undefined;
  const npm = (bom.components ?? []).map((c) => {
    const name = packageNameOf(c);
    const license = licenseOf(c) ?? (name.startsWith('@meshwork/') ? project : undefined) ?? 'UNKNOWN';
    return ['npm', name, c.version ?? '', license];
  });
  rows.push(...npm.sort((a, b) => (`${a[1]}@${a[2]}` < `${b[1]}@${b[2]}` ? -1 : 1)));
  for (const p of debianPackages(dpkgStatus)) rows.push(['debian', p.name, p.version, `see /usr/share/doc/${p.name}/copyright`]);
  return rows.map((r) => r.join('\t')).join('\n') + '\n';
}

interface OciDescriptor {
  digest: string;
  size: number;
}

function readBlob<T>(layout: string, digest: string): T {
  return JSON.parse(readFileSync(join(layout, 'blobs', ...digest.split(':')), 'utf8')) as T;
}

/** The compressed size of the image in an OCI layout (what a registry stores and a node pulls), with its layers'. */
export function imageSize(layout: string): { digest: string; compressed: number; layers: number[] } {
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: OciDescriptor[] };
  const manifestDescriptor = index.manifests[0];
  if (manifestDescriptor === undefined) throw new Error(`${layout} holds no image`);
  const manifest = readBlob<{ config: OciDescriptor; layers: OciDescriptor[] }>(layout, manifestDescriptor.digest);
  const layers = manifest.layers.map((l) => l.size);
  const compressed = manifestDescriptor.size + manifest.config.size + layers.reduce((a, b) => a + b, 0);
  return { digest: manifestDescriptor.digest, compressed, layers };
}

const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;

function main(argv: string[]): void {
  const [command, ...args] = argv;
  if (command === 'sbom' && args.length === 2) {
    const raw = JSON.parse(readFileSync(args[0]!, 'utf8')) as CycloneDxBom;
    writeFileSync(args[1]!, JSON.stringify(reproducibleSbom(raw, sourceDate()), null, 2) + '\n');
  } else if (command === 'licenses' && args.length === 4) {
    const bom = JSON.parse(readFileSync(args[0]!, 'utf8')) as CycloneDxBom;
    writeFileSync(args[3]!, licenseList(bom, readFileSync(args[1]!, 'utf8'), args[2]!));
  } else if (command === 'size' && args.length === 3) {
    const size = imageSize(args[0]!);
    // Uncompressed: the layer tars as written, which is also what unpacking them takes on disk.
    const uncompressed = readdirSync(args[2]!)
      .filter((f) => f.endsWith('.tar'))
      .reduce((sum, f) => sum + statSync(join(args[2]!, f)).size, 0);
    process.stdout.write(
      `image: ${args[1]} ${size.digest}\n` +
        `image: size ${mb(size.compressed)} compressed (layers ${size.layers.map(mb).join(' + ')}), ${mb(uncompressed)} uncompressed\n`,
    );
  } else {
    process.stderr.write('usage: supply-chain.ts sbom RAW OUT | licenses SBOM DPKG_STATUS NODE_VERSION OUT | size LAYOUT NAME LAYER_DIR\n');
    process.exit(2);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) main(process.argv.slice(2));
