// A bound on the bytes a process holds at once for one purpose: the peer listener's blocks,
// read from disk and waiting to be sent, would otherwise grow with the number of requests.

/** A bound on bytes held at once: `acquire(n)` waits (first come, first served) until `n` more fit, and answers the release. */
export function byteBudget(limit: number): { acquire(bytes: number): Promise<() => void>; held(): number } {
  let held = 0;
  const waiting: { bytes: number; grant: () => void }[] = [];
  // One request larger than the whole budget goes alone rather than never.
  const fits = (bytes: number): boolean => held === 0 || held + bytes <= limit;
  function admit(): void {
    while (waiting.length > 0 && fits(waiting[0]!.bytes)) waiting.shift()!.grant();
  }
  return {
    held: () => held,
    acquire(bytes) {
      return new Promise((resolve) => {
        const grant = (): void => {
          held += bytes;
          let released = false;
          resolve(() => {
            if (released) return;
            released = true;
            held -= bytes;
            admit();
          });
        };
        if (waiting.length === 0 && fits(bytes)) grant();
        else waiting.push({ bytes, grant });
      });
    },
  };
}
