// The progress display: drawn on a terminal only, at most every 100 ms, finished with a line
// break or cleared.
import { describe, expect, it } from 'vitest';
import { Progress } from './progress.ts';

function stream(isTTY: boolean): { writes: string[]; isTTY: boolean; columns: number; write(t: string): boolean } {
  const writes: string[] = [];
  return { writes, isTTY, columns: 200, write: (t: string) => writes.push(t) > 0 };
}

describe('Progress', () => {
  it('draws nothing when the stream is not a terminal', () => {
    const s = stream(false);
    const p = new Progress(s, 'f', 100);
    p.add(50);
    p.set(100);
    p.finish();
    expect(s.writes).toEqual([]);
  });

  it('redraws one line on a terminal and ends it with a line break', () => {
    const s = stream(true);
    const p = new Progress(s, 'f.bin', 4 * 1024 * 1024);
    p.add(1024 * 1024);
    // A second update within 100 ms is not drawn.
    p.add(1024 * 1024);
    expect(s.writes).toHaveLength(1);
    expect(s.writes[0]!.startsWith('\r\x1b[2K')).toBe(true);
    expect(s.writes[0]).toMatch(/f\.bin {2}\[######-+\] {2}25% {2}1\.0 MiB \/ 4\.0 MiB {2}/);
    p.finish();
    expect(s.writes.at(-2)).toMatch(/ 50% {2}2\.0 MiB \/ 4\.0 MiB/);
    expect(s.writes.at(-1)).toBe('\n');
  });

  it('clears its line when the transfer failed', () => {
    const s = stream(true);
    const p = new Progress(s, 'f', 10);
    p.set(5);
    p.finish(true);
    expect(s.writes.at(-1)).toBe('\r\x1b[2K');
  });
});
