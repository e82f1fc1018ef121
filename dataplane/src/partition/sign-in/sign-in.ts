// Signing people in (ADR 42): passwords set by the user (with its account token, or with the
// current password from a signed-in session) or reset by the administrator; sign-in checks the
// lock-outs per account (etcd) and per client address (this process), then the password, and
// creates a session: a credential under a lease, which the credential watch of every process
// drops when it is deleted (sign out, sign out everywhere, a password change or reset).
import { ApiError, parseSessionToken } from '@meshwork/contract';
import type { Logger } from 'pino';
import { mintIdInSlot, slotOf } from '../../slots.ts';
import type { MetadataStore } from '../../stores/metadata-store.ts';
import { csrfTokenOf, mintSessionToken, type Principal } from '../auth.ts';
import { invalidRequest } from '../errors.ts';
import type { AddressFailures } from './lockout.ts';
import { afterFailure, lockedForMillis, retryAfterSeconds, signInLimits } from './lockout.ts';
import { hashPassword, passwordProblem, verifyNothing, verifyPassword } from './passwords.ts';

/** How long a session lasts from sign-in (12 hours); signing in again starts a new one. */
export const sessionLifetimeSeconds = 12 * 3600;

/** What sign-in needs: the metadata store, this process's address counts, a clock and a logger. */
export interface SignInDeps {
  metadata: Pick<
    MetadataStore,
    'getPassword' | 'setPassword' | 'getSignInFailures' | 'putSignInFailures' | 'createSession' | 'listSessions' | 'deleteSessions'
  >;
  addresses: AddressFailures;
  now: () => number;
  logger: Logger;
}

/** A new session as sign-in answers it; `token` goes into the cookie only. */
export interface NewSession {
  userId: string;
  sessionId: string;
  expiresAt: string;
  csrfToken: string;
  token: string;
}

function locked(millis: number, what: string): ApiError {
  const seconds = retryAfterSeconds(millis);
  return new ApiError('sign_in_locked', `too many wrong passwords ${what}; retry after ${seconds} s`, {
    headers: { 'Retry-After': String(seconds) },
    details: { retryAfterSeconds: seconds },
  });
}

const wrongPassword = (): ApiError => new ApiError('unauthenticated', 'the user id or the password is wrong');

/**
 * Sets `userId`'s password for `caller`: the administrator (a reset: every session ends), the
 * user's account token (every session ends), or one of its sessions with the current password
 * (the user's other sessions end).
 */
export async function setPassword(
  deps: SignInDeps,
  caller: Principal,
  userId: string,
  input: { password: string; currentPassword?: string | undefined },
): Promise<void> {
  if (caller.kind === 'device') throw new ApiError('forbidden', 'a device token cannot set a password; use the account token');
  if (caller.kind !== 'admin' && caller.userId !== userId) throw new ApiError('forbidden', 'a user may set only its own password');
  const problem = passwordProblem(input.password);
  if (problem !== undefined) throw invalidRequest('body.password', problem);
  if (caller.kind === 'session') {
    const current = await deps.metadata.getPassword(userId);
    if (input.currentPassword === undefined)
      throw invalidRequest('body.currentPassword', 'body.currentPassword: is required from a session');
    if (current === undefined || !(await verifyPassword(input.currentPassword, current.hash))) {
      throw new ApiError('forbidden', 'the current password is wrong');
    }
  }
  const hash = await hashPassword(input.password);
  if (!(await deps.metadata.setPassword(userId, { hash, setAt: new Date(deps.now()).toISOString() }))) {
    throw new ApiError('not_found', `user ${userId} not found`);
  }
  const sessions = await deps.metadata.listSessions(userId);
  const ending = caller.kind === 'session' ? sessions.filter((id) => id !== caller.sessionId) : sessions;
  await deps.metadata.deleteSessions(userId, ending);
  deps.logger.info({ userId, by: caller.kind, endedSessions: ending.length }, caller.kind === 'admin' ? 'Reset password' : 'Set password');
}

/** Signs `userId` in from `address` with `password`: a new session, or 401 (wrong) or 429 (locked, with Retry-After). */
export async function signIn(deps: SignInDeps, userId: string, password: string, address: string): Promise<NewSession> {
  const now = deps.now();
  const addressLock = deps.addresses.lockedFor(address, now);
  if (addressLock > 0) throw locked(addressLock, 'from this address');
  const failures = await deps.metadata.getSignInFailures(userId);
  const accountLock = lockedForMillis(failures.value, now);
  if (accountLock > 0) throw locked(accountLock, 'for this account');
  const stored = await deps.metadata.getPassword(userId);
  const right = stored === undefined ? (await verifyNothing(password), false) : await verifyPassword(password, stored.hash);
  if (!right) {
    deps.addresses.fail(address, now);
    // Unknown users are counted per address only: no record is written for an id nobody owns.
    if (stored !== undefined) await countFailure(deps, userId, failures, now);
    deps.logger.info({ userId, address }, 'Refused a sign-in with a wrong password');
    throw wrongPassword();
  }
  deps.addresses.succeed(address);
  if (failures.value !== undefined) await deps.metadata.putSignInFailures(userId, failures.version, undefined);
  const sessionId = mintIdInSlot('s', slotOf(userId));
  const { token, tokenHash } = mintSessionToken(sessionId);
  const expiresAt = new Date(now + sessionLifetimeSeconds * 1000).toISOString();
  if (!(await deps.metadata.createSession(sessionId, { kind: 'session', userId, tokenHash, expiresAt }, sessionLifetimeSeconds))) {
    throw new ApiError('conflict', 'a session id was taken; sign in again');
  }
  deps.logger.info({ userId, sessionId }, 'Signed in');
  // The CSRF token derives from the token's secret.
  const secret = parseSessionToken(token)?.secret ?? '';
  return { userId, sessionId, expiresAt, csrfToken: csrfTokenOf(secret), token };
}

async function countFailure(
  deps: SignInDeps,
  userId: string,
  first: { value: Awaited<ReturnType<SignInDeps['metadata']['getSignInFailures']>>['value']; version: number },
  now: number,
): Promise<void> {
  let current = first;
  // Concurrent wrong passwords race on the record; each one must count.
  for (let attempt = 0; attempt < 5; attempt++) {
    if (await deps.metadata.putSignInFailures(userId, current.version, afterFailure(current.value, now, signInLimits))) return;
    current = await deps.metadata.getSignInFailures(userId);
  }
  deps.logger.warn({ userId }, 'Failed to count a wrong password: the failure record kept changing');
}

/** Ends one session (sign out). */
export async function signOut(deps: SignInDeps, caller: Extract<Principal, { kind: 'session' }>): Promise<void> {
  await deps.metadata.deleteSessions(caller.userId, [caller.sessionId]);
  deps.logger.info({ userId: caller.userId, sessionId: caller.sessionId }, 'Signed out');
}

/** Ends every session of the caller's user (sign out everywhere); the number ended. */
export async function signOutEverywhere(deps: SignInDeps, userId: string): Promise<number> {
  const sessions = await deps.metadata.listSessions(userId);
  await deps.metadata.deleteSessions(userId, sessions);
  deps.logger.info({ userId, endedSessions: sessions.length }, 'Signed out everywhere');
  return sessions.length;
}
