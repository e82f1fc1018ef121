// The presigned URLs of a round's small downloads, asked for a batch at a time as the downloads
// reach it (ADR 90): one `POST /v1/blocks/locations` per batch instead of one partition request
// per file.
import { isMissingRoute } from '../errors.ts';
import type { BlockLocations } from '../types.ts';

/** Blocks per `POST /v1/blocks/locations` (the API's limit, docs/api.md). */
export const maxLocationsAsked = 500;

/** A URL is not handed out with less than this left before it expires: the download must get to the store first. */
const freshForMs = 20_000;

type Ask = (sha256s: readonly string[]) => Promise<BlockLocations>;

interface Located {
  urls: Map<string, string>;
  /** By `now`: when the URLs expire. */
  expiresAt: number;
}

interface Batch {
  shas: string[];
  asked?: Promise<Located | undefined> | undefined;
}

/**
 * The blocks of one round, in the order they will be read, cut into batches of at most
 * `maxLocationsAsked`. `urlFor` asks for the whole batch of a block the first time one of its
 * blocks is wanted, and again when the URLs it got are about to expire (they live two minutes);
 * it answers undefined for a block the answer has no URL for, for a partition that does not
 * redirect block reads or has no such route (`404`/`405`, after which nothing more is asked),
 * and for a block it was not given. Other failures are the caller's.
 */
export class LocationBatches {
  readonly #batches: Batch[] = [];
  readonly #batchOf = new Map<string, Batch>();
  readonly #ask: Ask;
  readonly #now: () => number;
  #unsupported = false;

  constructor(sha256s: Iterable<string>, ask: Ask, now: () => number = Date.now) {
    this.#ask = ask;
    this.#now = now;
    for (const sha256 of sha256s) {
      if (this.#batchOf.has(sha256)) continue;
      let last = this.#batches.at(-1);
      if (last === undefined || last.shas.length === maxLocationsAsked) this.#batches.push((last = { shas: [] }));
      last.shas.push(sha256);
      this.#batchOf.set(sha256, last);
    }
  }

  /** How many blocks there are URLs to ask for. */
  get size(): number {
    return this.#batchOf.size;
  }

  async urlFor(sha256: string): Promise<string | undefined> {
    const batch = this.#batchOf.get(sha256);
    if (batch === undefined || this.#unsupported) return undefined;
    let asking = batch.asked;
    const first = asking === undefined;
    asking ??= batch.asked = this.#start(batch);
    const located = await asking;
    // URLs this very call asked for are used as they are, however long they live.
    if (located === undefined || first || located.expiresAt - this.#now() >= freshForMs) return located?.urls.get(sha256);
    // About to expire: asked again once (by the first block to find out), the others wait for that.
    if (batch.asked === asking) batch.asked = this.#start(batch);
    return (await batch.asked)?.urls.get(sha256);
  }

  #start(batch: Batch): Promise<Located | undefined> {
    const asking = this.#askBatch(batch);
    // A failed ask is the caller's, and is asked again by the next block that wants the batch.
    asking.catch(() => {
      if (batch.asked === asking) batch.asked = undefined;
    });
    return asking;
  }

  async #askBatch(batch: Batch): Promise<Located | undefined> {
    const started = this.#now();
    let answer: BlockLocations;
    try {
      answer = await this.#ask(batch.shas);
    } catch (err) {
      if (isMissingRoute(err)) {
        this.#unsupported = true;
        return undefined;
      }
      throw err;
    }
    const urls = new Map<string, string>();
    for (const b of answer.blocks) if (b.url !== undefined) urls.set(b.sha256, b.url);
    // A partition that does not redirect block reads gives no URLs: there are none to ask for.
    if (urls.size === 0 && answer.blocks.length > 0) {
      this.#unsupported = true;
      return undefined;
    }
    // Read against this machine's clock: the URLs live as long from when they were asked as the answer says.
    const lifetime = answer.expiresAt === undefined ? 0 : Date.parse(answer.expiresAt) - Date.now();
    return { urls, expiresAt: started + Math.max(0, lifetime) };
  }
}
