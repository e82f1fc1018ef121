// The user's devices: online now or not, browsing an online one's folders (pages/device.tsx),
// and revoking one (its token stops working).
import { useEffect, useState } from 'preact/hooks';
import type { Device } from '@meshwork/client';
import { api, describeError } from '../api.ts';
import { formatDate } from '../listing.ts';
import { deviceHref } from '../remote.ts';

/** The list of devices. */
export function DevicesPage() {
  const [devices, setDevices] = useState<Device[] | undefined>();
  const [error, setError] = useState<string | undefined>();
  const load = (): void => {
    api.listDevices().then(setDevices, (err: unknown) => setError(describeError(err)));
  };
  useEffect(load, []);
  const revoke = (device: Device): void => {
    if (!confirm(`Revoke ${device.name}? It stops syncing at once.`)) return;
    api.deleteDevice(device.id).then(load, (err: unknown) => setError(describeError(err)));
  };
  return (
    <section>
      <h1>Devices</h1>
      {error && <p role="alert">{error}</p>}
      {devices === undefined ? (
        <p>Loading…</p>
      ) : devices.length === 0 ? (
        <p>No devices yet: install the agent on a computer to sync it.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Device</th>
              <th scope="col">Status</th>
              <th scope="col">Added</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {devices.map((d) => (
              <tr key={d.id}>
                <td>{d.name}</td>
                <td>{d.online ? <span class="online">online</span> : <span class="muted">offline</span>}</td>
                <td>{formatDate(d.createdAt)}</td>
                <td class="actions">
                  {d.online && (
                    <a href={deviceHref({ deviceId: d.id, dir: '' })}>
                      Browse<span class="visually-hidden"> {d.name}</span>
                    </a>
                  )}
                  <button type="button" onClick={() => revoke(d)}>
                    Revoke<span class="visually-hidden"> {d.name}</span>
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
