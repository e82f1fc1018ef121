// The UI's one API client (@meshwork/client) on the page's own origin. The session cookie goes
// with every request by itself (same origin); the session's CSRF token is added to every
// request that changes something (ADR 42), and sign-in and sign-out are the session routes.
import { ApiError, MeshworkClient } from '@meshwork/client';

let csrfToken: string | undefined;

/** fetch with the session's CSRF token on every state-changing request. */
export const sessionFetch: typeof fetch = (input, init) => {
  const method = (init?.method ?? 'GET').toUpperCase();
  if (csrfToken === undefined || method === 'GET' || method === 'HEAD') return fetch(input, { ...init, credentials: 'same-origin' });
  const headers = new Headers(init?.headers);
  headers.set('x-csrf-token', csrfToken);
  return fetch(input, { ...init, headers, credentials: 'same-origin' });
};

/** The client every page uses. */
export const api = new MeshworkClient({ baseUrl: location.origin, fetch: sessionFetch, retry: { maxAttempts: 2 } });

/** Who is signed in. */
export interface SessionInfo {
  userId: string;
  sessionId: string;
}

/** The current session, or undefined when the browser is not signed in. */
export async function currentSession(): Promise<SessionInfo | undefined> {
  const answer = await api.raw<{ userId: string; sessionId: string; csrfToken: string }>('GET', '/v1/me/session');
  if (answer.status === 401) return undefined;
  if (answer.status !== 200 || answer.body === undefined) throw new Error(`GET /v1/me/session answered ${answer.status}`);
  csrfToken = answer.body.csrfToken;
  return { userId: answer.body.userId, sessionId: answer.body.sessionId };
}

/** Signs in; throws ApiError (401 wrong password, 429 locked) with the server's message. */
export async function signIn(userId: string, password: string): Promise<SessionInfo> {
  const answer = await api.raw<{ userId: string; sessionId: string; csrfToken: string; error?: { code: string; message: string } }>(
    'POST',
    `/v1/users/${encodeURIComponent(userId)}/sessions`,
    { body: { password } },
  );
  if (answer.status !== 201 || answer.body === undefined) throw errorOf(answer.status, answer.body, answer.headers['retry-after']);
  csrfToken = answer.body.csrfToken;
  return { userId: answer.body.userId, sessionId: answer.body.sessionId };
}

/** Signs this browser out, or every session of the user. */
export async function signOut(everywhere: boolean): Promise<void> {
  const answer = await api.raw('DELETE', everywhere ? '/v1/me/sessions' : '/v1/me/session');
  csrfToken = undefined;
  if (answer.status >= 400 && answer.status !== 401) throw errorOf(answer.status, answer.body, undefined);
}

function errorOf(status: number, body: unknown, retryAfter: string | undefined): Error {
  const error = (body as { error?: { code?: string; message?: string } } | undefined)?.error;
  const message = error?.message ?? `the server answered ${status}`;
  if (status === 429) return new Error(`${message}${retryAfter === undefined ? '' : ` (try again in ${retryAfter} s)`}`);
  if (status === 400 && error?.code === 'invalid_request') return new Error('Enter a user id of letters, digits, - and _.');
  if (status === 401) return new Error('The user id or the password is wrong.');
  return new Error(message);
}

/** A message a person can act on, for any error a page meets. */
export function describeError(err: unknown): string {
  if (err instanceof ApiError) {
    switch (err.code) {
      case 'insufficient_storage':
        return 'Your storage quota is full: delete something or ask the administrator for more space.';
      case 'forbidden':
        return `You may not do this here: ${err.message}`;
      case 'not_found':
        return 'It is not there any more (or you may not see it).';
      case 'unauthenticated':
        return 'Your session has ended: sign in again.';
      case 'precondition_failed':
        return 'It changed meanwhile: reload and try again.';
      default:
        return err.message;
    }
  }
  if (!navigator.onLine) return 'You are offline: check the connection and try again.';
  if (err instanceof TypeError) return 'The mesh could not be reached: check the connection and try again.';
  return err instanceof Error ? err.message : String(err);
}
