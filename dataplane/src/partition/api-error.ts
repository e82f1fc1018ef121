// The partition's former error constructor, ApiError(status, code, message, details, headers),
// kept only as an adapter for callers not yet moved to the catalogue's ApiError in
// @meshwork/contract (which every partition module uses). The status must be the catalogue's.
import { ApiError as CatalogueApiError, statusOf, type ApiErrorCode } from '@meshwork/contract';

/**
 * @deprecated Throw `ApiError` from `@meshwork/contract`; this positional form checks its status
 * against the catalogue and builds the same error.
 */
export class ApiError extends CatalogueApiError {
  constructor(status: number, code: ApiErrorCode, message: string, details: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
    if (statusOf(code) !== status) throw new TypeError(`error code ${code} is answered with ${statusOf(code)}, not ${status}`);
    super(code, message, { details, headers });
  }
}
