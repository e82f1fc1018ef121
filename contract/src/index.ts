// What every Meshwork role and program must agree on, in one module at the bottom of the
// dependency graph: it imports nothing of Meshwork's own.
export * from './errors.ts';
