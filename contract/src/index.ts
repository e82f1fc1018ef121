// What every Meshwork role and program must agree on, in one module at the bottom of the
// dependency graph: it imports nothing of Meshwork's own.
export * from './errors.ts';
export * from './config-error.ts';
export * from './exit-codes.ts';
export * from './env.ts';
export * from './ports.ts';
export * from './health.ts';
export * from './labels.ts';
export * from './gc-pacer.ts';
export * from './node-flags.ts';
export * from './slots.ts';
export * from './byte-size.ts';
export * from './slot-map.ts';
export * from './sessions.ts';
export * from './grants.ts';
