// The data plane's Node.js flags are part of the contract (@meshwork/contract, node-flags.ts):
// the operator passes them to pods as NODE_OPTIONS, tests and benchmarks on the command line.
export { dataplaneNodeFlags } from '@meshwork/contract';
