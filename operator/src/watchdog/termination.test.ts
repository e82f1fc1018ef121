// The watchdog reads the deaths the data plane reports: each termination is made here by the
// data plane's own code (its exit codes, its VolumeFaultError and ConfigError, the message as
// termination.ts writes it), so a change on either side that breaks the classification fails here.
import { ExitCode, formatTerminationMessage } from '@meshwork/contract';
import { describe, expect, it } from 'vitest';
import { parsePartitionConfig } from '../../../dataplane/src/config.ts';
import { VolumeFaultError } from '../../../dataplane/src/health/volumes.ts';
import { classifyMember, isVolumeFault, watchdogSettings, type MemberSignals, type Verdict } from './ladder.ts';

const s = 1000;
const now = 1_000_000 * s;
const settings = watchdogSettings({ tolerationSeconds: 60, healthyResetSeconds: 600, nodeLostSeconds: 300, recoverySeconds: 180 });

/** A member that died with `exitCode` and the message the data plane wrote. */
function diedWith(exitCode: number, reason: string): MemberSignals {
  return {
    podCreated: now - 3600 * s,
    scheduled: true,
    ready: false,
    terminating: false,
    deepCheck: 'unknown',
    node: { ready: true, leaseRenewed: now - 5 * s, leaseDurationMs: 40 * s },
    lastTermination: { exitCode, message: formatTerminationMessage(reason), finishedAt: now - s },
  };
}

/** The message of the ConfigError the data plane raises for this environment. */
function configErrorMessage(env: NodeJS.ProcessEnv): string {
  try {
    parsePartitionConfig(env, () => 'a-token-of-sixteen-characters');
  } catch (err) {
    return (err as Error).message;
  }
  return expect.unreachable('the configuration was accepted');
}

describe('the data plane’s terminations, as the watchdog reads them', () => {
  const volumeFault = new VolumeFaultError('/var/lib/meshwork/data-1', 'writing the probe failed: EROFS: read-only file system').message;
  const badSlots = configErrorMessage({ MESHWORK_PARTITION: 'p0', MESHWORK_SLOTS: '0-5000' });

  it.each<[string, number, string, Verdict['kind']]>([
    ['a volume fault with its exit code', ExitCode.volumeFault, volumeFault, 'volumeFault'],
    ['a volume fault reported by a process that died otherwise', ExitCode.unexpected, volumeFault, 'volumeFault'],
    ['invalid configuration', ExitCode.configInvalid, badSlots, 'misconfigured'],
    ['a role this image does not have', ExitCode.usage, 'usage: main.ts <role>', 'misconfigured'],
    ['stores unreachable at start', ExitCode.storeUnreachable, 'stores unreachable for 30 s', 'storesUnreachable'],
    ['an address it cannot listen on', ExitCode.listenFailed, 'cannot listen on 198.18.0.7:8080', 'listenFailed'],
    ['a lost slot lease, an ordinary crash', ExitCode.ownershipLost, 'lost the etcd lease', 'failing'],
  ])('classifies %s', (_case, exitCode, reason, kind) => {
    expect(classifyMember(diedWith(exitCode, reason), now, settings).kind).toBe(kind);
  });

  it('recognises the volume-fault message, and only it, whatever the code', () => {
    expect(isVolumeFault({ exitCode: ExitCode.unexpected, message: formatTerminationMessage(volumeFault) })).toBe(true);
    expect(isVolumeFault({ exitCode: ExitCode.unexpected, message: formatTerminationMessage(badSlots) })).toBe(false);
  });

  it('shows the configuration error as the data plane wrote it, naming the variable', () => {
    const verdict = classifyMember(diedWith(ExitCode.configInvalid, badSlots), now, settings);
    expect(verdict).toEqual({ kind: 'misconfigured', reason: 'InvalidConfiguration', message: badSlots });
    expect(badSlots).toMatch(/^invalid configuration: MESHWORK_SLOTS: /);
  });
});
