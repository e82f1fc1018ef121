// The move driver's scheduling, with the pass replaced (the passes themselves run against a
// real etcd in mesh-moves.int.test.ts): a reconcile never waits for a pass, one pass runs at a
// time per Mesh, the Mesh is queued when a pass answers something new, starts moving or was
// asked for while another ran (the reconcile then asks again with what it sees), and a pass that
// hangs is cut short at its deadline and reported.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { sampleMesh } from '../api/fixtures.ts';
import type { MeshMovesInputs, MeshMovesOutcome } from './mesh-moves.ts';
import { MeshMoveDriver } from './move-driver.ts';

const log = pino({ level: 'silent' });
const mesh = sampleMesh('m', { partitions: 3 });
const owners = new Array<string>(4096).fill('m-p0');
const request = (ready: string[]) => ({ layout: ['m-p0', 'm-p1', 'm-p2'], ready: new Set(ready), surplus: [] });

/** A pass that answers when the test says so, and the inputs of every pass started. */
function controlledPass() {
  const started: MeshMovesInputs[] = [];
  const answers: ((outcome: MeshMovesOutcome) => void)[] = [];
  const drive = (_etcd: unknown, inputs: MeshMovesInputs): Promise<MeshMovesOutcome> => {
    started.push(inputs);
    return new Promise((resolve) => answers.push(resolve));
  };
  return { started, answer: (i: number, outcome: MeshMovesOutcome) => answers[i]!(outcome), drive };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('MeshMoveDriver', () => {
  it('runs one pass at a time, queues the Mesh after it for a request made meanwhile, and otherwise only on news', async () => {
    const pass = controlledPass();
    const queued: string[] = [];
    const driver = new MeshMoveDriver({ log, enqueue: (k) => queued.push(k), drive: pass.drive });
    driver.request('ns/m', mesh, request(['m-p0']));
    expect(driver.state('ns/m')).toEqual({ passes: 0, moving: 0, busy: true });
    // A reconcile that asks while the pass runs is answered by queueing the Mesh when it ends, not by a pass of its own.
    driver.request('ns/m', mesh, request(['m-p0', 'm-p1']));
    expect(pass.started).toHaveLength(1);
    pass.answer(0, { step: { kind: 'wait', partitions: ['m-p1', 'm-p2'] }, owners, moved: 0 });
    await flush();
    expect(queued).toEqual(['ns/m']);
    expect(driver.state('ns/m')).toMatchObject({ busy: false, passes: 1, outcomeLayout: ['m-p0', 'm-p1', 'm-p2'] });
    expect(pass.started).toHaveLength(1);
    // The reconcile asks again with what it sees now.
    driver.request('ns/m', mesh, request(['m-p0', 'm-p1', 'm-p2']));
    expect([...pass.started[1]!.ready]).toEqual(['m-p0', 'm-p1', 'm-p2']);
    pass.started[1]!.onMoved!({ from: 'm-p0', to: 'm-p2', slots: [{ first: 2731, last: 2794 }] }, 10);
    pass.started[1]!.onMoved!({ from: 'm-p0', to: 'm-p2', slots: [{ first: 2795, last: 2858 }] }, 11);
    expect(driver.state('ns/m')).toMatchObject({ moving: 128, passes: 1, busy: true });
    expect(queued).toEqual(['ns/m', 'ns/m']);
    pass.answer(1, { step: { kind: 'settled' }, owners, moved: 128 });
    await flush();
    expect(driver.state('ns/m')).toMatchObject({ passes: 2, moving: 0, busy: false, outcome: { moved: 128, step: { kind: 'settled' } } });
    expect(driver.state('ns/m').lastMove).toEqual({ pass: 2, moved: 128, step: { kind: 'settled' } });
    expect(queued).toHaveLength(3);
    // The same answer again is no news.
    driver.request('ns/m', mesh, request(['m-p0', 'm-p1', 'm-p2']));
    pass.answer(2, { step: { kind: 'settled' }, owners, moved: 0 });
    await flush();
    expect(driver.state('ns/m').passes).toBe(3);
    expect(queued).toHaveLength(3);
    // The last pass that moved is still known, for its Event, after one that moved nothing.
    expect(driver.state('ns/m').lastMove).toMatchObject({ pass: 2, moved: 128 });
    driver.stop();
  });

  it('cuts a pass that hangs short at its deadline and reports why', async () => {
    const pass = controlledPass();
    const queued: string[] = [];
    const driver = new MeshMoveDriver({ log, enqueue: (k) => queued.push(k), drive: pass.drive, passTimeoutMs: 50 });
    driver.request('ns/m', mesh, request(['m-p0']));
    await expect.poll(() => driver.state('ns/m').failure, { timeout: 5_000 }).toBe('the pass did not finish in 50 ms');
    expect(queued).toEqual(['ns/m']);
    // The next request runs a new pass; its answer clears the failure.
    driver.request('ns/m', mesh, request(['m-p0']));
    expect(pass.started).toHaveLength(2);
    pass.answer(1, { step: { kind: 'settled' }, owners, moved: 0 });
    await flush();
    expect(driver.state('ns/m')).toMatchObject({ passes: 1, outcome: { step: { kind: 'settled' } } });
    expect(driver.state('ns/m').failure).toBeUndefined();
    driver.stop();
  });
});
