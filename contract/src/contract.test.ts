// The contract's own rules, apart from either side: the environment schema's defaults and field
// naming, the termination message format, the slot-range text form, the unsuitable-node label.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, parseEnvironment } from './config-error.ts';
import { PartitionEnv, partitionEnvSchema } from './env.ts';
import {
  ExitCode,
  formatTerminationMessage,
  isVolumeFaultTermination,
  maxTerminationMessageLength,
  volumeFaultMessage,
} from './exit-codes.ts';
import { MeshworkError } from './errors.ts';
import { unsuitableNodeLabel } from './labels.ts';
import { dataplaneNodeFlags, dataplaneNodeOptions } from './node-flags.ts';
import { formatSlotRanges, parseSlotRanges, SlotRangeError } from './slots.ts';

const minimal = {
  [PartitionEnv.partition]: 'p0',
  [PartitionEnv.slots]: '0-1023',
  [PartitionEnv.etcdEndpoints]: 'http://etcd:2379',
  [PartitionEnv.s3Endpoint]: 'http://minio:9000',
  [PartitionEnv.s3Bucket]: 'blocks',
};

describe('the partition environment schema', () => {
  it('fills every default', () => {
    const env = parseEnvironment(partitionEnvSchema, minimal);
    expect(env).toMatchObject({
      [PartitionEnv.listen]: { host: '0.0.0.0', port: 8080 },
      [PartitionEnv.s3Region]: 'us-east-1',
      [PartitionEnv.terminationMessagePath]: '/dev/termination-log',
      [PartitionEnv.logLevel]: 'info',
      [PartitionEnv.dataDirs]: [],
      [PartitionEnv.throttleUserBytesPerSecond]: 64 * 2 ** 20,
      [PartitionEnv.throttleMaxEntryBytes]: 16 * 2 ** 30,
      [PartitionEnv.throttleConcurrencyMax]: 512,
    });
  });

  it.each([
    [{ [PartitionEnv.partition]: undefined }, PartitionEnv.partition, 'is required'],
    [{ [PartitionEnv.etcdEndpoints]: 'http://etcd:2379,etcd:2380' }, PartitionEnv.etcdEndpoints, 'http'],
    [
      { [PartitionEnv.throttleConcurrencyMin]: '9', [PartitionEnv.throttleConcurrencyMax]: '8' },
      PartitionEnv.throttleConcurrencyMin,
      'must not exceed',
    ],
  ])('names the variable at fault for %j', (override, field, message) => {
    const env: Record<string, string | undefined> = { ...minimal, ...override };
    const error = (() => {
      try {
        parseEnvironment(partitionEnvSchema, env);
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toBeInstanceOf(MeshworkError);
    expect(error).toMatchObject({ code: 'config_invalid', field, name: 'ConfigError' });
    expect((error as ConfigError).message).toMatch(new RegExp(`^invalid configuration: ${field}: .*${message}`));
  });

  it('names a setting of any schema the same way', () => {
    expect(() => parseEnvironment(z.object({ X: z.coerce.number().int() }), { X: 'many' })).toThrow(/^invalid configuration: X: /);
  });
});

describe('termination messages', () => {
  it('are one line, cut to the length the kubelet keeps', () => {
    expect(formatTerminationMessage('stores\nunreachable   for\t30 s')).toBe('stores unreachable for 30 s');
    expect(formatTerminationMessage('x'.repeat(10_000))).toHaveLength(maxTerminationMessageLength);
  });

  it.each([
    [{ exitCode: ExitCode.volumeFault }, true],
    [{ exitCode: ExitCode.unexpected, message: volumeFaultMessage('/data-0', 'EIO') }, true],
    [{ exitCode: ExitCode.unexpected, message: '  Volume fault: /data-0: EIO' }, true],
    [{ exitCode: ExitCode.unexpected, message: 'uncaught exception: volume fault: /data-0' }, false],
    [{ exitCode: ExitCode.configInvalid, message: 'invalid configuration: MESHWORK_DATA_DIRS: must list absolute paths' }, false],
  ])('tell a volume fault: %j', (termination, fault) => {
    expect(isVolumeFaultTermination(termination)).toBe(fault);
  });
});

describe('slot ranges', () => {
  it.each([
    ['0-1023', '0-1023'],
    ['2048-2100, 7,0-5', '0-5,7,2048-2100'],
    ['4095', '4095'],
  ])('read %s and write it back as %s', (text, written) => {
    expect(formatSlotRanges(parseSlotRanges(text))).toBe(written);
  });

  it.each(['0-4096', '10-5', '0-10,5-20', 'a', ''])('refuse %j', (text) => {
    expect(() => parseSlotRanges(text)).toThrow(SlotRangeError);
  });
});

describe('the unsuitable-node label', () => {
  it('names the partition, and stays a valid, distinct label name for long names', () => {
    expect(unsuitableNodeLabel('tenant-a', 'p0')).toBe('unsuitable.meshwork.io/tenant-a.p0');
    const long = unsuitableNodeLabel('n'.repeat(40), 'p'.repeat(40));
    expect(long.split('/')[1]).toHaveLength(63);
    expect(unsuitableNodeLabel('n'.repeat(40), `${'p'.repeat(39)}q`)).not.toBe(long);
  });
});

describe('node flags', () => {
  it('reach NODE_OPTIONS as the same flags', () => {
    expect(dataplaneNodeOptions.split(' ')).toEqual(dataplaneNodeFlags);
  });
});
