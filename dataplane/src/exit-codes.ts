// The data plane's exit codes are part of the contract the operator's watchdog reads
// (@meshwork/contract, exit-codes.ts); this module keeps the data plane's imports short.
export { ExitCode, type ExitCodeValue } from '@meshwork/contract';
