// Exit codes of every data-plane role, in one place: the operator's watchdog classifies a
// pod's death by the code in `lastState.terminated` and by its termination message.

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

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];
