// The shared folders (mesh objects) the user belongs to, with its role in each; a new one.
import { useEffect, useState } from 'preact/hooks';
import type { MeshObject } from '@meshwork/client';
import { api, describeError } from '../api.ts';
import { formatDate } from '../listing.ts';

/** The list of shared folders. */
export function ObjectsPage() {
  const [objects, setObjects] = useState<MeshObject[] | undefined>();
  const [name, setName] = useState('');
  const [error, setError] = useState<string | undefined>();
  const load = (): void => {
    api.listObjects().then(setObjects, (err: unknown) => setError(describeError(err)));
  };
  useEffect(load, []);
  const create = (event: Event): void => {
    event.preventDefault();
    setError(undefined);
    api.createObject({ name: name.trim() }).then(
      () => {
        setName('');
        load();
      },
      (err: unknown) => setError(describeError(err)),
    );
  };
  return (
    <section>
      <h1>Shared folders</h1>
      {error && <p role="alert">{error}</p>}
      {objects === undefined ? (
        <p>Loading…</p>
      ) : objects.length === 0 ? (
        <p>No shared folders yet.</p>
      ) : (
        <ul class="objects">
          {objects.map((o) => (
            <li key={o.id}>
              <a href={`#/o/${encodeURIComponent(o.id)}`}>{o.name}</a>
              <span class="role">{o.role}</span>
              <span class="muted">created {formatDate(o.createdAt)}</span>
            </li>
          ))}
        </ul>
      )}
      <form onSubmit={create} class="inline">
        <label for="new-object">New shared folder</label>
        <input id="new-object" required maxLength={200} value={name} onInput={(e) => setName(e.currentTarget.value)} />
        <button type="submit">Create</button>
      </form>
    </section>
  );
}
