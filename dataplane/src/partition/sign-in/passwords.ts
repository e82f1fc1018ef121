// Passwords of people signing in to the web UI, stored as scrypt hashes (node:crypto): a
// memory-hard function, so that a stolen etcd snapshot costs an attacker 32 MiB and tens of
// milliseconds per guess. The parameters are written into each stored hash, so that stronger
// ones can be chosen later without breaking the passwords already set.
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/** The scrypt parameters of new hashes: N = 2^15, r = 8, p = 1 (128·N·r bytes = 32 MiB of memory), a 16-byte salt, a 32-byte key. */
export const scryptParameters = { logN: 15, r: 8, p: 1, saltBytes: 16, keyBytes: 32 } as const;

/** The shortest and longest password accepted (characters). */
export const passwordLength = { min: 10, max: 256 } as const;

function derive(password: string, salt: Buffer, logN: number, r: number, p: number, keyBytes: number): Promise<Buffer> {
  const N = 2 ** logN;
  return new Promise((resolve, reject) => {
    // maxmem: twice what the parameters need, since node's default (32 MiB) is exactly too small.
    scrypt(password.normalize('NFC'), salt, keyBytes, { N, r, p, maxmem: 256 * N * r * p }, (err, key) => {
      if (err) reject(err);
      else resolve(key);
    });
  });
}

/** Why a password cannot be used, or undefined when it can. */
export function passwordProblem(password: string): string | undefined {
  const length = [...password.normalize('NFC')].length;
  if (length < passwordLength.min) return `password: must be at least ${passwordLength.min} characters`;
  if (length > passwordLength.max) return `password: must be at most ${passwordLength.max} characters`;
  return undefined;
}

/** The stored form of a password: `scrypt$logN$r$p$salt$key` (salt and key base64url). */
export async function hashPassword(password: string): Promise<string> {
  const { logN, r, p, saltBytes, keyBytes } = scryptParameters;
  const salt = randomBytes(saltBytes);
  const key = await derive(password, salt, logN, r, p, keyBytes);
  return ['scrypt', logN, r, p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

const storedPattern = /^scrypt\$(\d{1,2})\$(\d{1,2})\$(\d{1,2})\$([A-Za-z0-9_-]{16,})\$([A-Za-z0-9_-]{32,})$/;

/** Whether `password` matches a stored hash; false for a stored form this code does not know. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const match = storedPattern.exec(stored);
  if (!match) return false;
  const [logN, r, p] = [Number(match[1]), Number(match[2]), Number(match[3])];
  if (logN < 10 || logN > 20 || r < 1 || r > 32 || p < 1 || p > 4) return false;
  const expected = Buffer.from(match[5]!, 'base64url');
  const key = await derive(password, Buffer.from(match[4]!, 'base64url'), logN, r, p, expected.length);
  return timingSafeEqual(key, expected);
}

/** Spends the time of one verification on nothing: a sign-in for an unknown user or one without a password takes as long as a wrong password. */
export async function verifyNothing(password: string): Promise<void> {
  const { logN, r, p, saltBytes, keyBytes } = scryptParameters;
  await derive(password, Buffer.alloc(saltBytes), logN, r, p, keyBytes);
}
