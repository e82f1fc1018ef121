// The service's grant signing keys (ADR 51), kept in etcd so that every partition replica signs
// with the same key set without a Secret to distribute: the first process to start creates the
// record in one transaction (create-if-absent), every other one reads what is there. Private
// keys stay in etcd, next to the credential digests that already need the same protection.
// Rotation appends a key (the newest signs, all verify) and drops the oldest once no grant it
// signed can be alive; processes re-read the record every minute.
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import type { Etcd3 } from 'etcd3';
import { grantKeysOf, privateKeyFromPkcs8, rawPublicKeyOf, type GrantPublicKey, type GrantSigningKey } from '@meshwork/contract';
import { grantKeysKey } from './keys.ts';

/** One key as stored. */
interface StoredGrantKey {
  kid: string;
  /** PKCS#8 DER of the Ed25519 private key, base64url. */
  privateKey: string;
  createdAt: string;
}

interface GrantKeysRecord {
  keys: StoredGrantKey[];
}

/** A fresh Ed25519 key as stored, with a random key id. */
export function newStoredGrantKey(now: Date): StoredGrantKey {
  const { privateKey } = generateKeyPairSync('ed25519');
  return {
    kid: randomBytes(9).toString('base64url'),
    privateKey: privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64url'),
    createdAt: now.toISOString(),
  };
}

function parseRecord(text: string): { signing: GrantSigningKey; published: GrantPublicKey[] } {
  const record = JSON.parse(text) as GrantKeysRecord;
  if (!Array.isArray(record.keys) || record.keys.length === 0) throw new Error(`${grantKeysKey} holds no key`);
  const keys = record.keys.map((k) => ({ kid: k.kid, privateKey: privateKeyFromPkcs8(k.privateKey) }));
  return {
    // The newest key signs; every key listed verifies.
    signing: keys[keys.length - 1]!,
    published: keys.map((k) => ({ kid: k.kid, alg: 'Ed25519', publicKey: rawPublicKeyOf(k.privateKey) })),
  };
}

/** The key set of the service as one process holds it: the key it signs with and the public keys it lists. */
export class GrantKeys {
  readonly #etcd: Etcd3;
  #signing: GrantSigningKey | undefined;
  #published: GrantPublicKey[] = [];
  #verifying: ReadonlyMap<string, KeyObject> = new Map();
  #timer: NodeJS.Timeout | undefined;

  constructor(etcd: Etcd3) {
    this.#etcd = etcd;
  }

  /** Reads the key set, creating it first when no process has (a lost race reads the winner's). */
  async load(): Promise<void> {
    let text = await this.#etcd.get(grantKeysKey).string();
    if (text === null) {
      const record: GrantKeysRecord = { keys: [newStoredGrantKey(new Date())] };
      await this.#etcd
        .if(grantKeysKey, 'Create', '==', 0)
        .then(this.#etcd.put(grantKeysKey).value(JSON.stringify(record)))
        .commit();
      text = await this.#etcd.get(grantKeysKey).string();
      if (text === null) throw new Error(`${grantKeysKey} vanished after it was created`);
    }
    const { signing, published } = parseRecord(text);
    this.#signing = signing;
    this.#published = published;
    this.#verifying = grantKeysOf({ keys: published });
  }

  /** Re-reads the key set every `intervalMs` (a failed read keeps the keys held; `onError` hears of it). */
  startRefresh(intervalMs: number, onError: (err: unknown) => void): void {
    this.#timer = setInterval(() => void this.load().catch(onError), intervalMs);
    this.#timer.unref();
  }

  /** Stops re-reading. */
  stop(): void {
    clearInterval(this.#timer);
  }

  /** The key this process signs with. */
  get signing(): GrantSigningKey {
    if (this.#signing === undefined) throw new Error('the grant keys are not loaded');
    return this.#signing;
  }

  /** The public keys peers verify with. */
  get published(): readonly GrantPublicKey[] {
    return this.#published;
  }

  /** The verification keys by kid (for the service's own checks of a grant a device sends). */
  get verifying(): ReadonlyMap<string, KeyObject> {
    return this.#verifying;
  }
}
