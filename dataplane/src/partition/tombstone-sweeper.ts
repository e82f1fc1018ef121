// Purges tombstones older than the retention time in this partition's slots, raising each
// object's history floor so that cursors from before a purge get 410 rather than miss a delete.
import type { Logger } from 'pino';
import type { SlotRange } from '../slots.ts';
import type { MetadataStore } from '../stores/metadata-store.ts';

/** Runs one sweep over `slots`; returns how many tombstones were purged. */
export async function sweepTombstones(
  metadata: MetadataStore,
  slots: readonly SlotRange[],
  retentionSeconds: number,
  now = Date.now(),
): Promise<number> {
  let purged = 0;
  for (const range of slots) {
    for (const marker of await metadata.listTombstones(range.first, range.last)) {
      if (now - Date.parse(marker.deletedAt) < retentionSeconds * 1000) continue;
      await metadata.purgeTombstone(marker.objectId, marker.path);
      purged++;
    }
  }
  return purged;
}

/** Sweeps every `intervalSeconds` until stopped; failures are logged and retried next time. */
export function startTombstoneSweeper(
  metadata: MetadataStore,
  slots: readonly SlotRange[],
  retentionSeconds: number,
  intervalSeconds: number,
  logger: Logger,
): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    sweepTombstones(metadata, slots, retentionSeconds)
      .then((purged) => {
        if (purged > 0) logger.info({ purged }, 'Purged expired tombstones');
      })
      .catch((err: unknown) => logger.warn({ err }, 'Failed to sweep tombstones; will retry'))
      .finally(() => {
        running = false;
      });
  }, intervalSeconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
