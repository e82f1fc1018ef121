// Ports the roles listen on by default. The data plane's port is in its pods' listen address,
// the StatefulSet's container port and probes, both Services, and the watchdog's probe: one
// number, here.

/** The data plane's HTTP port: API, probes and metrics on one port. */
export const dataplaneHttpPort = 8080;

/** The operator's HTTP port (metrics and its own health), distinct so both may share a host. */
export const operatorHttpPort = 8081;

/** The name of the data plane's port in pod specs and Services, which probes and Services refer to. */
export const dataplaneHttpPortName = 'http';
