// Free loopback ports for servers started by the harness.
import { createServer } from 'node:net';

/** Asks the kernel for a free TCP port on `host` (127.0.0.1 by default) and releases it. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error(`Could not read the port of a listening socket on ${host}`));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

/** Several distinct free ports on `host`. */
export async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort(host));
  return [...ports];
}
