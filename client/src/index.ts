// @meshwork/client: the one typed client of Meshwork's public API (docs/api.md), for the device
// agent, the gateway's tests, the web UI, the prober, benchmarks and tests. This entry point runs
// in browsers and Node alike; files on disk and raw HTTP are in `@meshwork/client/node`.
export { ApiError, MeshworkError, apiErrorCatalogue, type ApiErrorCode } from '@meshwork/contract/errors';
export { MeshworkClient, NotificationWatch, requestSpanName, wholeUnaskedBytes } from './client.ts';
export { formatBytes } from './sizes.ts';
export type {
  BlockSending,
  BlockBytes,
  ByteRange,
  CallOptions,
  ClientOptions,
  ClientTracing,
  CommitResult,
  ContentAnswer,
  ContentOptions,
  DeviceClient,
  EntryAnswer,
  RawRequest,
  RawResponse,
  RetryInfo,
  UploadOptions,
  UploadResult,
} from './client.ts';
export {
  NetworkError,
  RequestAbortedError,
  RequestTimeoutError,
  UnexpectedAnswerError,
  errorFromAnswer,
  isRetryableAnswer,
  type AnswerError,
} from './errors.ts';
export { defaultRetryPolicy, isSafeToRepeat, parseRetryAfter, retryDelayMs, type RetryPolicy } from './retry.ts';
export { asEtag, encodePath } from './paths.ts';
export { contentHashOf, maxBlockSize, sha256Hex, splitBlocks, type UploadSource } from './blocks.ts';
export type * from './types.ts';
