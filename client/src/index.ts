// @meshwork/client: the one typed client of Meshwork's public API.
export { ApiError, MeshworkError } from '@meshwork/contract';
