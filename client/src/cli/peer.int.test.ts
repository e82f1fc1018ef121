// `meshwork sync`'s peer listener keeps its port and certificate across restarts (the state directory holds both).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { staticGrantKeys } from '../p2p/grant.ts';
import { PeerConnection } from '../p2p/peer-client.ts';
import { createPeerHandler } from '../p2p/peer-server.ts';
import { startSyncPeer } from './peer.ts';

it('chooses a port on the first start and listens on it again, with the same certificate, on the next', async () => {
  const stateDir = await mkdtemp(join(tmpdir(), 'meshwork-peer-state-'));
  const handler = createPeerHandler({ deviceId: 'd1', keys: staticGrantKeys({}), content: { locateBlock: () => [] } });
  try {
    const first = await startSyncPeer({ stateDir, listen: { host: '127.0.0.1', port: 0 }, announce: undefined, handler });
    const { port } = first.listener;
    expect(first.endpoints).toEqual([`https://127.0.0.1:${port}`]);
    expect(JSON.parse(await readFile(join(stateDir, 'peer.json'), 'utf8'))).toEqual({ port });
    await first.listener.close();
    const second = await startSyncPeer({
      stateDir,
      listen: { host: '127.0.0.1', port: 0 },
      announce: ['https://203.0.113.9:7443'],
      handler,
    });
    try {
      expect(second.listener.port).toBe(port);
      expect(second.identity.fingerprint).toBe(first.identity.fingerprint);
      expect(second.endpoints).toEqual(['https://203.0.113.9:7443']);
      // The listener presents the certificate whose fingerprint presence announces.
      const connection = await PeerConnection.connect(`https://127.0.0.1:${port}`, first.identity.fingerprint);
      expect((await connection.get('/p2p/v1/blocks/' + 'a'.repeat(64))).status).toBe(401);
      connection.close();
    } finally {
      await second.listener.close();
    }
  } finally {
    await rm(stateDir, { recursive: true, force: true });
  }
});
