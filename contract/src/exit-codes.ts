// How a data-plane process reports its own death, agreed between the data plane (which exits)
// and the operator's watchdog (which reads `lastState.terminated`): the classified exit codes
// and the one-line termination message, including the prefixes the watchdog recognises. A code
// or prefix renamed on one side only would silently blind the watchdog, so both import this.

/** How a data-plane process ended; the watchdog maps each code to a remedy. */
export const ExitCode = {
  /** Clean shutdown after SIGTERM. */
  ok: 0,
  /** An invariant broke in a way no other code describes (a bug): restart. */
  unexpected: 1,
  /** The configuration is invalid; restarting the same pod cannot help. */
  configInvalid: 2,
  /** etcd or S3 stayed unreachable past the start-up deadline: systemic, not this pod. */
  storeUnreachable: 3,
  /** A local volume failed (I/O error, read-only, full): recreate the volume. */
  volumeFault: 4,
  /** The process lost its slot lease or was fenced by a newer owner: restart. */
  ownershipLost: 5,
  /** The listen address could not be bound (port in use, address not local). */
  listenFailed: 6,
  /** The command line named no role, or a role this image does not implement. */
  usage: 64,
} as const;

/** One of the classified exit codes. */
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** How the operator process ended, for whoever restarts it and a person reading `lastState`. */
export const OperatorExitCode = {
  /** A setting in its environment is invalid; the message names it. */
  configInvalid: 2,
  /** It could not renew its leader Lease in time and stopped, so two leaders never act at once. */
  leadershipLost: 3,
  /** It failed to start (the API server unreachable, its credentials unusable). */
  startFailed: 4,
} as const;

/** Where Kubernetes reads a container's termination message unless the pod says otherwise. */
export const defaultTerminationMessagePath = '/dev/termination-log';

/**
 * Longest termination message written, in characters. The kubelet keeps at most 4096 bytes of
 * the file (and less when many containers share the pod's 12 KiB); the watchdog reads its start.
 */
export const maxTerminationMessageLength = 4000;

/** The start of the message of a volume-fault exit; the watchdog treats a message starting so as a volume fault. */
export const volumeFaultMessagePrefix = 'volume fault:';

/** The start of the message of a configuration-invalid exit. */
export const configInvalidMessagePrefix = 'invalid configuration:';

/** The termination message as written: one line, whitespace runs folded, at most the length kept. */
export function formatTerminationMessage(reason: string): string {
  return reason.replace(/\s+/g, ' ').slice(0, maxTerminationMessageLength);
}

/** The termination message of a volume that cannot be trusted: `volume fault: <dir>: <reason>`. */
export function volumeFaultMessage(dir: string, reason: string): string {
  return `${volumeFaultMessagePrefix} ${dir}: ${reason}`;
}

/** The message of invalid configuration, naming the bad field: `invalid configuration: <FIELD>: <reason>`. */
export function configInvalidMessage(field: string, reason: string): string {
  return `${configInvalidMessagePrefix} ${field}: ${reason}`;
}

/** Whether a container's last termination is a data-plane volume fault, by its exit code or its message. */
export function isVolumeFaultTermination(termination: { exitCode: number; message?: string | undefined }): boolean {
  if (termination.exitCode === ExitCode.volumeFault) return true;
  return (termination.message ?? '').trimStart().toLowerCase().startsWith(volumeFaultMessagePrefix);
}
