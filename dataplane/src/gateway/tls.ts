// The gateway's certificate: `tls.crt` and `tls.key` from a directory (a mounted
// `kubernetes.io/tls` Secret, the layout cert-manager writes). When the kubelet swaps in a new
// Secret (it replaces a symlink in the directory) the pair is read again and handed to the
// server with `setSecureContext`: new handshakes use it, open connections keep theirs, nothing
// is dropped. A pair that does not load (a half-written update) is ignored until the next change.
import { createHash } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import type { Logger } from 'pino';

/** A certificate and its key, PEM. */
export interface KeyPair {
  cert: Buffer;
  key: Buffer;
}

/** Reads and checks the pair in `dir`; throws when it is missing or does not load. */
export function readKeyPair(dir: string): KeyPair {
  const pair = { cert: readFileSync(join(dir, 'tls.crt')), key: readFileSync(join(dir, 'tls.key')) };
  // Throws for a key that does not match the certificate, or PEM that does not parse.
  createSecureContext(pair);
  return pair;
}

// Watch events can be missed (a directory replaced whole); a poll this often catches them.
const pollMs = 10_000;
// A Secret update touches several files; wait for them to settle.
const settleMs = 200;

/** Watches `dir` and calls `apply` with each new valid pair. Returns a stop function. */
export function watchKeyPair(dir: string, initial: KeyPair, apply: (pair: KeyPair) => void, logger: Logger): () => void {
  const digest = (p: KeyPair): string => createHash('sha256').update(p.cert).update(p.key).digest('hex');
  let current = digest(initial);
  let pending: NodeJS.Timeout | undefined;
  const check = (): void => {
    pending = undefined;
    let pair: KeyPair;
    try {
      pair = readKeyPair(dir);
    } catch (err) {
      logger.warn({ err, dir }, 'Kept the current certificate: the pair in the directory does not load');
      return;
    }
    const next = digest(pair);
    if (next === current) return;
    current = next;
    apply(pair);
    logger.info({ dir }, 'Loaded a new certificate');
  };
  const soon = (): void => {
    if (pending === undefined) pending = setTimeout(check, settleMs);
  };
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dir, soon);
    watcher.on('error', (err) => logger.warn({ err, dir }, 'Stopped watching the certificate directory; polling it'));
  } catch (err) {
    logger.warn({ err, dir }, 'Failed to watch the certificate directory; polling it');
  }
  const poll = setInterval(check, pollMs);
  poll.unref();
  return () => {
    clearInterval(poll);
    if (pending) clearTimeout(pending);
    watcher?.close();
  };
}
