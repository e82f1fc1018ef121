// The worker thread of hashing.ts: per upload, SHA1 and MD5 over every byte in order, and each
// block's SHA-256, so the gateway's event loop only moves the bytes (ADR 47). Blocks arrive
// transferred and go back transferred: no byte is copied between the threads.
import { createHash, type Hash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

/** What the gateway asks. */
export type HashRequest =
  | { kind: 'block'; upload: number; seq: number; buffer: ArrayBuffer; offset: number; length: number }
  | { kind: 'end'; upload: number }
  | { kind: 'drop'; upload: number };

/** What the worker answers. */
export type HashAnswer =
  | { kind: 'block'; upload: number; seq: number; sha256: string; buffer: ArrayBuffer }
  | { kind: 'end'; upload: number; sha1: string; md5: string };

const uploads = new Map<number, { sha1: Hash; md5: Hash }>();

parentPort?.on('message', (message: HashRequest) => {
  if (message.kind === 'drop') {
    uploads.delete(message.upload);
    return;
  }
  let upload = uploads.get(message.upload);
  if (upload === undefined) {
    upload = { sha1: createHash('sha1'), md5: createHash('md5') };
    uploads.set(message.upload, upload);
  }
  if (message.kind === 'end') {
    uploads.delete(message.upload);
    parentPort!.postMessage({ kind: 'end', upload: message.upload, sha1: upload.sha1.digest('hex'), md5: upload.md5.digest('hex') });
    return;
  }
  const bytes = new Uint8Array(message.buffer, message.offset, message.length);
  upload.sha1.update(bytes);
  upload.md5.update(bytes);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const answer: HashAnswer = { kind: 'block', upload: message.upload, seq: message.seq, sha256, buffer: message.buffer };
  parentPort!.postMessage(answer, [message.buffer]);
});
