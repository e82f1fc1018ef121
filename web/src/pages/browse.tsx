// One folder of a shared folder: breadcrumbs, its files and folders with size, date and who
// changed them; upload (files, or folders dropped) with per-file and total progress, where the
// client hashes blocks in the browser (WebCrypto) and sends only the blocks the mesh lacks;
// download (a plain link: the browser streams it to disk); rename or move, delete, new folder;
// and, for the owner, sharing with another user in a chosen role.
import { useEffect, useState } from 'preact/hooks';
import { ApiError, type Entry, type MeshObject } from '@meshwork/client';
import { api, describeError } from '../api.ts';
import { baseName, breadcrumbs, childrenOf, formatDate, formatSize, isConflictCopy, join, nameProblem, subtreeOf } from '../listing.ts';

/** A file queued or being uploaded. */
interface Upload {
  path: string;
  size: number;
  sent: number;
  state: 'waiting' | 'uploading' | 'done' | 'failed';
  error?: string;
}

/** A file picked or dropped, with the path it goes to under the current folder. */
interface Picked {
  file: File;
  relativePath: string;
}

async function filesOfEntry(entry: FileSystemEntry, prefix: string): Promise<Picked[]> {
  if (entry.isFile) {
    const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject));
    return [{ file, relativePath: join(prefix, entry.name) }];
  }
  const reader = (entry as FileSystemDirectoryEntry).createReader();
  const children: FileSystemEntry[] = [];
  // readEntries answers in batches until an empty one.
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) break;
    children.push(...batch);
  }
  const nested = await Promise.all(children.map((c) => filesOfEntry(c, join(prefix, entry.name))));
  return nested.flat();
}

/** The folder page. */
export function BrowsePage({ objectId, dir, userId }: { objectId: string; dir: string; userId: string }) {
  const [object, setObject] = useState<MeshObject | undefined>();
  const [entries, setEntries] = useState<Entry[] | undefined>();
  const [deviceNames, setDeviceNames] = useState<Map<string, string>>(new Map());
  const [error, setError] = useState<string | undefined>();
  const [uploads, setUploads] = useState<Upload[]>([]);
  const [folderName, setFolderName] = useState('');
  const [shareWith, setShareWith] = useState('');
  const [shareRole, setShareRole] = useState<'reader' | 'writer'>('reader');
  const [dragging, setDragging] = useState(false);

  // The files of an upload that a reload or a closed tab interrupted (this tab's sessionStorage).
  const pendingKey = `meshwork.uploads.${objectId}`;
  const [interrupted, setInterrupted] = useState<string[]>(() => JSON.parse(sessionStorage.getItem(pendingKey) ?? '[]') as string[]);
  const fail = (err: unknown): void => setError(describeError(err));
  const load = (): void => {
    api.getObject(objectId).then(setObject, fail);
    api.listAllEntries(objectId).then((listing) => setEntries(listing.entries), fail);
  };
  useEffect(() => {
    setError(undefined);
    load();
    api.listDevices().then((devices) => setDeviceNames(new Map(devices.map((d) => [d.id, d.name]))), fail);
  }, [objectId]);

  const canWrite = object !== undefined && object.role !== 'reader';
  // A peer-to-peer only folder keeps its content on devices: the browser can neither upload to nor download from the cloud.
  const inCloud = object?.cloudStorage !== false;
  const canUpload = canWrite && inCloud;
  const isOwner = object?.role === 'owner';
  const here = entries === undefined ? [] : childrenOf(entries, dir);
  const whoIs = (id: string): string => (id === userId ? 'you' : (deviceNames.get(id) ?? id));
  const link = (path: string): string => `#/o/${encodeURIComponent(objectId)}/${path.split('/').map(encodeURIComponent).join('/')}`;

  const upload = async (picked: Picked[]): Promise<void> => {
    setError(undefined);
    const queue: Upload[] = picked.map((p) => ({ path: join(dir, p.relativePath), size: p.file.size, sent: 0, state: 'waiting' }));
    setUploads(queue);
    const update = (i: number, change: Partial<Upload>): void => {
      queue[i] = { ...queue[i]!, ...change };
      setUploads([...queue]);
      const pending = queue.filter((u) => u.state === 'waiting' || u.state === 'uploading').map((u) => u.path);
      if (pending.length === 0) sessionStorage.removeItem(pendingKey);
      else sessionStorage.setItem(pendingKey, JSON.stringify(pending));
    };
    setInterrupted([]);
    const known = new Map((entries ?? []).filter((e) => !e.deleted).map((e) => [e.path, e]));
    // Folders first (a dropped folder's structure, empty ones too), each created once.
    const folders = new Set<string>();
    for (const p of picked) {
      const parts = join(dir, p.relativePath).split('/').slice(0, -1);
      for (let i = dir === '' ? 1 : dir.split('/').length + 1; i <= parts.length; i++) folders.add(parts.slice(0, i).join('/'));
    }
    for (const folder of folders) {
      if (known.get(folder)?.kind === 'directory') continue;
      await api.putEntry(objectId, folder, { kind: 'directory' }, { ifNoneMatch: '*' }).catch((err: unknown) => {
        if (!(err instanceof ApiError && err.code === 'precondition_failed')) throw err;
      });
    }
    for (const [i, p] of picked.entries()) {
      update(i, { state: 'uploading' });
      const existing = known.get(queue[i]!.path);
      try {
        await api.upload(objectId, queue[i]!.path, p.file, existing === undefined ? { ifNoneMatch: '*' } : { ifMatch: existing.version }, {
          mtime: new Date(p.file.lastModified).toISOString(),
          onBlockUploaded: (block) => update(i, { sent: Math.min(queue[i]!.size, queue[i]!.sent + block.size) }),
        });
        update(i, { state: 'done', sent: queue[i]!.size });
      } catch (err) {
        update(i, { state: 'failed', error: describeError(err) });
      }
    }
    load();
  };

  const pickFiles = (event: Event): void => {
    const input = event.currentTarget as HTMLInputElement;
    const files = [...(input.files ?? [])];
    input.value = '';
    void upload(files.map((file) => ({ file, relativePath: file.webkitRelativePath || file.name }))).catch(fail);
  };

  const drop = (event: DragEvent): void => {
    event.preventDefault();
    setDragging(false);
    const items = [...(event.dataTransfer?.items ?? [])];
    const fileEntries = items.map((item) => item.webkitGetAsEntry()).filter((e): e is FileSystemEntry => e !== null);
    void Promise.all(fileEntries.map((e) => filesOfEntry(e, '')))
      .then((lists) => upload(lists.flat()))
      .catch(fail);
  };

  const createFolder = (event: Event): void => {
    event.preventDefault();
    const problem = nameProblem(folderName);
    if (problem !== undefined) return setError(problem);
    api.putEntry(objectId, join(dir, folderName.trim()), { kind: 'directory' }, { ifNoneMatch: '*' }).then(() => {
      setFolderName('');
      load();
    }, fail);
  };

  const remove = async (entry: Entry): Promise<void> => {
    if (!confirm(`Delete ${baseName(entry.path)}${entry.kind === 'directory' ? ' and everything in it' : ''}?`)) return;
    // Deepest first, so that a folder goes after what it holds.
    const doomed = subtreeOf(entries ?? [], entry.path).sort((a, b) => b.path.length - a.path.length);
    for (const e of doomed) await api.deleteEntry(objectId, e.path, e.version);
    load();
  };

  const move = async (entry: Entry): Promise<void> => {
    const target = prompt('New path (folders separated by /):', entry.path)?.trim();
    if (target === undefined || target === '' || target === entry.path) return;
    if (target.split('/').some((part) => nameProblem(part) !== undefined)) return setError('That path has an empty or invalid name in it.');
    // A move is a commit of the same blocks at the new path, then the delete of the old one.
    const moving = subtreeOf(entries ?? [], entry.path).sort((a, b) => a.path.length - b.path.length);
    for (const e of moving) {
      const to = target + e.path.slice(entry.path.length);
      await api.putEntry(
        objectId,
        to,
        e.kind === 'directory' ? { kind: 'directory', mtime: e.mtime } : { kind: 'file', blocks: e.blocks, mtime: e.mtime },
        { ifNoneMatch: '*' },
      );
    }
    for (const e of moving.reverse()) await api.deleteEntry(objectId, e.path, e.version);
    load();
  };

  const share = (event: Event): void => {
    event.preventDefault();
    api.setMember(objectId, shareWith.trim(), shareRole).then(() => {
      setShareWith('');
      load();
    }, fail);
  };

  const totalSize = uploads.reduce((n, u) => n + u.size, 0);
  const totalSent = uploads.reduce((n, u) => n + u.sent, 0);
  const crumbs = breadcrumbs(dir, object?.name ?? '…');

  return (
    <section
      class={dragging ? 'browse dragging' : 'browse'}
      onDragOver={(e) => {
        if (!canUpload) return;
        e.preventDefault();
        setDragging(true);
      }}
      onDragLeave={() => setDragging(false)}
      onDrop={(e) => (canUpload ? drop(e) : undefined)}
    >
      <nav aria-label="Breadcrumbs" class="crumbs">
        <ol>
          <li>
            <a href="#/">Shared folders</a>
          </li>
          {crumbs.map((c, i) => (
            <li key={c.path}>
              {i === crumbs.length - 1 ? <span aria-current="page">{c.name}</span> : <a href={link(c.path)}>{c.name}</a>}
            </li>
          ))}
        </ol>
      </nav>
      <h1>{crumbs[crumbs.length - 1]!.name}</h1>
      {object && <p class="muted">Your role: {object.role}</p>}
      {object && !inCloud && (
        <p role="note" class="muted">
          This folder is peer-to-peer only: its files stay on the devices that sync it, so they cannot be uploaded or downloaded here.
        </p>
      )}
      {error && <p role="alert">{error}</p>}
      {interrupted.length > 0 && (
        <p role="status" class="interrupted">
          An upload was interrupted: {interrupted.map(baseName).join(', ')}. Choose the same files again to resume: the blocks already sent
          are not sent again.
        </p>
      )}
      {entries === undefined ? (
        <p>Loading…</p>
      ) : here.length === 0 ? (
        <p>This folder is empty.</p>
      ) : (
        <table class="entries">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Size</th>
              <th scope="col">Modified</th>
              <th scope="col">By</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {here.map((e) => {
              const name = baseName(e.path);
              return (
                <tr key={e.path} class={isConflictCopy(e.path) ? 'conflict' : undefined}>
                  <td>
                    {e.kind === 'directory' ? (
                      <a href={link(e.path)}>{name}/</a>
                    ) : !inCloud ? (
                      <span>{name}</span>
                    ) : (
                      <a
                        href={`/v1/objects/${encodeURIComponent(objectId)}/content/${e.path.split('/').map(encodeURIComponent).join('/')}`}
                        download={name}
                      >
                        {name}
                      </a>
                    )}
                    {isConflictCopy(e.path) && <span class="badge">conflict copy</span>}
                  </td>
                  <td>{e.kind === 'directory' ? '—' : formatSize(e.size)}</td>
                  <td>{formatDate(e.mtime)}</td>
                  <td>{whoIs(e.modifiedBy)}</td>
                  <td class="actions">
                    {canWrite && (
                      <>
                        <button type="button" onClick={() => void move(e).catch(fail)}>
                          Rename or move<span class="visually-hidden"> {name}</span>
                        </button>
                        <button type="button" onClick={() => void remove(e).catch(fail)}>
                          Delete<span class="visually-hidden"> {name}</span>
                        </button>
                      </>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {canWrite && (
        <div class="tools">
          <form onSubmit={createFolder} class="inline">
            <label for="new-folder">New folder</label>
            <input id="new-folder" value={folderName} onInput={(e) => setFolderName(e.currentTarget.value)} />
            <button type="submit">Create folder</button>
          </form>
          {canUpload && (
            <div class="inline">
              <label for="upload">Upload files</label>
              <input id="upload" type="file" multiple onChange={pickFiles} />
              <span class="muted">or drop files and folders here</span>
            </div>
          )}
        </div>
      )}
      {uploads.length > 0 && (
        <section aria-label="Uploads" class="uploads">
          <h2>Uploads</h2>
          <label for="total-progress">
            Total: {formatSize(totalSent)} of {formatSize(totalSize)}
          </label>
          <progress id="total-progress" max={Math.max(totalSize, 1)} value={totalSize === 0 ? 1 : totalSent} />
          <ul>
            {uploads.map((u, i) => (
              <li key={u.path} class={`upload ${u.state}`}>
                <label for={`upload-${i}`}>
                  {baseName(u.path)}: {u.state === 'failed' ? `failed: ${u.error}` : u.state}
                </label>
                <progress id={`upload-${i}`} max={Math.max(u.size, 1)} value={u.size === 0 && u.state === 'done' ? 1 : u.sent} />
              </li>
            ))}
          </ul>
        </section>
      )}
      {isOwner && object && (
        <section aria-label="Sharing" class="sharing">
          <h2>Shared with</h2>
          <ul>
            {object.members.map((m) => (
              <li key={m.userId}>
                {m.userId === userId ? 'you' : m.userId}: {m.role}
              </li>
            ))}
          </ul>
          <form onSubmit={share} class="inline">
            <label for="share-user">Share with user id</label>
            <input id="share-user" required value={shareWith} onInput={(e) => setShareWith(e.currentTarget.value)} />
            <label for="share-role">Role</label>
            <select id="share-role" value={shareRole} onChange={(e) => setShareRole(e.currentTarget.value as 'reader' | 'writer')}>
              <option value="reader">reader (can read)</option>
              <option value="writer">writer (can change files)</option>
            </select>
            <button type="submit">Share</button>
          </form>
        </section>
      )}
    </section>
  );
}
