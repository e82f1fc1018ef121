// One probe journey, as a user makes it through the gateway: create an object, upload a file,
// wait for the notification of that upload, download and verify the file, delete the object.
// Each step is timed and reported on its own, so an alert says which part of the service fails.
import { createHash, randomBytes } from 'node:crypto';
import type { MeshworkClient } from '@meshwork/client';

/** The steps of a journey, in order. */
export const journeySteps = ['create', 'upload', 'notify', 'download', 'delete'] as const;

/** One step of a journey. */
export type JourneyStep = (typeof journeySteps)[number];

/** Prefix of the objects the prober creates; leftovers of an interrupted journey are removed by it. */
export const probeObjectPrefix = 'meshwork-probe-';

/** What happened to one step. */
export interface StepResult {
  step: JourneyStep;
  ok: boolean;
  seconds: number;
  error?: string;
}

/** Where a journey reports each step as it ends. */
export type StepReporter = (result: StepResult) => void;

/** Thrown when the downloaded file is not the uploaded one. */
export class ProbeMismatchError extends Error {
  override readonly name = 'ProbeMismatchError';
}

/** Runs one journey with `client` (the probe account); answers whether every step succeeded. */
export async function runJourney(
  client: MeshworkClient,
  options: { fileBytes: number; stepTimeoutMs: number; report: StepReporter; now?: () => number },
): Promise<boolean> {
  const now = options.now ?? (() => performance.now());
  const data = randomBytes(options.fileBytes);
  const digest = createHash('sha256').update(data).digest('hex');
  let objectId: string | undefined;
  let cursor = '';

  const step = async (name: JourneyStep, run: (signal: AbortSignal) => Promise<void>): Promise<void> => {
    const started = now();
    try {
      await run(AbortSignal.timeout(options.stepTimeoutMs));
      options.report({ step: name, ok: true, seconds: (now() - started) / 1000 });
    } catch (err) {
      options.report({ step: name, ok: false, seconds: (now() - started) / 1000, error: err instanceof Error ? err.message : String(err) });
      throw err;
    }
  };

  try {
    await step('create', async (signal) => {
      objectId = (await client.createObject({ name: `${probeObjectPrefix}${Date.now()}` }, { signal })).id;
      // The cursor after the object exists: the next notification naming it is the upload's.
      cursor = (await client.notifications({ wait: 0, signal })).cursor;
    });
    const id = objectId!;
    await step('upload', async (signal) => {
      await client.upload(id, 'probe.bin', data, { ifNoneMatch: '*' }, { signal });
    });
    await step('notify', async (signal) => {
      for (;;) {
        const answer = await client.notifications({ cursor, wait: Math.max(1, Math.floor(options.stepTimeoutMs / 1000) - 1), signal });
        cursor = answer.cursor;
        if (answer.objects.some((o) => o.id === id)) return;
      }
    });
    await step('download', async (signal) => {
      const hash = createHash('sha256');
      const sink = new WritableStream<Uint8Array>({ write: (chunk) => void hash.update(chunk) });
      const { bytes } = await client.download(id, 'probe.bin', sink, { signal });
      const got = hash.digest('hex');
      if (bytes !== data.length || got !== digest)
        throw new ProbeMismatchError(`downloaded ${bytes} bytes with sha256 ${got}, uploaded ${data.length} with ${digest}`);
    });
    await step('delete', async (signal) => {
      await client.deleteObject(id, { signal });
      objectId = undefined;
    });
    return true;
  } catch {
    return false;
  } finally {
    // A journey cut short still removes its object, so the probe account does not fill up.
    if (objectId !== undefined)
      await client.deleteObject(objectId, { signal: AbortSignal.timeout(options.stepTimeoutMs) }).catch(() => undefined);
  }
}

/** Deletes objects an earlier prober left behind (a crash between create and delete). */
export async function removeLeftovers(client: MeshworkClient, signal: AbortSignal): Promise<number> {
  const leftovers = (await client.listObjects({ signal })).filter((o) => o.name.startsWith(probeObjectPrefix));
  for (const o of leftovers) await client.deleteObject(o.id, { signal });
  return leftovers.length;
}
