// The image build's bookkeeping without a build: the SBOM made reproducible, the dpkg status
// read, the licence list written.
import { describe, expect, it } from 'vitest';
import { debianPackages, licenseList, reproducibleSbom } from './supply-chain.ts';

const rawSbom = {
  serialNumber: 'urn:uuid:11111111-2222-4333-8444-555555555555',
  metadata: { timestamp: '2026-01-02T03:04:05.678Z', component: { name: 'meshwork', licenses: [{ license: { id: 'Apache-2.0' } }] } },
  components: [
    { 'bom-ref': 'etcd3@1.1.2', name: 'etcd3', version: '1.1.2', licenses: [{ license: { id: 'MIT' } }] },
    { 'bom-ref': '@meshwork/contract@0.1.0', name: 'contract', version: '0.1.0' },
    { 'bom-ref': '@grpc/grpc-js@1.14.7', group: '@grpc', name: 'grpc-js', version: '1.14.7', licenses: [{ expression: 'Apache-2.0' }] },
    { 'bom-ref': 'nameless@1.0.0', name: 'nameless', version: '1.0.0' },
  ],
};

const status = `Package: libc6
Status: install ok installed
Version: 2.36-9+deb12u14

Package: base-files
Status: install ok installed
Version: 12.4+deb12u15
`;

describe('reproducibleSbom', () => {
  it('sets the timestamp and derives the serial number from the content', () => {
    const a = reproducibleSbom(rawSbom, '2026-12-04T22:56:29Z');
    const b = reproducibleSbom({ ...rawSbom, serialNumber: 'urn:uuid:other' }, '2026-12-04T22:56:29Z');
    expect(a.metadata?.timestamp).toBe('2026-12-04T22:56:29Z');
    expect(a.serialNumber).toMatch(/^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(b).toEqual(a);
    expect(reproducibleSbom(rawSbom, '2026-12-05T00:00:00Z').serialNumber).not.toBe(a.serialNumber);
  });
});

describe('debianPackages', () => {
  it('lists the packages of a dpkg status file by name', () => {
    expect(debianPackages(status)).toEqual([
      { name: 'base-files', version: '12.4+deb12u15' },
      { name: 'libc6', version: '2.36-9+deb12u14' },
    ]);
  });
});

describe('licenseList', () => {
  it.each([
    ['Node', 'node\tnode\t24.21.0\tMIT (bundled components: /usr/local/share/doc/node/LICENSE)'],
    ['an npm package', 'npm\tetcd3\t1.1.2\tMIT'],
    ['a scoped npm package', 'npm\t@grpc/grpc-js\t1.14.7\tApache-2.0'],
    ["a workspace, with the project's licence", 'npm\t@meshwork/contract\t0.1.0\tApache-2.0'],
    ['a package that names no licence', 'npm\tnameless\t1.0.0\tUNKNOWN'],
    ['a Debian package', 'debian\tlibc6\t2.36-9+deb12u14\tsee /usr/share/doc/libc6/copyright'],
  ])('lists %s', (_, row) => {
    expect(licenseList(rawSbom, status, '24.21.0').split('\n')).toContain(row);
  });
});
