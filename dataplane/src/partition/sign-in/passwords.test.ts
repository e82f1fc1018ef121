import { describe, expect, it } from 'vitest';
import { hashPassword, passwordProblem, scryptParameters, verifyPassword } from './passwords.ts';

describe('passwords', () => {
  it('hash with the recorded scrypt parameters and a fresh salt, and verify only the right password', async () => {
    const [a, b] = await Promise.all([hashPassword('correct horse battery'), hashPassword('correct horse battery')]);
    expect(a).toMatch(
      new RegExp(`^scrypt\\$${scryptParameters.logN}\\$${scryptParameters.r}\\$${scryptParameters.p}\\$[\\w-]{22}\\$[\\w-]{43}$`),
    );
    expect(a).not.toBe(b);
    expect(await verifyPassword('correct horse battery', a)).toBe(true);
    expect(await verifyPassword('correct horse batterY', a)).toBe(false);
  });

  it.each(['', 'plain', 'scrypt$15$8$1$short$short', 'scrypt$30$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'])(
    'refuse a stored form they do not know: %j',
    async (stored) => {
      expect(await verifyPassword('anything at all', stored)).toBe(false);
    },
  );

  it.each<[string, string | undefined]>([
    ['123456789', 'password: must be at least 10 characters'],
    ['1234567890', undefined],
    ['ü'.repeat(10), undefined],
    ['x'.repeat(257), 'password: must be at most 256 characters'],
  ])('%j: %s', (password, problem) => {
    expect(passwordProblem(password)).toBe(problem);
  });
});
