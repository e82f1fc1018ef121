// Byte sizes as people and Kubernetes write them: `67108864`, `64Mi`, `1.5Gi`, `1e9`, `500k`.
// The MeshPartition's throttling fields are quantities that the operator passes to the pods'
// environment as written, so the data plane must read exactly the notation the operator
// accepts: one parser, here.

const pattern = /^\+?(\d+(?:\.\d+)?|\.\d+)(?:([KMGTPE]i)|([kMGTPE])|[eE](\d+))?$/;
const binary: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
const decimal: Record<string, number> = { k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };

/** The number of bytes `text` stands for, or undefined unless it is a whole, safe number of bytes. */
export function parseByteSize(text: string): number | undefined {
  const match = pattern.exec(text.trim());
  if (!match) return undefined;
  const [, digits, binarySuffix, decimalSuffix, exponent] = match;
  const factor = binarySuffix ? binary[binarySuffix]! : decimalSuffix ? decimal[decimalSuffix]! : exponent ? 10 ** Number(exponent) : 1;
  const bytes = Number(digits) * factor;
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}
