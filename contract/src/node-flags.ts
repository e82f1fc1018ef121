// Node.js flags the data-plane processes run with. The operator passes them to its pods as
// NODE_OPTIONS; tests and benchmarks pass them on the command line
// (`node <flags> dataplane/src/main.ts <role>`), so both run the process the same way.

/**
 * A young generation of 2 MiB per semi-space (the default is 16): streaming workloads make
 * few JS objects but many socket buffers, whose memory is only returned when the small JS
 * objects owning them are collected; smaller semi-spaces collect them sooner and keep the
 * resident size flat. CPU cost was within the noise of our measurements at 2 MiB and 1 MiB;
 * 2 MiB makes fewer collections. `--expose-gc` gives the byte pacer (gc-pacer.ts, ADR 75) its
 * collector.
 */
export const dataplaneNodeFlags: readonly string[] = ['--max-semi-space-size=2', '--expose-gc'];

/** The same flags as one NODE_OPTIONS value. */
export const dataplaneNodeOptions: string = dataplaneNodeFlags.join(' ');
