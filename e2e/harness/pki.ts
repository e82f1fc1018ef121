// A small certificate authority for the local control plane, made with the openssl CLI:
// serving and client certificates (ECDSA P-256) and the service-account signing key.
import { execFile } from 'node:child_process';
import { access, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd });
  } catch (err) {
    const detail =
      (err as { stderr?: string; code?: string }).code === 'ENOENT'
        ? 'openssl is not installed (make deps installs it)'
        : String((err as { stderr?: string }).stderr ?? err);
    throw new Error(`openssl ${args[0]} failed: ${detail}`, { cause: err });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

export interface CertificateRequest {
  /** File stem: "apiserver" gives apiserver.crt and apiserver.key. */
  name: string;
  commonName: string;
  organization?: string;
  /** Subject alternative names: "IP:127.0.0.1", "DNS:localhost". */
  altNames?: string[];
  usage: 'server' | 'client' | 'both';
}

export interface KeyPair {
  cert: string;
  key: string;
}

/** A CA in `dir` (created once, reused if present) that issues certificates into `dir`. */
export class LocalPki {
  readonly dir: string;
  readonly caCert: string;
  readonly caKey: string;

  private constructor(dir: string) {
    this.dir = dir;
    this.caCert = join(dir, 'ca.crt');
    this.caKey = join(dir, 'ca.key');
  }

  /** Opens the CA in `dir`, creating it if it does not exist yet. */
  static async open(dir: string, commonName = 'meshwork-local-ca'): Promise<LocalPki> {
    const pki = new LocalPki(dir);
    if (!(await exists(pki.caCert)) || !(await exists(pki.caKey))) {
      await openssl(
        [
          'req',
          '-x509',
          '-new',
          '-nodes',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:prime256v1',
          '-keyout',
          'ca.key',
          '-out',
          'ca.crt',
          '-days',
          '3650',
          '-subj',
          `/CN=${commonName}`,
          '-addext',
          'basicConstraints=critical,CA:TRUE',
          '-addext',
          'keyUsage=critical,keyCertSign,cRLSign',
        ],
        dir,
      );
    }
    return pki;
  }

  /** Issues a certificate signed by the CA (reused if its files already exist). */
  async issue(request: CertificateRequest): Promise<KeyPair> {
    const pair = { cert: join(this.dir, `${request.name}.crt`), key: join(this.dir, `${request.name}.key`) };
    if ((await exists(pair.cert)) && (await exists(pair.key))) return pair;
    const subject = (request.organization ? `/O=${request.organization}` : '') + `/CN=${request.commonName}`;
    const eku = { server: 'serverAuth', client: 'clientAuth', both: 'serverAuth,clientAuth' }[request.usage];
    const ext = [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      `extendedKeyUsage=${eku}`,
      ...(request.altNames?.length ? [`subjectAltName=${request.altNames.join(',')}`] : []),
    ].join('\n');
    const extFile = join(this.dir, `${request.name}.ext`);
    await writeFile(extFile, ext + '\n');
    await openssl(
      [
        'req',
        '-new',
        '-nodes',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-keyout',
        `${request.name}.key`,
        '-out',
        `${request.name}.csr`,
        '-subj',
        subject,
      ],
      this.dir,
    );
    await openssl(
      [
        'x509',
        '-req',
        '-in',
        `${request.name}.csr`,
        '-CA',
        'ca.crt',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-out',
        `${request.name}.crt`,
        '-days',
        '825',
        '-extfile',
        extFile,
      ],
      this.dir,
    );
    return pair;
  }

  /** An RSA key pair for signing service-account tokens (sa.key, sa.pub). */
  async serviceAccountKey(): Promise<{ key: string; pub: string }> {
    const key = join(this.dir, 'sa.key');
    const pub = join(this.dir, 'sa.pub');
    if (!(await exists(key)) || !(await exists(pub))) {
      await openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'sa.key'], this.dir);
      await openssl(['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], this.dir);
    }
    return { key, pub };
  }

  /** Base64 of a PEM file, as kubeconfig *-data fields want it. */
  static async base64(path: string): Promise<string> {
    return (await readFile(path)).toString('base64');
  }
}
