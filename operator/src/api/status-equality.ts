// How a reconciler decides that a status it computed needs no write: the two say the same
// when they agree field by field, whatever the key order, with an undefined field the same
// as an absent one (the API server drops both). Shared by the Mesh and MeshPartition reconcilers.

/** `value` with its object keys sorted and its undefined fields dropped, at every depth. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => [k, canonical(v)]),
    );
  }
  return value;
}

/** Whether two statuses say the same, ignoring key order and undefined fields. */
export function sameStatus(a: object, b: object): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}
