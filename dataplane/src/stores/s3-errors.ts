// What an S3 endpoint said when it refused a request, read from its XML error body
// (`<Error><Code>SlowDown</Code><Message>...</Message><RequestId>...</RequestId></Error>`) with a
// real XML parser (@rgrove/parse-xml: no dependencies), so entities, CDATA and namespaces are
// read as XML says. The parser is loaded with the first error body, not at start: it costs about
// 1 MiB resident, and a healthy partition may never need it. A body that is not S3's error XML
// (a proxy's page, a HEAD answer, which has no body) yields the status alone; the decision to
// retry or re-read the credentials keys on `code`, never on the message.
import type { XmlElement } from '@rgrove/parse-xml';

/** An S3 error answer: the HTTP status and, when the body held them, S3's code and message. */
export interface S3ErrorDetails {
  status: number;
  /** S3's error code (`SlowDown`, `NoSuchKey`, `ExpiredToken`, ...), undefined without an XML body. */
  code: string | undefined;
  message: string | undefined;
  requestId: string | undefined;
}

/** Reads S3's error XML from `body`; a body that is not one leaves code and message undefined. */
export async function parseS3Error(status: number, body: string): Promise<S3ErrorDetails> {
  const details: S3ErrorDetails = { status, code: undefined, message: undefined, requestId: undefined };
  if (body.trim() === '') return details;
  const { parseXml, XmlElement } = await import('@rgrove/parse-xml');
  let root: XmlElement | null;
  try {
    root = parseXml(body).root;
  } catch {
    // Not XML at all: a proxy's HTML page or plain text. The status stands on its own.
    return details;
  }
  if (root?.name !== 'Error') return details;
  const child = (name: string): string | undefined => {
    const element = root.children.find((c): c is XmlElement => c instanceof XmlElement && c.name === name);
    const text = element?.text.trim();
    return text === undefined || text === '' ? undefined : text;
  };
  return { status, code: child('Code'), message: child('Message'), requestId: child('RequestId') };
}

/** One line for logs and error messages: `503 SlowDown: Please reduce your request rate.` */
export function describeS3Error(details: S3ErrorDetails): string {
  const code = details.code === undefined ? '' : ` ${details.code}`;
  const message = details.message === undefined ? '' : `: ${details.message}`;
  return `${details.status}${code}${message}`;
}

/** Codes with which S3 refuses credentials that a rotation may have replaced. */
export const credentialErrorCodes: ReadonlySet<string> = new Set([
  'ExpiredToken',
  'InvalidAccessKeyId',
  'InvalidToken',
  'SignatureDoesNotMatch',
  'TokenRefreshRequired',
]);
