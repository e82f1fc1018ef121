#!/usr/bin/env node
// The `meshwork` command a person installs on a device: `node client/src/cli/meshwork.ts`, or
// `npx meshwork` after `npm ci`. It turns on Node's module compile cache, then loads the program
// (start.ts): the cache keeps each module's type-stripped and compiled code, so from the second
// run of an unchanged program on, Node neither strips the modules' types again nor loads its
// type stripper's WebAssembly for them, about 20 MB less memory for the life of the process
// (`meshwork sync` runs for days). A cache that cannot be written changes nothing but that.
import { enableCompileCache } from 'node:module';

enableCompileCache();
await import('./start.ts');
