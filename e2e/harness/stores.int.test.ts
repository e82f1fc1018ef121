// The shared etcd and MinIO are real servers: data round-trips through them.
import { randomBytes, createHash } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { minioClient } from './stack.ts';

const stack = inject('stack');

describe('etcd', () => {
  const client = new Etcd3({ hosts: stack.etcd.endpoint });
  afterAll(() => client.close());

  it('delivers a put to a watcher with the value and a newer revision', async () => {
    const key = `/harness/watch/${randomBytes(4).toString('hex')}`;
    const watcher = await client.watch().key(key).create();
    try {
      const seen = new Promise<{ value: string; modRevision: string }>((resolve) => {
        watcher.on('put', (kv) => resolve({ value: kv.value.toString(), modRevision: kv.mod_revision }));
      });
      const put = await client.put(key).value('hello mesh').exec();
      const event = await seen;
      expect(event.value).toBe('hello mesh');
      expect(event.modRevision).toBe(put.header.revision);
      expect(await client.get(key).string()).toBe('hello mesh');
    } finally {
      await watcher.cancel();
    }
  });
});

describe('MinIO', () => {
  it('returns the same bytes that were put, under the generated credentials', async () => {
    const client = minioClient(stack);
    const body = randomBytes(3 * 1024 * 1024 + 17);
    const key = `harness/${createHash('sha256').update(body).digest('hex')}`;
    await client.putObject(stack.minio.bucket, key, body, body.length);
    const stream = await client.getObject(stack.minio.bucket, key);
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).equals(body)).toBe(true);
  });

  it('refuses a client with the wrong secret', async () => {
    const { Client } = await import('minio');
    const wrong = new Client({
      endPoint: stack.minio.host,
      port: stack.minio.port,
      useSSL: false,
      accessKey: stack.minio.accessKey,
      secretKey: 'not-the-secret-key',
      pathStyle: true,
    });
    await expect(wrong.bucketExists(stack.minio.bucket)).rejects.toThrow(/signature|Access Denied|does not match/i);
  });
});
