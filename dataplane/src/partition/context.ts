// Everything one partition process runs with, assembled once at start (server.ts) and handed
// to createPartitionApp, which gives each layer only the part it needs: routes get the hooks
// and their services' dependencies, services get the store methods they call. (The throttle's
// gate, in front of the app, gets the throttle and an authenticate function from server.ts.)
import type { Logger } from 'pino';
import type { PartitionConfig } from '../config.ts';
import type { ProcessHealth } from '../health/health.ts';
import type { BlockStore } from '../stores/block-store.ts';
import type { GrantKeys } from '../stores/grant-keys.ts';
import type { PresenceStore } from '../stores/presence-store.ts';
import type { MetadataStore } from '../stores/metadata-store.ts';
import type { DataplaneMetrics } from '../telemetry/metrics.ts';
import type { Tracing } from '../telemetry/tracing.ts';
import type { Authenticator } from './auth.ts';
import type { ChangeFeed } from './change-feed.ts';
import type { LongPolls } from './long-poll/long-polls.ts';
import type { RelayHub } from './relay/relay-hub.ts';
import type { SlotMap } from './slot-map.ts';
import type { SlotOwners } from './slot-owners.ts';
import type { ObjectWriteCache } from './sync/access.ts';
import type { PossessionCache } from './sync/possession-cache.ts';
import type { QuotaCache } from './sync/quota-cache.ts';
import type { Throttle } from './throttle/throttle.ts';

/** The parts of one partition process, as server.ts builds them. */
export interface PartitionContext {
  config: PartitionConfig;
  /** Object records recently read for writes; see ObjectAccess.loadForWrite. */
  objectCache: ObjectWriteCache;
  /** Proofs of possession remembered from uploads, for the commits that follow. */
  possession: PossessionCache;
  /** Users' quotas as uploads read them (a few seconds old at most). */
  quotas: QuotaCache;
  metadata: MetadataStore;
  blocks: BlockStore;
  slotMap: SlotMap;
  /** The slots served now, from the owner keys (ADR 34). */
  owners: SlotOwners;
  auth: Authenticator;
  changeFeed: ChangeFeed;
  /** Waiting notification and changes polls: `open` for a gauge, `drain()` on SIGTERM. */
  longPolls: LongPolls;
  /** Devices online, their endpoints and what they hold (under etcd leases). */
  presence: PresenceStore;
  /** The device relays this process holds (ADR 52). */
  relay: RelayHub;
  /** The service's grant keys (ADR 51): the one this process signs with, and the public ones. */
  grants: GrantKeys;
  logger: Logger;
  /** This process's metrics; other modules register theirs on `metrics.registry`. */
  metrics: DataplaneMetrics;
  /** Tracing (a no-op unless OTLP export is configured). */
  tracing: Tracing;
  /** Liveness, readiness (draining included) and deep health. */
  health: ProcessHealth;
  /** Static and dynamic request limits; long-poll routes take places with acquireLongPoll. */
  throttle: Throttle;
}
