// Sign in with the user id the administrator gave and the password set for it.
import { useState } from 'preact/hooks';
import { signIn, type SessionInfo } from '../api.ts';

/** The sign-in form. */
export function SignInPage({ onSignedIn }: { onSignedIn: (session: SessionInfo) => void }) {
  const [userId, setUserId] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const submit = (event: Event): void => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    signIn(userId.trim(), password).then(onSignedIn, (err: unknown) => {
      setError(err instanceof Error ? err.message : String(err));
      setBusy(false);
    });
  };
  return (
    <main class="sign-in">
      <h1>Sign in to Meshwork</h1>
      <form onSubmit={submit}>
        <label for="user-id">User id</label>
        <input
          id="user-id"
          name="username"
          autocomplete="username"
          required
          value={userId}
          onInput={(e) => setUserId(e.currentTarget.value)}
        />
        <label for="password">Password</label>
        <input
          id="password"
          name="password"
          type="password"
          autocomplete="current-password"
          required
          value={password}
          onInput={(e) => setPassword(e.currentTarget.value)}
        />
        {error && (
          <p role="alert" class="error">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
