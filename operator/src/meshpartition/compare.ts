// Drift detection without writes: an owned object is up to date when every field the
// operator sets has the same value in the live object. Fields the API server or other
// managers add are ignored; a field changed or removed by hand is not, so the next
// reconcile puts it back. Comparing first keeps the steady state free of API writes.

const quantityPattern = /^([+-]?[0-9.]+)([eE][+-]?[0-9]+|[KMGTPE]i|[numkMGTPE])?$/;
const suffixes: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** The value of a Kubernetes quantity ("500m", "8Gi", "1e3"), or undefined if `text` is not one. */
export function quantityValue(text: string): number | undefined {
  const match = quantityPattern.exec(text);
  if (!match) return undefined;
  const number = Number(match[1]);
  if (Number.isNaN(number)) return undefined;
  const suffix = match[2] ?? '';
  if (suffix.startsWith('e') || suffix.startsWith('E')) return number * 10 ** Number(suffix.slice(1));
  const factor = suffixes[suffix];
  return factor === undefined ? undefined : number * factor;
}

/** Equal scalars, where quantities compare by value ("0.5" and "500m") because the API server normalises them. */
function scalarsEqual(desired: unknown, observed: unknown): boolean {
  if (desired === observed) return true;
  if ((typeof desired === 'string' || typeof desired === 'number') && (typeof observed === 'string' || typeof observed === 'number')) {
    const a = quantityValue(String(desired));
    const b = quantityValue(String(observed));
    return a !== undefined && b !== undefined && Math.abs(a - b) <= Math.abs(a) * 1e-12;
  }
  return false;
}

/**
 * Whether `observed` holds every field of `desired` with the same value. Lists must have
 * the same length and match element by element, since the operator owns whole lists.
 */
export function containsDesired(desired: unknown, observed: unknown): boolean {
  if (desired === undefined) return true;
  if (Array.isArray(desired)) {
    // The API server drops an empty list (Go's omitempty): absent is what an empty one reads back as.
    if (desired.length === 0 && observed === undefined) return true;
    return Array.isArray(observed) && observed.length === desired.length && desired.every((item, i) => containsDesired(item, observed[i]));
  }
  if (desired !== null && typeof desired === 'object') {
    if (observed === null || typeof observed !== 'object' || Array.isArray(observed)) return false;
    const live = observed as Record<string, unknown>;
    return Object.entries(desired as Record<string, unknown>).every(([key, value]) => containsDesired(value, live[key]));
  }
  return scalarsEqual(desired, observed);
}

/** The first path where `observed` differs from `desired`, for logs ("spec.replicas"). */
export function firstDifference(desired: unknown, observed: unknown, path = ''): string | undefined {
  if (containsDesired(desired, observed)) return undefined;
  if (desired !== null && typeof desired === 'object' && observed !== null && typeof observed === 'object') {
    if (Array.isArray(desired) && (!Array.isArray(observed) || observed.length !== desired.length)) return `${path}.length`;
    for (const [key, value] of Object.entries(desired as Record<string, unknown>)) {
      const found = firstDifference(value, (observed as Record<string, unknown>)[key], path ? `${path}.${key}` : key);
      if (found !== undefined) return found;
    }
  }
  return path || '.';
}
