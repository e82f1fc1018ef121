// A WebDAV stack for tests and benchmarks: etcd, MinIO, one partition owning every slot and a
// gateway, all on loopback; a user with a device (its token the app password) and an object.
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { MeshworkClient, type DeviceClient, type MeshObject } from '@meshwork/client';
import { startEtcd, type EtcdServer } from '../harness/etcd.ts';
import { startMinio, type MinioServer } from '../harness/minio.ts';
import { startGateway, type RunningGateway } from './gateway-process.ts';
import { startPartition, unthrottledEnv, type RunningPartition } from './partition-process.ts';

/** A running stack and a signed-up user. */
export interface DavStack {
  etcd: EtcdServer;
  minio: MinioServer;
  partition: RunningPartition;
  gateway: RunningGateway;
  /** The user's account client, and a device client (whose token is the app password). */
  account: MeshworkClient;
  device: DeviceClient;
  userName: string;
  /** The account token: not an app password, refused over WebDAV. */
  accountToken: string;
  appPassword: string;
  object: MeshObject;
  /** `http://127.0.0.1:port/dav/{object}/` */
  objectUrl: string;
  admin: MeshworkClient;
  stop(): Promise<void>;
}

/**
 * Starts the stack; `objectName` names the user's first object. With `uploadsToStore`, the
 * partition gives presigned URLs at MinIO for block uploads (and downloads), ADR 80.
 */
export async function startDavStack(name: string, objectName = 'files', options: { uploadsToStore?: boolean } = {}): Promise<DavStack> {
  const [etcd, minio] = await Promise.all([startEtcd({ name: `${name}-etcd` }), startMinio({ bucket: name })]);
  const adminToken = `admin-${randomBytes(16).toString('hex')}`;
  const partition = await startPartition(
    { etcdEndpoint: etcd.endpoint, minio },
    {
      partition: `${name}-p`,
      slots: '0-4095',
      adminToken,
      env: {
        ...unthrottledEnv,
        ...(options.uploadsToStore === true
          ? { MESHWORK_S3_DOWNLOAD_REDIRECT_ENDPOINT: minio.endpoint, MESHWORK_S3_UPLOAD_REDIRECT: 'on' }
          : {}),
      },
    },
  );
  const gateway = await startGateway({ etcdEndpoint: etcd.endpoint, env: { MESHWORK_GATEWAY_PROBE_INTERVAL_MS: '200' } });
  const admin = new MeshworkClient({ baseUrl: gateway.url, token: adminToken });
  const user = await admin.createUser('dav-user');
  const account = new MeshworkClient({ baseUrl: gateway.url, token: user.token });
  const device = await account.registerDeviceClient('webdav');
  const created = await account.registerDevice('app');
  const object = await device.createObject({ name: objectName });
  return {
    etcd,
    minio,
    partition,
    gateway,
    account,
    device,
    userName: 'dav-user',
    accountToken: user.token,
    appPassword: created.token,
    object,
    objectUrl: `${gateway.url}/dav/${encodeURIComponent(objectName)}/`,
    admin,
    stop: async () => {
      await Promise.all([gateway.stop(), partition.stop()]);
      await Promise.all([etcd.stop(), minio.stop()]);
      // The processes' directories (their logs) go with the stack.
      await Promise.all([gateway.dir, partition.dir].map((dir) => rm(dir, { recursive: true, force: true })));
    },
  };
}
