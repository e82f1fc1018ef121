// Pure helpers of the folder view: which entries are a folder's children, the breadcrumbs of a
// path, conflict copies (ADR 36 names them "name (conflict from …).ext"), sizes and dates.
import { formatBytes, type Entry } from '@meshwork/client';

/** The live entries directly inside `dir` ('' is the root), folders first, then by name. */
export function childrenOf(entries: readonly Entry[], dir: string): Entry[] {
  const prefix = dir === '' ? '' : `${dir}/`;
  return entries
    .filter((e) => !e.deleted && e.path.startsWith(prefix) && e.path.length > prefix.length && !e.path.slice(prefix.length).includes('/'))
    .sort((a, b) => (a.kind === b.kind ? a.path.localeCompare(b.path) : a.kind === 'directory' ? -1 : 1));
}

/** The live entries at or under `path` (a file, or a folder and everything in it). */
export function subtreeOf(entries: readonly Entry[], path: string): Entry[] {
  return entries.filter((e) => !e.deleted && (e.path === path || e.path.startsWith(`${path}/`)));
}

/** The last segment of a path. */
export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** The breadcrumbs of a folder: each ancestor's name and path, the root ('' ) first. */
export function breadcrumbs(dir: string, rootName: string): { name: string; path: string }[] {
  const crumbs = [{ name: rootName, path: '' }];
  if (dir === '') return crumbs;
  const parts = dir.split('/');
  parts.forEach((part, i) => crumbs.push({ name: part, path: parts.slice(0, i + 1).join('/') }));
  return crumbs;
}

/** Whether a name is a conflict copy the agent kept (ADR 36). */
export function isConflictCopy(path: string): boolean {
  return / \(conflict from [^)]*\)(\.[^./]*)?$/.test(baseName(path));
}

/** A size for people: 0 B, 1.5 KiB, 20.0 MiB (the meshwork command's sizes). */
export const formatSize = formatBytes;

/** A date for people, in their locale, to the minute. */
export function formatDate(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** Why a new name cannot be used in a folder, or undefined when it can. */
export function nameProblem(name: string): string | undefined {
  if (name.trim() === '') return 'Enter a name.';
  if (name.includes('/')) return 'A name cannot contain "/".';
  if (name === '.' || name === '..') return 'Choose another name.';
  return undefined;
}

/** The path of `name` inside `dir`. */
export function join(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}
