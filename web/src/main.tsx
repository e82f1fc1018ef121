// The web UI (docs/web.md, ADR 43): a signed-in person's shared folders, a folder's files
// (browse, upload, download, rename, move, delete, create a folder, share), devices and
// account, another device's folders through its relay. Pages are chosen by the URL's hash
// (#/, #/o/{id}/{path}, #/devices, #/d/{deviceId}/{objectId}/{path}, #/account), so
// that the gateway serves one index.html and reload, back and forward keep the place.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { currentSession, describeError, signOut, type SessionInfo } from './api.ts';
import { AccountPage } from './pages/account.tsx';
import { BrowsePage } from './pages/browse.tsx';
import { DevicePage } from './pages/device.tsx';
import { DevicesPage } from './pages/devices.tsx';
import { placeOf, type DevicePlace } from './remote.ts';
import { ObjectsPage } from './pages/objects.tsx';
import { SignInPage } from './pages/sign-in.tsx';
import './style.css';

/** The page a hash names. */
type Route =
  | { page: 'objects' }
  | { page: 'browse'; objectId: string; dir: string }
  | { page: 'devices' }
  | { page: 'device'; place: DevicePlace }
  | { page: 'account' };

function routeOf(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  if (parts[0] === 'o' && parts[1] !== undefined && parts[1] !== '') {
    return {
      page: 'browse',
      objectId: parts[1],
      dir: parts
        .slice(2)
        .filter((p) => p !== '')
        .join('/'),
    };
  }
  if (parts[0] === 'd' && parts[1] !== undefined && parts[1] !== '') return { page: 'device', place: placeOf(parts.slice(1)) };
  if (parts[0] === 'devices') return { page: 'devices' };
  if (parts[0] === 'account') return { page: 'account' };
  return { page: 'objects' };
}

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const changed = (): void => setHash(location.hash);
    addEventListener('hashchange', changed);
    return () => removeEventListener('hashchange', changed);
  }, []);
  return hash;
}

function App() {
  const [session, setSession] = useState<SessionInfo | undefined | null>(null);
  const [error, setError] = useState<string | undefined>();
  const hash = useHash();
  useEffect(() => {
    currentSession().then(setSession, (err: unknown) => setError(describeError(err)));
  }, []);
  const route = routeOf(hash);
  useEffect(() => {
    const titles = { objects: 'Shared folders', browse: 'Folder', devices: 'Devices', device: 'Device', account: 'Account' };
    document.title = session ? `${titles[route.page]} · Meshwork` : 'Sign in · Meshwork';
  }, [route.page, session]);

  if (session === null) return <main aria-busy="true">{error ? <p role="alert">{error}</p> : <p>Loading…</p>}</main>;
  if (session === undefined) return <SignInPage onSignedIn={setSession} />;

  const leave = (everywhere: boolean): void => {
    signOut(everywhere).then(
      () => setSession(undefined),
      (err: unknown) => setError(describeError(err)),
    );
  };
  return (
    <>
      <header>
        <nav aria-label="Main">
          <a href="#/" class="brand">
            Meshwork
          </a>
          <a href="#/" aria-current={route.page === 'objects' || route.page === 'browse' ? 'page' : undefined}>
            Shared folders
          </a>
          <a href="#/devices" aria-current={route.page === 'devices' || route.page === 'device' ? 'page' : undefined}>
            Devices
          </a>
        </nav>
        <div class="account">
          <a href="#/account" aria-current={route.page === 'account' ? 'page' : undefined}>
            Account
          </a>
          <button type="button" onClick={() => leave(false)}>
            Sign out
          </button>
          <button type="button" onClick={() => leave(true)}>
            Sign out everywhere
          </button>
        </div>
      </header>
      <main>
        {error && <p role="alert">{error}</p>}
        {route.page === 'objects' && <ObjectsPage />}
        {route.page === 'browse' && <BrowsePage objectId={route.objectId} dir={route.dir} userId={session.userId} />}
        {route.page === 'devices' && <DevicesPage />}
        {route.page === 'device' && <DevicePage place={route.place} />}
        {route.page === 'account' && <AccountPage userId={session.userId} />}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
