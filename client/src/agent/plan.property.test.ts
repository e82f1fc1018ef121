// The planner against a model of the server (versions, preconditions, tombstones) and two or
// three devices, driven by fast-check through random interleavings of local edits, deletes and
// renames, plans, and plans carried out later (after other devices committed, so preconditions
// fail as they do for real). After everyone syncs until nothing moves: every folder equals the
// server's live entries, and no content is lost: each content ever written is still in the tree
// (at its path or in a conflict copy) unless a device replaced or deleted it knowingly, and
// then it does not come back (a device with an old, unchanged copy takes the delete).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { conflictCopyPath, planSync, type PathStates, type PlannedAction } from './plan.ts';

interface ServerEntry {
  content: string | null; // null: a tombstone
  version: number;
}

class ServerModel {
  rev = 0;
  readonly entries = new Map<string, ServerEntry>();

  /** A write under a precondition, as `PUT …/entries/{path}` does it: false for a 412. */
  put(path: string, content: string, precondition: { ifMatch: string } | { ifNoneMatch: '*' }): number | undefined {
    const current = this.entries.get(path);
    const live = current !== undefined && current.content !== null;
    if ('ifMatch' in precondition ? !live || String(current.version) !== precondition.ifMatch : live) return undefined;
    this.entries.set(path, { content, version: ++this.rev });
    return this.rev;
  }

  delete(path: string, ifMatch: string): boolean {
    const current = this.entries.get(path);
    if (current === undefined || current.content === null || String(current.version) !== ifMatch) return false;
    this.entries.set(path, { content: null, version: ++this.rev });
    return true;
  }

  live(): Map<string, string> {
    return new Map([...this.entries].filter(([, e]) => e.content !== null).map(([p, e]) => [p, e.content!]));
  }
}

interface DeviceModel {
  name: string;
  files: Map<string, string>;
  base: Map<string, { content: string; version: number }>;
  /** A plan made earlier, with the local contents it was made from, to carry out later. */
  planned?: { actions: PlannedAction[]; local: Map<string, string>; remote: Map<string, ServerEntry> };
  clock: number;
}

/** What must not be lost: contents written, and those a device replaced or deleted knowingly. */
interface Ledger {
  written: Set<string>;
  superseded: Set<string>;
  /** Contents a device renamed: a rename may keep alive what another device deleted. */
  moved: Set<string>;
}

function plan(device: DeviceModel, server: ServerModel): NonNullable<DeviceModel['planned']> {
  const paths = new Map<string, PathStates>();
  for (const path of new Set([...device.base.keys(), ...device.files.keys(), ...server.entries.keys()])) {
    const b = device.base.get(path);
    const l = device.files.get(path);
    const r = server.entries.get(path);
    paths.set(path, {
      base: b && { kind: 'file', hash: b.content, version: String(b.version) },
      local: l === undefined ? undefined : { kind: 'file', hash: l },
      remote: r && { kind: 'file', hash: r.content ?? '', version: String(r.version), deleted: r.content === null },
    });
  }
  return { actions: planSync(paths), local: new Map(device.files), remote: new Map(server.entries) };
}

/** Carries out a plan as the executor does: a local file changed since the plan is left alone. Answers how many actions moved something. */
function execute(device: DeviceModel, server: ServerModel, planned: NonNullable<DeviceModel['planned']>): number {
  let moved = 0;
  for (const { path, action } of planned.actions) {
    const seen = planned.local.get(path);
    const unchanged = device.files.get(path) === seen;
    const remote = planned.remote.get(path);
    switch (action.type) {
      case 'record':
        if (!unchanged) break;
        if (remote === undefined || remote.content === null || seen === undefined) device.base.delete(path);
        else device.base.set(path, { content: remote.content, version: remote.version });
        break;
      case 'upload': {
        if (!unchanged || seen === undefined) break;
        const version = server.put(path, seen, action.precondition);
        if (version !== undefined) {
          device.base.set(path, { content: seen, version });
          moved++;
        }
        break;
      }
      case 'delete-remote':
        if (!unchanged) break;
        if (server.delete(path, action.ifMatch)) {
          device.base.delete(path);
          moved++;
        }
        break;
      case 'download':
        if (!unchanged || remote?.content == null) break;
        device.files.set(path, remote.content);
        device.base.set(path, { content: remote.content, version: remote.version });
        moved++;
        break;
      case 'delete-local':
        if (!unchanged) break;
        device.files.delete(path);
        device.base.delete(path);
        moved++;
        break;
      case 'conflict': {
        if (!unchanged || seen === undefined || remote?.content == null) break;
        const taken = (p: string): boolean => device.files.has(p) || device.base.has(p) || server.entries.has(p);
        const copy = conflictCopyPath(path, device.name, new Date(Date.UTC(2026, 0, 1) + device.clock++ * 1000), taken);
        device.files.set(copy, seen);
        device.files.set(path, remote.content);
        device.base.set(path, { content: remote.content, version: remote.version });
        moved++;
        break;
      }
      case 'nothing':
      case 'read-only':
        break;
    }
  }
  return moved;
}

const paths = ['a', 'b', 'c', 'd/e'];

type Command =
  | { op: 'edit'; device: number; path: string }
  | { op: 'delete'; device: number; path: string }
  | { op: 'rename'; device: number; from: string; to: string }
  | { op: 'plan'; device: number }
  | { op: 'execute'; device: number }
  | { op: 'sync'; device: number };

const command = (devices: number): fc.Arbitrary<Command> => {
  const device = fc.integer({ min: 0, max: devices - 1 });
  const path = fc.constantFrom(...paths);
  return fc.oneof(
    fc.record({ op: fc.constant('edit' as const), device, path }),
    fc.record({ op: fc.constant('delete' as const), device, path }),
    fc.record({ op: fc.constant('rename' as const), device, from: path, to: path }),
    fc.record({ op: fc.constant('plan' as const), device }),
    fc.record({ op: fc.constant('execute' as const), device }),
    fc.record({ op: fc.constant('sync' as const), device }),
  );
};

function apply(c: Command, devices: DeviceModel[], server: ServerModel, ledger: Ledger, counter: { n: number }): void {
  const d = devices[c.device]!;
  switch (c.op) {
    case 'edit': {
      const old = d.files.get(c.path);
      if (old !== undefined) ledger.superseded.add(old);
      const content = `${d.name}#${counter.n++}`;
      ledger.written.add(content);
      d.files.set(c.path, content);
      return;
    }
    case 'delete': {
      const old = d.files.get(c.path);
      if (old !== undefined) ledger.superseded.add(old);
      d.files.delete(c.path);
      return;
    }
    case 'rename': {
      const moving = d.files.get(c.from);
      if (moving === undefined || c.from === c.to) return;
      const old = d.files.get(c.to);
      if (old !== undefined) ledger.superseded.add(old);
      d.files.delete(c.from);
      d.files.set(c.to, moving);
      ledger.moved.add(moving);
      return;
    }
    case 'plan':
      d.planned = plan(d, server);
      return;
    case 'execute':
      if (d.planned !== undefined) execute(d, server, d.planned);
      d.planned = undefined;
      return;
    case 'sync':
      // A device runs one pass at a time: a plan in flight is carried out (or dropped) before its next pass.
      d.planned = undefined;
      execute(d, server, plan(d, server));
      return;
  }
}

describe('planner against a server model and several devices', () => {
  it('converges to equal trees and loses nothing, whatever the interleaving', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 2, max: 3 })
          .chain((n) => fc.tuple(fc.constant(n), fc.array(command(n), { minLength: 5, maxLength: 60, size: 'max' }))),
        ([n, commands]) => {
          const server = new ServerModel();
          const devices: DeviceModel[] = Array.from({ length: n }, (_, i) => ({
            name: `dev${i}`,
            files: new Map(),
            base: new Map(),
            clock: 0,
          }));
          const ledger: Ledger = { written: new Set(), superseded: new Set(), moved: new Set() };
          const counter = { n: 0 };
          for (const c of commands) apply(c, devices, server, ledger, counter);

          // Quiescence: plans in flight are dropped (as a restarted agent would), then everyone syncs until nothing moves.
          for (const d of devices) d.planned = undefined;
          let rounds = 0;
          for (let moved = 1; moved > 0; rounds++) {
            if (rounds > 20) throw new Error('the devices did not converge within 20 rounds');
            moved = 0;
            for (const d of devices) moved += execute(d, server, plan(d, server));
          }

          const live = server.live();
          for (const d of devices) expect(new Map(d.files)).toEqual(live);
          const kept = new Set(live.values());
          for (const content of ledger.written) {
            if (!ledger.superseded.has(content)) expect(kept, `${content} was lost`).toContain(content);
            // A content replaced or deleted knowingly (and never renamed) does not come back.
            else if (!ledger.moved.has(content)) expect(kept, `${content} came back`).not.toContain(content);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
