// Request bodies of the v1 API, validated with zod; a failure names the offending field.
import { MeshworkError } from '@meshwork/contract';
import { z } from 'zod';

/** The largest content block, in bytes. */
export const maxBlockBytes = 4 * 1024 * 1024;
/** The most blocks one `missing` query or one entry may name (4 TiB of 4 MiB blocks is far beyond it). */
export const maxBlocksPerRequest = 10_000;

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'must be a lower-case hex sha256');
const displayName = z.string().trim().min(1).max(200);

export const createUserBody = z.strictObject({ name: displayName });
export const createDeviceBody = z.strictObject({ name: displayName });
/** A user's storage quota in bytes; null: unlimited (ADR 24). */
export const quotaBody = z.strictObject({ quotaBytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullable() });
/** A password as sent (its rules are checked by passwords.ts, which names them). */
const password = z.string().max(1024);
/** Setting a password: the current one when a signed-in session changes it (ADR 42). */
export const setPasswordBody = z.strictObject({ password, currentPassword: password.optional() });
export const signInBody = z.strictObject({ password });
export const createObjectBody = z.strictObject({ name: displayName, cloudStorage: z.boolean().default(true) });
export const updateObjectBody = z.strictObject({ name: displayName });
export const putMemberBody = z.strictObject({ role: z.enum(['writer', 'reader']) });
export const missingBlocksBody = z.strictObject({ blocks: z.array(sha256Hex).max(maxBlocksPerRequest) });
/** The most blocks one `locations` query may name: each is a signature to compute (50–80 µs) and about 600 bytes to answer (ADR 79). */
export const maxBlockLocations = 500;
export const blockLocationsBody = z.strictObject({ blocks: z.array(sha256Hex).max(maxBlockLocations) });

export const blockRef = z.strictObject({ sha256: sha256Hex, size: z.number().int().min(1).max(maxBlockBytes) });
/** The most blocks one `uploads` or `uploaded` request may name: a signature, or an etcd read and an S3 HEAD, each (ADR 80). */
export const maxBlockUploads = 500;
export const blockUploadsBody = z.strictObject({ blocks: z.array(blockRef).max(maxBlockUploads) });
export const blockUploadTargetsBody = z.strictObject({
  blocks: z.array(blockRef).max(maxBlockUploads),
  checkStore: z.boolean().optional(),
});

export const commitEntryBody = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('file'),
    blocks: z.array(blockRef).max(maxBlocksPerRequest),
    mtime: z.iso.datetime().optional(),
  }),
  z.strictObject({ kind: z.literal('directory'), mtime: z.iso.datetime().optional() }),
]);

const mtimeText = z.iso.datetime();

/** The `mtime` query parameter of a file written whole: an RFC 3339 time as a commit body's `mtime`, or absent. */
export function mtimeParam(value: string | undefined): string | undefined {
  return value === undefined ? undefined : validate(mtimeText, value, 'mtime');
}

export type CommitEntryBody = z.infer<typeof commitEntryBody>;
export type BlockRef = z.infer<typeof blockRef>;

/** Raised when a body or parameter fails validation; `field` is its dotted path. */
export class ValidationError extends MeshworkError {
  readonly field: string;

  constructor(field: string, message: string) {
    super('invalid_request', `${field}: ${message}`);
    this.field = field;
  }
}

/** Parses `value` with `schema`, raising a ValidationError that names the first bad field. */
export function validate<T>(schema: z.ZodType<T>, value: unknown, root = 'body'): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = [root, ...issue.path.map(String)].join('.');
  const message = issue.code === 'unrecognized_keys' ? `unknown field ${issue.keys.join(', ')}` : issue.message;
  throw new ValidationError(field, message);
}
