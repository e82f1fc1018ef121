// The headers a proxy changes (RFC 9110 §7.6): hop-by-hop headers (those of RFC 9110 and any
// the Connection header names) stay on their hop, HTTP/2 pseudo-headers become the request
// line, and the gateway says who asked through X-Forwarded-For/-Proto/-Host. End-to-end
// headers, `traceparent` and `tracestate` among them, pass as they are. Pure.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

const hopByHop = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  // HTTP/2 forbids it; HTTP/1.1 clients may send it, and it names this hop's host.
  'http2-settings',
  'host',
]);

function connectionTokens(value: string | string[] | undefined): Set<string> {
  const text = Array.isArray(value) ? value.join(',') : (value ?? '');
  return new Set(
    text
      .split(',')
      .map((t) => t.trim().toLowerCase())
      .filter((t) => t !== ''),
  );
}

/** Who sent the request to the gateway, and how. */
export interface ClientHop {
  /** The client's address (the socket's peer). */
  address: string | undefined;
  /** `https` or `http`: the scheme the client used. */
  proto: string;
  /** The Host (or `:authority`) the client asked for. */
  host: string | undefined;
}

/** The headers of the request to the partition: end-to-end headers of the client's, plus X-Forwarded-*. */
export function upstreamRequestHeaders(incoming: IncomingHttpHeaders, hop: ClientHop): OutgoingHttpHeaders {
  const named = connectionTokens(incoming.connection);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined || name.startsWith(':') || hopByHop.has(name) || named.has(name)) continue;
    if (name === 'x-forwarded-for' || name === 'x-forwarded-proto' || name === 'x-forwarded-host') continue;
    out[name] = value;
  }
  const prior = incoming['x-forwarded-for'];
  const chain = (Array.isArray(prior) ? prior.join(', ') : (prior ?? '')).trim();
  if (hop.address !== undefined) out['x-forwarded-for'] = chain === '' ? hop.address : `${chain}, ${hop.address}`;
  else if (chain !== '') out['x-forwarded-for'] = chain;
  out['x-forwarded-proto'] = hop.proto;
  if (hop.host !== undefined) out['x-forwarded-host'] = hop.host;
  return out;
}

/** The headers of the answer to the client: the partition's end-to-end headers. */
export function downstreamResponseHeaders(incoming: IncomingHttpHeaders): OutgoingHttpHeaders {
  const named = connectionTokens(incoming.connection);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined || hopByHop.has(name) || named.has(name)) continue;
    out[name] = value;
  }
  return out;
}
