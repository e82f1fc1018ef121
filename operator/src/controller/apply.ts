// Server-side apply of one object a reconciler owns, with the failure handling both
// reconcilers share: a spec the API server refuses (422) will not pass on retry, so it is a
// problem to report and wait out; any other failure is an error the work queue retries.
import type { KubernetesObject } from '@kubernetes/client-node';
import { fieldManager } from '@meshwork/contract';
import { ReconcileError } from '../errors.ts';
import { KubeApiError, type KubeClient, type KubeObject, type ResourceRef } from '../kube/client.ts';
import type { ApplyProblem } from '../meshpartition/status.ts';

/** What applying one object came to: the object the API server returned, or the problem it refused it with. */
export type ApplyOutcome = { applied: KubernetesObject; rejected?: undefined } | { applied?: undefined; rejected: ApplyProblem };

/** Applies `body` (a `kind` at `ref`) with the operator's field manager; throws a ReconcileError unless refused with 422. */
export async function applyOwned(client: KubeClient, ref: ResourceRef, body: KubeObject, kind: string): Promise<ApplyOutcome> {
  try {
    return { applied: await client.apply<KubernetesObject>(ref, body, fieldManager) };
  } catch (err) {
    if (err instanceof KubeApiError && err.status === 422) {
      return { rejected: { reason: 'ApplyRejected', message: `${kind} ${ref.name}: ${err.message}` } };
    }
    throw new ReconcileError(`Could not apply ${kind} ${ref.namespace}/${ref.name}`, { cause: err });
  }
}
