// The peer listener's TLS identity: an Ed25519 key and a self-signed X.509 certificate for it,
// created on the agent's first start and kept in its state directory. Node can sign but not build
// certificates, so this file carries the few DER encoders a certificate needs (ADR 54). Peers
// never check the certificate's names or dates: a requester pins the sha256 of its DER, which
// the device announced through its presence.
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The device's TLS identity: key and certificate as PEM, and the certificate's fingerprint. */
export interface PeerIdentity {
  keyPem: string;
  certPem: string;
  /** Lowercase hex sha256 of the certificate's DER: what presence announces and requesters pin. */
  fingerprint: string;
}

// ---- DER (X.690), only what a certificate needs

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One DER element: tag, length, content. */
export function der(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

const sequence = (...items: Buffer[]): Buffer => der(0x30, ...items);
const set = (...items: Buffer[]): Buffer => der(0x31, ...items);

/** A non-negative INTEGER from big-endian bytes (a leading zero keeps it positive). */
function integer(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const trimmed = bytes.subarray(i);
  return der(0x02, trimmed[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

/** An OBJECT IDENTIFIER from its dotted form. */
export function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out = [40 * parts[0]! + parts[1]!];
  for (const part of parts.slice(2)) {
    const groups: number[] = [];
    for (let v = part; ; v = Math.floor(v / 128)) {
      groups.unshift(v & 0x7f);
      if (v < 128) break;
    }
    out.push(...groups.map((g, k) => (k < groups.length - 1 ? g | 0x80 : g)));
  }
  return der(0x06, Buffer.from(out));
}

/** A Time: UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 4.1.2.5). */
function time(at: Date): Buffer {
  const iso = at.toISOString();
  const digits = iso.slice(0, 19).replace(/[-:T]/g, '') + 'Z';
  return at.getUTCFullYear() < 2050 ? der(0x17, Buffer.from(digits.slice(2), 'ascii')) : der(0x18, Buffer.from(digits, 'ascii'));
}

const ed25519 = sequence(oid('1.3.101.112'));

/** Builds the DER of a self-signed X.509 v3 certificate for an Ed25519 key pair. */
export function selfSignedCertificateDer(
  privateKey: KeyObject,
  publicKey: KeyObject,
  commonName: string,
  notBefore: Date,
  notAfter: Date,
): Buffer {
  const name = sequence(set(sequence(oid('2.5.4.3'), der(0x0c, Buffer.from(commonName, 'utf8')))));
  const serial = randomBytes(16);
  serial[0]! &= 0x7f;
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  // basicConstraints (critical) cA false: an end entity, never an issuer.
  const basicConstraints = sequence(oid('2.5.29.19'), der(0x01, Buffer.from([0xff])), der(0x04, sequence()));
  const tbs = sequence(
    der(0xa0, integer(Buffer.from([2]))),
    integer(serial),
    ed25519,
    name,
    sequence(time(notBefore), time(notAfter)),
    name,
    spki,
    der(0xa3, sequence(basicConstraints)),
  );
  const signature = sign(null, tbs, privateKey);
  return sequence(tbs, ed25519, der(0x03, Buffer.from([0]), signature));
}

function pem(label: string, body: Buffer): string {
  const lines = body.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** The certificate's DER from its PEM. */
export function certificateDer(certPem: string): Buffer {
  return Buffer.from(certPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

/** The lowercase hex sha256 of a certificate's DER. */
export function fingerprintOf(certDer: Uint8Array): string {
  return createHash('sha256').update(certDer).digest('hex');
}

/** Creates a new identity (a fresh key and a certificate valid from an hour ago for 100 years). */
export function createPeerIdentity(now = new Date()): PeerIdentity {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const notBefore = new Date(now.getTime() - 3600_000);
  const notAfter = new Date(Date.UTC(now.getUTCFullYear() + 100, 0, 1));
  const certDer = selfSignedCertificateDer(privateKey, publicKey, 'meshwork-device', notBefore, notAfter);
  return {
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    certPem: pem('CERTIFICATE', certDer),
    fingerprint: fingerprintOf(certDer),
  };
}

/**
 * The device's identity from `dir` (`peer-key.pem`, `peer-cert.pem`), created there on first
 * use: the key file is `0600`, both are written to a temporary name and renamed.
 */
export async function loadOrCreatePeerIdentity(dir: string): Promise<PeerIdentity> {
  const keyPath = join(dir, 'peer-key.pem');
  const certPath = join(dir, 'peer-cert.pem');
  try {
    const [keyPem, certPem] = await Promise.all([readFile(keyPath, 'utf8'), readFile(certPath, 'utf8')]);
    createPrivateKey(keyPem); // a damaged key file fails here, not at the first connection
    return { keyPem, certPem, fingerprint: fingerprintOf(certificateDer(certPem)) };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`the peer certificate in ${dir} cannot be read`, { cause: err });
  }
  const identity = createPeerIdentity();
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const suffix = `.${process.pid}.tmp`;
  await writeFile(keyPath + suffix, identity.keyPem, { mode: 0o600 });
  await writeFile(certPath + suffix, identity.certPem, { mode: 0o644 });
  // The certificate lands last: a crash in between leaves no certificate, so both are made again.
  await rename(keyPath + suffix, keyPath);
  await rename(certPath + suffix, certPath);
  return identity;
}
