// Byte sizes: the parser of the notation the operator passes through from the MeshPartition
// (`64Mi`, `1.5Gi`, `1e9`) is part of the contract (@meshwork/contract, byte-size.ts); the
// data plane adds how it writes a byte count for people.
export { parseByteSize } from '@meshwork/contract';

/** A byte count written for people: 67108864 as `64 MiB`. */
export function formatByteSize(bytes: number): string {
  for (const [suffix, factor] of [
    ['GiB', 2 ** 30],
    ['MiB', 2 ** 20],
    ['KiB', 2 ** 10],
  ] as const) {
    if (bytes >= factor) return `${Number((bytes / factor).toFixed(2))} ${suffix}`;
  }
  return `${bytes} bytes`;
}
