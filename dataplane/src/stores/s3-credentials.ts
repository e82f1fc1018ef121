// The S3 credentials a partition signs with, and their rotation. A key pair, and a session token
// for temporary credentials, come either from fixed values or from files (a Kubernetes Secret
// mounted as a volume, which the kubelet updates in place when the Secret changes). Files are
// looked at again at most once per `checkIntervalMs` and re-read when one changed (mtime, size
// or inode: a Secret volume swaps a symlink), and at once when S3 refuses the credentials, so a
// rotated key is used without a restart. STS and web-identity (IRSA) exchanges are not done
// here: a sidecar or the platform writes the temporary credentials to the files.
import { readFile, stat } from 'node:fs/promises';
import { MeshworkError } from '@meshwork/contract';

/** One set of credentials as the signer takes them. */
export interface S3Identity {
  accessKeyId: string;
  secretAccessKey: string;
  /** Sent as `x-amz-security-token`; set for temporary credentials only. */
  sessionToken?: string;
}

/** Where each part of the credentials comes from: a file wins over the fixed value. */
export interface S3CredentialSources {
  accessKey: string;
  secretKey: string;
  sessionToken?: string | undefined;
  files?: { accessKey?: string | undefined; secretKey?: string | undefined; sessionToken?: string | undefined } | undefined;
  /** How often the files' metadata is looked at (default 1000 ms). */
  checkIntervalMs?: number;
}

/** Raised when a credentials file cannot be read or is empty. */
export class S3CredentialsError extends MeshworkError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('s3_credentials_unreadable', message, options);
  }
}

type Part = 'accessKey' | 'secretKey' | 'sessionToken';
const parts: readonly Part[] = ['accessKey', 'secretKey', 'sessionToken'];

/** Current S3 credentials, re-read from their files when those change. */
export class S3Credentials {
  readonly #files: Partial<Record<Part, string>>;
  readonly #checkIntervalMs: number;
  #identity: S3Identity;
  #generation = 0;
  #stamps = new Map<string, string>();
  #checkedAt = 0;
  #checking: Promise<S3Identity> | undefined;

  constructor(sources: S3CredentialSources) {
    this.#identity = identityOf(sources.accessKey, sources.secretKey, sources.sessionToken);
    this.#files = Object.fromEntries(parts.flatMap((p) => (sources.files?.[p] ? [[p, sources.files[p]]] : [])));
    this.#checkIntervalMs = sources.checkIntervalMs ?? 1000;
    // Without files nothing is ever looked at; with files, the first request looks.
    this.#checkedAt = Object.keys(this.#files).length === 0 ? Infinity : 0;
  }

  /** Whether any part comes from a file (and can therefore rotate). */
  get rotates(): boolean {
    return Object.keys(this.#files).length > 0;
  }

  /** Counts the changes of the credentials; a request that failed under an older generation is worth repeating. */
  get generation(): number {
    return this.#generation;
  }

  /** The credentials to sign the next request with. */
  async current(now = Date.now()): Promise<S3Identity> {
    if (now - this.#checkedAt < this.#checkIntervalMs) return this.#identity;
    return this.#check(false);
  }

  /**
   * Re-reads the files after S3 refused the credentials; resolves whether the access key, secret
   * or session token changed (a retry is then worth it). Without files nothing can change.
   */
  async refresh(): Promise<boolean> {
    if (!this.rotates) return false;
    const before = this.#generation;
    await this.#check(true);
    return this.#generation !== before;
  }

  #check(force: boolean): Promise<S3Identity> {
    // Concurrent requests share one look at the files.
    this.#checking ??= this.#read(force).finally(() => {
      this.#checking = undefined;
    });
    return this.#checking;
  }

  async #read(force: boolean): Promise<S3Identity> {
    const stamps = new Map<string, string>();
    for (const path of new Set(Object.values(this.#files))) {
      try {
        const s = await stat(path);
        stamps.set(path, `${s.ino}:${s.size}:${s.mtimeMs}`);
      } catch (err) {
        throw new S3CredentialsError(`cannot read S3 credentials file ${path}: ${(err as Error).message}`, { cause: err });
      }
    }
    const changed = [...stamps].some(([path, stamp]) => this.#stamps.get(path) !== stamp);
    this.#checkedAt = Date.now();
    if (!changed && !force) return this.#identity;
    const values: Partial<Record<Part, string>> = {};
    for (const part of parts) {
      const path = this.#files[part];
      if (path === undefined) continue;
      try {
        values[part] = (await readFile(path, 'utf8')).trim();
      } catch (err) {
        throw new S3CredentialsError(`cannot read S3 credentials file ${path}: ${(err as Error).message}`, { cause: err });
      }
      if (values[part] === '') throw new S3CredentialsError(`S3 credentials file ${path} is empty`);
    }
    const next = identityOf(
      values.accessKey ?? this.#identity.accessKeyId,
      values.secretKey ?? this.#identity.secretAccessKey,
      this.#files.sessionToken === undefined ? this.#identity.sessionToken : values.sessionToken,
    );
    if (
      next.accessKeyId !== this.#identity.accessKeyId ||
      next.secretAccessKey !== this.#identity.secretAccessKey ||
      next.sessionToken !== this.#identity.sessionToken
    ) {
      this.#generation++;
    }
    this.#identity = next;
    this.#stamps = stamps;
    return this.#identity;
  }
}

function identityOf(accessKeyId: string, secretAccessKey: string, sessionToken: string | undefined): S3Identity {
  return sessionToken ? { accessKeyId, secretAccessKey, sessionToken } : { accessKeyId, secretAccessKey };
}
