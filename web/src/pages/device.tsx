// A device's folders, reached through its relay (the remote routes, docs/api.md): the objects
// it syncs that the person may read, then their directories as the device has them on disk,
// with download links (the browser streams a file from the device to disk). An offline device
// is said in words.
import { useEffect, useState } from 'preact/hooks';
import { MeshworkClient, type RemoteEntry, type RemoteObject } from '@meshwork/client';
import { describeError, sessionFetch } from '../api.ts';
import { breadcrumbs, formatDate, formatSize } from '../listing.ts';
import { deviceFileUrl, deviceHref, deviceProblem, type DevicePlace } from '../remote.ts';

/**
 * The client of the remote routes: an offline device's long Retry-After is said at once rather
 * than waited out; a relay busy for a second is tried again.
 */
const remoteApi = new MeshworkClient({ baseUrl: location.origin, fetch: sessionFetch, retry: { maxAttempts: 2, maxDelayMs: 2_000 } });

/** Browsing one device. */
export function DevicePage({ place }: { place: DevicePlace }) {
  const { deviceId, objectId, dir } = place;
  const [deviceName, setDeviceName] = useState<string>(deviceId);
  const [objects, setObjects] = useState<RemoteObject[] | undefined>();
  const [entries, setEntries] = useState<RemoteEntry[] | undefined>();
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    remoteApi.listDevices().then(
      (devices) => setDeviceName(devices.find((d) => d.id === deviceId)?.name ?? deviceId),
      () => undefined,
    );
  }, [deviceId]);
  useEffect(() => {
    setError(undefined);
    setEntries(undefined);
    // An answer for a place the person has left is dropped.
    let current = true;
    const fail = (err: unknown): void => {
      if (current) setError(deviceProblem(err) ?? describeError(err));
    };
    // The objects are listed on every page of the device: they name the crumbs.
    remoteApi.remoteObjects(deviceId).then((o) => current && setObjects(o), fail);
    if (objectId !== undefined) {
      remoteApi.remoteList(deviceId, objectId, dir).then((listing) => {
        if (!current) return;
        if (listing.kind === 'dir') setEntries(listing.entries);
        else setError('This is a file, not a folder.');
      }, fail);
    }
    return () => {
      current = false;
    };
  }, [deviceId, objectId, dir]);
  const objectName = objects?.find((o) => o.objectId === objectId)?.name ?? objectId ?? '';
  const crumbs = objectId === undefined ? [] : breadcrumbs(dir, objectName);
  const sorted = [...(entries ?? [])].sort((a, b) => (a.kind === b.kind ? a.name.localeCompare(b.name) : a.kind === 'dir' ? -1 : 1));
  return (
    <section>
      <nav aria-label="Breadcrumbs" class="crumbs">
        <ol>
          <li>
            <a href="#/devices">Devices</a>
          </li>
          <li>
            {objectId === undefined ? (
              <span aria-current="page">{deviceName}</span>
            ) : (
              <a href={deviceHref({ deviceId, dir: '' })}>{deviceName}</a>
            )}
          </li>
          {crumbs.map((c, i) => (
            <li key={c.path}>
              {i === crumbs.length - 1 ? (
                <span aria-current="page">{c.name}</span>
              ) : (
                <a href={deviceHref({ deviceId, objectId, dir: c.path })}>{c.name}</a>
              )}
            </li>
          ))}
        </ol>
      </nav>
      <h1>{objectId === undefined ? `On ${deviceName}` : crumbs[crumbs.length - 1]!.name}</h1>
      <p class="muted">What this device has on disk now, reached through the mesh while it is online.</p>
      {error && <p role="alert">{error}</p>}
      {error ? null : objectId === undefined ? (
        objects === undefined ? (
          <p>Loading…</p>
        ) : objects.length === 0 ? (
          <p>This device syncs no shared folder you may see.</p>
        ) : (
          <ul class="device-objects">
            {objects.map((o) => (
              <li key={o.objectId}>
                <a href={deviceHref({ deviceId, objectId: o.objectId, dir: '' })}>{o.name}</a>
              </li>
            ))}
          </ul>
        )
      ) : entries === undefined ? (
        <p>Loading…</p>
      ) : sorted.length === 0 ? (
        <p>This folder is empty.</p>
      ) : (
        <table class="entries">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Size</th>
              <th scope="col">Modified</th>
            </tr>
          </thead>
          <tbody>
            {sorted.map((e) => {
              const path = dir === '' ? e.name : `${dir}/${e.name}`;
              return (
                <tr key={e.name}>
                  <td>
                    {e.kind === 'dir' ? (
                      <a href={deviceHref({ deviceId, objectId, dir: path })}>{e.name}/</a>
                    ) : (
                      <a href={deviceFileUrl(deviceId, objectId, path)} download={e.name}>
                        {e.name}
                      </a>
                    )}
                  </td>
                  <td>{e.kind === 'dir' ? '—' : formatSize(e.size)}</td>
                  <td>{formatDate(e.mtime)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}
