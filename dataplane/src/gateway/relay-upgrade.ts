// The gateway passes a device's relay WebSocket (`GET /v1/devices/{id}/relay` with `Upgrade:
// websocket`, ADR 52) through to a member of the partition that owns the device's slot: the
// upgrade request goes upstream as it came (the partition authenticates it), and once the member
// answers 101 the two sockets are piped together for as long as the relay lives. A refusal (401,
// 403, 421) is passed back as the member wrote it. Every other upgrade is 404. A WebSocket is an
// HTTP/1.1 upgrade: over the TLS listener it is a client that speaks HTTP/1.1 (ALPN) that opens it.
import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';

const relayPath = /^\/v1\/devices\/[A-Za-z0-9_-]{1,64}\/relay$/;

/** The request headers that do not go upstream (hop by hop, or the gateway's own). */
const dropped = new Set(['host', 'x-forwarded-for', 'forwarded']);

function answer(socket: Duplex, status: number, code: string, message: string, extra = ''): void {
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${code}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}Connection: close\r\n\r\n${body}`,
  );
}

function headerLines(res: IncomingMessage): string {
  const lines: string[] = [];
  for (let i = 0; i < res.rawHeaders.length; i += 2) lines.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}\r\n`);
  return lines.join('');
}

/** The server's `upgrade` listener. `memberFor` names the partition member to send a relay to. */
export function gatewayRelayUpgrade(
  memberFor: (pathname: string, authorization: string | undefined) => string | undefined,
  logger: Logger,
): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, socket, head) => {
    socket.on('error', () => undefined);
    const url = req.url ?? '/';
    const pathname = url.split('?')[0]!;
    if (req.method !== 'GET' || !relayPath.test(pathname)) {
      answer(socket, 404, 'not_found', `no WebSocket at ${req.method ?? ''} ${pathname}`);
      return;
    }
    const member = memberFor(pathname, req.headers.authorization);
    if (member === undefined) {
      answer(socket, 503, 'partition_unavailable', 'no member of the partition that owns the device is ready; retry', 'Retry-After: 1\r\n');
      return;
    }
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(req.headers)) if (value !== undefined && !dropped.has(name)) headers[name] = value;
    headers['x-forwarded-for'] = req.socket.remoteAddress ?? '';
    const upstream = httpRequest(new URL(url, member), { method: 'GET', headers });
    upstream.once('upgrade', (res, upSocket, upHead) => {
      upSocket.on('error', () => socket.destroy());
      socket.on('error', () => upSocket.destroy());
      socket.write(`HTTP/1.1 101 Switching Protocols\r\n${headerLines(res)}\r\n`);
      if (upHead.length > 0) socket.write(upHead);
      if (head.length > 0) upSocket.write(head);
      upSocket.pipe(socket).pipe(upSocket);
      socket.once('close', () => upSocket.destroy());
      upSocket.once('close', () => socket.destroy());
    });
    upstream.once('response', (res) => {
      socket.write(`HTTP/1.1 ${res.statusCode ?? 502} ${res.statusMessage ?? ''}\r\n${headerLines(res)}\r\n`);
      res.pipe(socket);
    });
    upstream.once('error', (err) => {
      logger.warn({ err, member }, 'Failed to pass a relay through to its partition');
      answer(socket, 503, 'partition_unavailable', 'the partition that owns the device did not answer; retry', 'Retry-After: 1\r\n');
    });
    socket.once('close', () => upstream.destroy());
    upstream.end();
  };
}
