import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FolderWatcher } from './watch.ts';

describe('FolderWatcher', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const cleanup of cleanups.splice(0)) cleanup();
  });
  const folder = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'meshwork-watch-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
  };
  const start = (dir: string, ignored?: (path: string) => boolean): { watcher: FolderWatcher; hints: Set<string> } => {
    const hints = new Set<string>();
    const watcher = new FolderWatcher(dir, (path) => hints.add(path), ignored);
    cleanups.push(() => watcher.close());
    return { watcher, hints };
  };

  it('watches directories only, and names the files written into a directory made after it started', async () => {
    const dir = folder();
    for (let i = 0; i < 50; i++) writeFileSync(join(dir, `f${i}`), 'x');
    const { watcher, hints } = start(dir);
    expect(watcher.watched).toEqual(['']);
    mkdirSync(join(dir, 'new'));
    await vi.waitFor(() => expect(watcher.watched).toContain('new'), { timeout: 5000 });
    writeFileSync(join(dir, 'new', 'inside.txt'), 'hello');
    await vi.waitFor(() => expect(hints).toContain('new/inside.txt'), { timeout: 5000 });
    expect(hints).toContain('new');
    expect(watcher.watched.sort()).toEqual(['', 'new']);
  });

  it('keeps to the directories a scan found, says when it added one, and skips ignored new ones', async () => {
    const dir = folder();
    mkdirSync(join(dir, 'a', 'b'), { recursive: true });
    const { watcher, hints } = start(dir, (path) => path === 'node_modules');
    expect(watcher.update(['a', 'a/b'])).toBe(true);
    expect(watcher.update(['a', 'a/b'])).toBe(false);
    expect(watcher.update(['a'])).toBe(false);
    expect(watcher.watched.sort()).toEqual(['', 'a']);
    mkdirSync(join(dir, 'node_modules'));
    await vi.waitFor(() => expect(hints).toContain('node_modules'), { timeout: 5000 });
    writeFileSync(join(dir, 'a', 'late.txt'), 'x');
    await vi.waitFor(() => expect(hints).toContain('a/late.txt'), { timeout: 5000 });
    expect(watcher.watched).not.toContain('node_modules');
  });
});
