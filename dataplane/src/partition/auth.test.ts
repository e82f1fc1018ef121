import { describe, expect, it } from 'vitest';
import { hashSecret, mintToken, parseToken } from './auth.ts';

describe('tokens', () => {
  it.each(['user', 'device'] as const)('mints a %s token that parses back and matches its stored hash', (kind) => {
    const { token, tokenHash } = mintToken(kind, 'uAbC_-1');
    const parsed = parseToken(token);
    expect(parsed).toMatchObject({ kind, id: 'uAbC_-1' });
    expect(hashSecret(parsed!.secret)).toBe(tokenHash);
    expect(token).not.toContain(tokenHash);
  });

  it.each(['', 'mwu.abc', 'mwx.abc.' + 'a'.repeat(43), 'mwu.a.b.' + 'a'.repeat(43), 'mwd.abc.' + 'a'.repeat(42), 'Bearer mwu.abc.' + 'a'.repeat(43)])(
    'refuses %j',
    (token) => {
      expect(parseToken(token)).toBeUndefined();
    },
  );
});
