// The signed-in person's account: changing the password (the current one is asked; the user's
// other sessions end) and how much storage is used.
import { useEffect, useState } from 'preact/hooks';
import type { Me } from '@meshwork/client';
import { api, describeError } from '../api.ts';
import { formatSize } from '../listing.ts';

/** The account page. */
export function AccountPage({ userId }: { userId: string }) {
  const [me, setMe] = useState<Me | undefined>();
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [message, setMessage] = useState<{ ok: boolean; text: string } | undefined>();
  useEffect(() => {
    api.me().then(setMe, (err: unknown) => setMessage({ ok: false, text: describeError(err) }));
  }, []);
  const change = (event: Event): void => {
    event.preventDefault();
    setMessage(undefined);
    api.raw('PUT', `/v1/users/${encodeURIComponent(userId)}/password`, { body: { password: next, currentPassword: current } }).then(
      (answer) => {
        if (answer.status === 204) {
          setCurrent('');
          setNext('');
          setMessage({ ok: true, text: 'Password changed. Your other sessions were signed out.' });
          return;
        }
        const error = (answer.body as { error?: { code?: string; message?: string } } | undefined)?.error;
        const text =
          answer.status === 403
            ? 'The current password is wrong.'
            : error?.code === 'invalid_request'
              ? `The new password ${(error.message ?? '').replace(/^password: /, '')}.`
              : (error?.message ?? `The server answered ${answer.status}.`);
        setMessage({ ok: false, text });
      },
      (err: unknown) => setMessage({ ok: false, text: describeError(err) }),
    );
  };
  return (
    <section>
      <h1>Account</h1>
      <p>
        User id: <code>{userId}</code>
        {me && <> · {me.name}</>}
      </p>
      {me && (
        <p>
          Storage: {formatSize(me.storage.usedBytes)}
          {me.storage.quotaBytes === null ? ' (no quota)' : ` of ${formatSize(me.storage.quotaBytes)}`}
        </p>
      )}
      <h2>Change password</h2>
      <form onSubmit={change} class="sign-in-form">
        <label for="current-password">Current password</label>
        <input
          id="current-password"
          type="password"
          autocomplete="current-password"
          required
          value={current}
          onInput={(e) => setCurrent(e.currentTarget.value)}
        />
        <label for="new-password">New password (at least 10 characters)</label>
        <input
          id="new-password"
          type="password"
          autocomplete="new-password"
          required
          minLength={10}
          value={next}
          onInput={(e) => setNext(e.currentTarget.value)}
        />
        {message && (
          <p role={message.ok ? 'status' : 'alert'} class={message.ok ? 'ok' : 'error'}>
            {message.text}
          </p>
        )}
        <button type="submit">Change password</button>
      </form>
    </section>
  );
}
