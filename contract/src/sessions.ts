// The sign-in session cookie, which the gateway (routing by the caller's slot) and the partition
// (authenticating it) must read alike (ADR 42). Its value is a session token `mws.{id}.{secret}`:
// the id is minted in the user's slot, so the gateway routes a cookie's requests like the
// user's account token, without a store read.

/** The session cookie's name. */
export const sessionCookieName = 'mw_session';

/** The header a signed-in page sends on every state-changing request (the session's CSRF token). */
export const csrfHeaderName = 'x-csrf-token';

const sessionTokenPattern = /^mws\.([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{43})$/;

/** The session token in a Cookie header; undefined when there is none (or it is not one of ours). */
export function sessionTokenOf(cookieHeader: string | undefined): string | undefined {
  if (cookieHeader === undefined) return undefined;
  for (const part of cookieHeader.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== sessionCookieName) continue;
    const value = part.slice(eq + 1).trim();
    if (sessionTokenPattern.test(value)) return value;
  }
  return undefined;
}

/** The id and secret of a session token; undefined if it is not one. */
export function parseSessionToken(token: string): { id: string; secret: string } | undefined {
  const match = sessionTokenPattern.exec(token);
  return match ? { id: match[1]!, secret: match[2]! } : undefined;
}

/** The session id of the session cookie in a Cookie header (the gateway routes by its slot). */
export function sessionSubject(cookieHeader: string | undefined): { kind: 'session'; id: string } | undefined {
  const token = sessionTokenOf(cookieHeader);
  const parsed = token === undefined ? undefined : parseSessionToken(token);
  return parsed === undefined ? undefined : { kind: 'session', id: parsed.id };
}
