// Writes (or with `--check`, checks) the chart's CRD templates: the CRDs are defined in
// operator/src/api/v1alpha1.ts and operator/src/api/generate-crds.ts writes them, with crds/,
// so this entry point only runs that script (`make crds`; `make chart-crds` is the same).
await import('../operator/src/api/generate-crds.ts');
