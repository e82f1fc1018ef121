// S3 error bodies are read as XML: entities, CDATA and namespaces as XML defines them, and a
// body that is not S3's error XML leaves only the status.
import { describe, expect, it } from 'vitest';
import { describeS3Error, parseS3Error } from './s3-errors.ts';

describe('parseS3Error', () => {
  it.each([
    [
      'S3 error XML',
      '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>4442587FB7D0A2F9</RequestId></Error>',
      { code: 'SlowDown', message: 'Please reduce your request rate.', requestId: '4442587FB7D0A2F9' },
    ],
    [
      'entities decoded',
      '<Error><Code>InvalidArgument</Code><Message>a &lt;b&gt; &amp; &#x263A;</Message></Error>',
      { code: 'InvalidArgument', message: 'a <b> & ☺' },
    ],
    ['CDATA', '<Error><Code>InternalError</Code><Message><![CDATA[x < y]]></Message></Error>', { code: 'InternalError', message: 'x < y' }],
    [
      'whitespace and a namespace',
      '<Error xmlns="http://s3.amazonaws.com/doc/2006-03-01/">\n  <Code> NoSuchKey </Code>\n</Error>',
      { code: 'NoSuchKey', message: undefined },
    ],
    [
      'a Code nested deeper is not the error code',
      '<Error><Details><Code>Inner</Code></Details><Message>m</Message></Error>',
      { code: undefined, message: 'm' },
    ],
    ['a comment that looks like a code', '<Error><!-- <Code>Fake</Code> --><Code>AccessDenied</Code></Error>', { code: 'AccessDenied' }],
    ['another root element', '<ListBucketResult><Code>SlowDown</Code></ListBucketResult>', { code: undefined }],
    ['an HTML page from a proxy', '<html><body><h1>502 Bad Gateway</h1><hr></body></html>', { code: undefined }],
    ['plain text', 'upstream connect error', { code: undefined }],
    ['a truncated body', '<Error><Code>SlowDo', { code: undefined }],
    ['no body (a HEAD answer)', '', { code: undefined, message: undefined, requestId: undefined }],
  ])('%s', async (_what, body, expected) => {
    expect(await parseS3Error(503, body)).toMatchObject({ status: 503, ...expected });
  });
});

describe('describeS3Error', () => {
  it.each([
    [{ status: 503, code: 'SlowDown', message: 'Reduce your rate.', requestId: undefined }, '503 SlowDown: Reduce your rate.'],
    [{ status: 403, code: undefined, message: undefined, requestId: undefined }, '403'],
  ])('%j reads %s', (details, text) => {
    expect(describeS3Error(details)).toBe(text);
  });
});
