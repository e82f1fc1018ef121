// Proofs of possession this process just recorded (ADR 24): a block upload remembers that its
// caller holds the block, at which state version, and its verified size, so that the commit
// that follows names it without reading the block's records or asking S3 for its size again.
//
// A remembered proof is never trusted blindly: the commit's transaction compares the block's
// state version, exactly as for a proof read from etcd. A holder record disappears only in the
// transaction that marks the block for collection, which moves that version; so a proof that
// went stale fails the commit's compare, and the commit then proves again from the store.

/** A proof of possession remembered from an upload. */
export interface RememberedProof {
  stateVersion: number;
  size: number;
}

// Enough for every block of the uploads in flight of a busy process; a few hundred KiB at most.
const defaultCapacity = 4096;

/** Proofs of recent uploads, per user and block, bounded (the oldest are forgotten first). */
export class PossessionCache {
  readonly #proofs = new Map<string, RememberedProof>();
  readonly #capacity: number;

  constructor(capacity = defaultCapacity) {
    this.#capacity = capacity;
  }

  /** Remembers that `userId` holds `sha256` (of `size` bytes) at state version `stateVersion`. */
  remember(userId: string, sha256: string, proof: RememberedProof): void {
    const key = keyOf(userId, sha256);
    this.#proofs.delete(key);
    if (this.#proofs.size >= this.#capacity) {
      const oldest = this.#proofs.keys().next();
      if (oldest.done !== true) this.#proofs.delete(oldest.value);
    }
    this.#proofs.set(key, proof);
  }

  /** The remembered proof that `userId` holds `sha256`, if any. */
  recall(userId: string, sha256: string): RememberedProof | undefined {
    return this.#proofs.get(keyOf(userId, sha256));
  }

  /** Forgets the proofs of `userId` for these blocks (their state moved). */
  forget(userId: string, sha256s: Iterable<string>): void {
    for (const sha of sha256s) this.#proofs.delete(keyOf(userId, sha));
  }

  /** How many proofs are remembered. */
  get size(): number {
    return this.#proofs.size;
  }
}

function keyOf(userId: string, sha256: string): string {
  return `${userId}/${sha256}`;
}
