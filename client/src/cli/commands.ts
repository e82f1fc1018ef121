// The commands of `meshwork`: each reads the configuration, makes one or a few calls with the
// typed client (or drives the sync engine through its public surface), and prints the result
// as JSON or for people. Parsing, formatting and the exit codes are in args.ts, format.ts and
// exit-codes.ts; this file is the I/O around them.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { lstat, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { Transform, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { ApiError } from '@meshwork/contract/errors';
import { MeshworkClient } from '../client.ts';
import { NetworkError, RequestAbortedError, RequestTimeoutError } from '../errors.ts';
import { downloadContentToStream, downloadToStream, nodeHttpFetch } from '../node.ts';
import { openAgent, readStatus, type AgentEvent, type AgentStatus, type SyncAgentShape } from '../agent/index.ts';
import type { WritePrecondition } from '../types.ts';
import type { ClientTracer } from '../tracing.ts';
import { parseRemoteDirectory, parseRemotePath, type ParsedCommand } from './args.ts';
import { defaultPeerListen, parseAnnounce, parsePeerListen, startSyncPeer, startSyncRelay, syncPeerHandler } from './peer.ts';
import {
  configDir,
  configFile,
  listStateDatabases,
  readConfig,
  registerStateDatabase,
  removeConfig,
  stateDir,
  writeConfig,
  type DeviceConfig,
  type Env,
} from './config.ts';
import { CliError, CliExit, UsageError, outcomeOf, type CliExitCode } from './exit-codes.ts';
import type { RetryPolicy } from '../retry.ts';
import {
  formatDevices,
  formatEvent,
  formatMe,
  formatObject,
  formatObjects,
  formatRemoteEntries,
  formatRemoteObjects,
  formatReport,
  formatStatus,
  nothingSyncedYet,
} from './format.ts';
import { Progress } from './progress.ts';
import { promptHidden } from './prompt.ts';

/** The process's side of a command: streams, environment, home directory, signals. */
export interface CliIo {
  stdout: NodeJS.WriteStream | Writable;
  stderr: NodeJS.WriteStream | (Writable & { isTTY?: boolean; columns?: number });
  stdin: NodeJS.ReadStream;
  env: Env;
  home: string;
  /** Subscribes to SIGINT and SIGTERM; answers the unsubscribe. */
  onSignal(handler: (signal: string) => void): () => void;
  /** The sync engine (default: `@meshwork/client/agent`); a test may run the command over a stand-in. */
  engine?: SyncEngine;
  /** Traces the command (a root span) and its requests; set when OTEL_EXPORTER_OTLP_ENDPOINT is. */
  tracing?: ClientTracer;
}

/** The two functions of the sync engine's surface the command uses. */
export interface SyncEngine {
  openAgent: typeof openAgent;
  readStatus: typeof readStatus;
}

const realEngine: SyncEngine = { openAgent, readStatus };

/** What a command runs with. */
interface Context {
  io: CliIo;
  cmd: ParsedCommand;
}

/** Runs a parsed command; answers the exit code. */
export async function runCommand(io: CliIo, cmd: ParsedCommand): Promise<CliExitCode> {
  const handler = handlers[cmd.command];
  if (handler === undefined) throw new UsageError(`unknown command: ${cmd.command}`);
  return (await handler({ io, cmd })) ?? CliExit.ok;
}

type Handler = (ctx: Context) => Promise<CliExitCode | void>;

const handlers: Record<string, Handler> = {
  login,
  logout,
  whoami,
  'objects ls': async (ctx) => {
    const objects = await (await deviceClient(ctx)).client.listObjects();
    print(ctx, { objects }, () => formatObjects(objects));
  },
  'objects create': async (ctx) => {
    const { client } = await deviceClient(ctx);
    const object = await client.createObject({ name: ctx.cmd.args[0]!, cloudStorage: ctx.cmd.flags['no-cloud'] !== true });
    print(ctx, object, () => `created ${formatObject(object)}`);
  },
  'objects share': async (ctx) => {
    const { client } = await deviceClient(ctx);
    const [id, user] = ctx.cmd.args as [string, string];
    const member = await objectCall(
      id,
      client.setMember(id, user, ctx.cmd.flags.role as 'writer' | 'reader'),
      `no object ${id} (or you are not a member of it), or no user ${user}`,
    );
    print(ctx, { objectId: id, ...member }, () => `shared ${id} with ${member.userId} as ${member.role}\n`);
  },
  'objects unshare': async (ctx) => {
    const { client } = await deviceClient(ctx);
    const [id, user] = ctx.cmd.args as [string, string];
    await objectCall(id, client.removeMember(id, user), `no object ${id}, or ${user} is not a member of it`);
    print(ctx, { objectId: id, userId: user, removed: true }, () => `removed ${user} from ${id}\n`);
  },
  'objects rm': async (ctx) => {
    const { client } = await deviceClient(ctx);
    const id = ctx.cmd.args[0]!;
    await objectCall(id, client.deleteObject(id));
    print(ctx, { objectId: id, deleted: true }, () => `deleted object ${id}\n`);
  },
  'devices ls': async (ctx) => {
    const devices = await (await deviceClient(ctx)).client.listDevices();
    print(ctx, { devices }, () => formatDevices(devices));
  },
  'devices revoke': revokeDevice,
  put,
  get,
  'remote ls': remoteLs,
  'remote get': remoteGet,
  sync,
  status,
};

// ---- helpers

function print(ctx: Context, json: unknown, human: () => string): void {
  ctx.io.stdout.write(ctx.cmd.json ? `${JSON.stringify(json)}\n` : human());
}

function warn(ctx: Context, message: string): void {
  if (ctx.cmd.json) ctx.io.stderr.write(`${JSON.stringify({ warning: message })}\n`);
  else ctx.io.stderr.write(`meshwork: warning: ${message}\n`);
}

/** A client speaking as this device, with the configuration it came from. */
async function deviceClient(ctx: Context, retry?: Partial<RetryPolicy>): Promise<{ client: MeshworkClient; config: DeviceConfig }> {
  const config = await readConfig(configDir(ctx.io.env, ctx.io.home));
  return { client: clientFor(ctx, config.server, config.deviceToken, retry), config };
}

/** One keep-alive connection pool per protocol for the whole command: the device's own. */
const pools = new Map<string, HttpAgent>();

function clientFor(ctx: Context, server: string, token: string, retry?: Partial<RetryPolicy>): MeshworkClient {
  // node:http rather than the global fetch: fetch copies every request body (a 4 MiB copy per
  // block uploaded), and nodeHttpFetch pipes downloads straight into files.
  const https = server.startsWith('https:');
  let pool = pools.get(https ? 'https' : 'http');
  if (pool === undefined) {
    pool = https ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
    pools.set(https ? 'https' : 'http', pool);
  }
  return new MeshworkClient({
    baseUrl: server,
    token,
    fetch: nodeHttpFetch(pool),
    ...(retry ? { retry } : {}),
    ...(ctx.io.tracing ? { tracing: ctx.io.tracing } : {}),
  });
}

/** Runs an object call, turning `not_found` into a message naming the object. */
async function objectCall<T>(id: string, call: Promise<T>, notFound = `no object ${id} (or you are not a member of it)`): Promise<T> {
  try {
    return await call;
  } catch (err) {
    if (err instanceof ApiError && err.code === 'not_found') throw new CliError(CliExit.dataError, notFound, { cause: err });
    throw err;
  }
}

/** The account token: --token-file, else $MESHWORK_ACCOUNT_TOKEN, else a prompt without echo on a terminal, else stdin. */
async function readAccountToken(ctx: Context): Promise<string> {
  const file = ctx.cmd.flags['token-file'];
  let token: string;
  if (typeof file === 'string') {
    try {
      token = await readFile(file, 'utf8');
    } catch (err) {
      throw new CliError(CliExit.dataError, `cannot read the token file ${file}: ${(err as Error).message}`, { cause: err });
    }
  } else if (ctx.io.env.MESHWORK_ACCOUNT_TOKEN) {
    token = ctx.io.env.MESHWORK_ACCOUNT_TOKEN;
  } else if (ctx.io.stdin.isTTY) {
    token = await promptHidden(ctx.io.stdin, ctx.io.stderr, 'Account token: ');
  } else {
    token = await readAll(ctx.io.stdin);
  }
  token = token.trim();
  if (token === '')
    throw new UsageError('no account token: give --token-file FILE, set MESHWORK_ACCOUNT_TOKEN, or type it', ctx.cmd.command);
  return token;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}

function isUnreachable(err: unknown): boolean {
  if (err instanceof NetworkError || err instanceof RequestTimeoutError) return true;
  const outcome = outcomeOf(err);
  return outcome.exitCode === CliExit.unavailable || outcome.exitCode === CliExit.temporary;
}

// ---- accounts

async function login(ctx: Context): Promise<void> {
  const server = String(ctx.cmd.flags.server);
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new UsageError(`--server ${server} is not a URL (e.g. https://mesh.example.com)`, 'login');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new UsageError(`--server must be an http or https URL, not ${server}`, 'login');
  const dir = configDir(ctx.io.env, ctx.io.home);
  const existing = await readConfig(dir).catch(() => undefined);
  if (existing !== undefined) {
    // A configuration whose device still works is not overwritten: that would orphan the device.
    const stillValid = await clientFor(ctx, existing.server, existing.deviceToken)
      .me()
      .then(
        () => true,
        (err: unknown) => !(err instanceof ApiError && err.code === 'unauthenticated'),
      );
    if (stillValid) {
      throw new CliError(
        CliExit.failure,
        `already logged in as ${existing.deviceName} (${existing.deviceId}) on ${existing.server}; run meshwork logout first`,
      );
    }
  }
  const name = typeof ctx.cmd.flags.name === 'string' ? ctx.cmd.flags.name : hostname();
  const accountToken = await readAccountToken(ctx);
  let device;
  try {
    device = await clientFor(ctx, server, accountToken).registerDevice(name);
  } catch (err) {
    if (err instanceof ApiError && err.code === 'unauthenticated') {
      throw new CliError(CliExit.noPermission, 'the server refused the account token', { cause: err });
    }
    if (err instanceof ApiError && err.code === 'forbidden') {
      throw new CliError(CliExit.noPermission, 'that token may not register devices: give an account token (mwu.…), not a device token', {
        cause: err,
      });
    }
    throw err;
  }
  const config: DeviceConfig = {
    version: 1,
    server: url.href.replace(/\/+$/, ''),
    userId: device.userId,
    deviceId: device.id,
    deviceName: device.name,
    deviceToken: device.token,
  };
  const file = await writeConfig(dir, config);
  // Everything but the token.
  const shown = { server: config.server, userId: config.userId, deviceId: config.deviceId, deviceName: config.deviceName };
  print(
    ctx,
    { ...shown, configFile: file },
    () => `logged in as device ${device.name} (${device.id}) of user ${device.userId}; configuration in ${file}\n`,
  );
}

async function logout(ctx: Context): Promise<void> {
  const dir = configDir(ctx.io.env, ctx.io.home);
  const config = await readConfig(dir);
  let deleted = true;
  try {
    await clientFor(ctx, config.server, config.deviceToken).deleteDevice(config.deviceId);
  } catch (err) {
    deleted = false;
    if (err instanceof ApiError && err.code === 'unauthenticated') {
      warn(ctx, 'the server no longer knew this device (it was revoked already)');
    } else if (isUnreachable(err)) {
      warn(
        ctx,
        `could not reach ${config.server} (${outcomeOf(err).message}); device ${config.deviceId} stays registered: revoke it with meshwork devices revoke ${config.deviceId} from another device`,
      );
    } else throw err;
  }
  await removeConfig(dir);
  print(
    ctx,
    { deviceId: config.deviceId, deletedOnServer: deleted, configRemoved: true },
    () => `logged out; removed ${configFile(dir)}\n`,
  );
}

async function whoami(ctx: Context): Promise<void> {
  const { client, config } = await deviceClient(ctx);
  const me = await client.me();
  print(ctx, { ...me, deviceName: config.deviceName, server: config.server }, () => formatMe(me, config.server, config.deviceName));
}

async function revokeDevice(ctx: Context): Promise<void> {
  const { client, config } = await deviceClient(ctx);
  const id = ctx.cmd.args[0]!;
  if (id === config.deviceId) {
    await client.deleteDevice(id);
    await removeConfig(configDir(ctx.io.env, ctx.io.home));
    print(ctx, { deviceId: id, revoked: true, configRemoved: true }, () => `revoked this device (${id}) and removed its configuration\n`);
    return;
  }
  // A device may delete only itself; another device needs the account token.
  const account = clientFor(ctx, config.server, await readAccountToken(ctx));
  try {
    await account.deleteDevice(id);
  } catch (err) {
    if (err instanceof ApiError && err.code === 'not_found')
      throw new CliError(CliExit.dataError, `no device ${id} of yours`, { cause: err });
    if (err instanceof ApiError && err.code === 'unauthenticated')
      throw new CliError(CliExit.noPermission, 'the server refused the account token', { cause: err });
    throw err;
  }
  print(ctx, { deviceId: id, revoked: true }, () => `revoked device ${id}\n`);
}

// ---- one-shot transfers

async function put(ctx: Context): Promise<void> {
  const [local, remoteText] = ctx.cmd.args as [string, string];
  const remote = parseRemotePath(remoteText);
  const info = await stat(local).catch((err: NodeJS.ErrnoException) => {
    throw new CliError(CliExit.dataError, `cannot read ${local}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`, { cause: err });
  });
  if (!info.isFile()) throw new CliError(CliExit.dataError, `${local} is not a regular file`);
  // Opened before any request, so an unreadable file fails at once rather than mid-upload.
  const handle = await open(local, 'r').catch((err: NodeJS.ErrnoException) => {
    throw new CliError(CliExit.dataError, `cannot read ${local}: ${err.message}`, { cause: err });
  });
  let client: MeshworkClient;
  try {
    client = (await deviceClient(ctx)).client;
  } catch (err) {
    await handle.close();
    throw err;
  }
  const force = ctx.cmd.flags.force === true;
  let precondition: WritePrecondition = { ifNoneMatch: '*' };
  if (force) {
    try {
      const current = await client.getEntry(remote.objectId, remote.path);
      if (!current.notModified) {
        if (current.entry.kind !== 'file') throw new CliError(CliExit.dataError, `${remoteText} is a directory`);
        precondition = { ifMatch: current.entry.version };
      }
    } catch (err) {
      if (!(err instanceof ApiError && err.code === 'not_found')) {
        await handle.close();
        throw err;
      }
    }
  }
  const progress = new Progress(ctx.io.stderr, basename(local), info.size);
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      progress.add(chunk.length);
      done(null, chunk);
    },
  });
  const file = handle.createReadStream();
  // pipe() does not pass errors on: a read error must end the upload, not stall it.
  file.on('error', (err) => counter.destroy(new CliError(CliExit.failure, `cannot read ${local}: ${err.message}`, { cause: err })));
  const source = file.pipe(counter);
  const aborter = new AbortController();
  const unsubscribe = ctx.io.onSignal(() => aborter.abort(new Error('interrupted')));
  let result;
  try {
    result = await client.upload(remote.objectId, remote.path, source, precondition, {
      mtime: info.mtime.toISOString(),
      signal: aborter.signal,
      // Blocks go to the store itself where the server gives upload URLs (ADR 80).
      toStore: true,
    });
    progress.finish();
  } catch (err) {
    progress.finish(true);
    if (err instanceof ApiError && err.code === 'precondition_failed') {
      throw new CliError(
        CliExit.dataError,
        force ? `${remoteText} changed while uploading; run the command again` : `${remoteText} exists already; use --force to replace it`,
        { cause: err },
      );
    }
    if (err instanceof ApiError && err.code === 'not_found') {
      throw new CliError(CliExit.dataError, `no object ${remote.objectId} (or you are not a member of it)`, { cause: err });
    }
    throw err;
  } finally {
    unsubscribe();
    source.destroy();
    file.destroy();
    await handle.close().catch(() => undefined);
  }
  const json = {
    objectId: remote.objectId,
    path: result.entry.path,
    version: result.entry.version,
    size: result.entry.size,
    contentHash: result.entry.contentHash,
    created: result.created,
    uploadedBlocks: result.uploadedBlocks,
    uploadedBytes: result.uploadedBytes,
  };
  print(
    ctx,
    json,
    () =>
      `${result.created ? 'uploaded' : 'replaced'} ${remote.objectId}:${result.entry.path} (${result.entry.size} bytes, version ${result.entry.version})\n`,
  );
}

async function get(ctx: Context): Promise<void> {
  const [remoteText, localArg] = ctx.cmd.args as [string, string | undefined];
  const remote = parseRemotePath(remoteText);
  const toStdout = localArg === '-';
  const local = toStdout ? '-' : resolve(localArg ?? basename(remote.path));
  const force = ctx.cmd.flags.force === true;
  if (!toStdout && !force) {
    const exists = await lstat(local).then(
      () => true,
      () => false,
    );
    if (exists) throw new CliError(CliExit.dataError, `${local} exists already; use --force to overwrite it`);
  }
  if (!toStdout) {
    const parent = await stat(dirname(local)).catch(() => undefined);
    if (!parent?.isDirectory()) throw new CliError(CliExit.dataError, `no directory ${dirname(local)} to write ${basename(local)} in`);
  }
  const { client } = await deviceClient(ctx);
  const aborter = new AbortController();
  const unsubscribe = ctx.io.onSignal(() => aborter.abort(new Error('interrupted')));
  // Written beside the target and renamed at the end, so an existing file is only replaced whole.
  const temp = toStdout ? undefined : join(dirname(local), `.${basename(local)}.meshwork-${process.pid}.part`);
  let sink: Writable | undefined;
  let writeError: Error | undefined;
  let progress: Progress | undefined;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      progress?.add(chunk.length);
      done(null, chunk);
    },
  });
  let result;
  try {
    const entry = await client.getEntry(remote.objectId, remote.path, { signal: aborter.signal });
    const size = entry.notModified ? undefined : entry.entry.size;
    // The local file is created only once the remote one is known to exist.
    sink = toStdout ? stdoutSink(ctx.io.stdout) : createWriteStream(temp!, { mode: 0o644 });
    // pipe() does not pass errors on: a failed write must end the download, not stall it.
    sink.on('error', (err) => {
      writeError = err;
      counter.destroy(err);
    });
    counter.pipe(sink);
    progress = new Progress(ctx.io.stderr, basename(remote.path), size);
    result = await downloadToStream(client, remote.objectId, remote.path, counter, { signal: aborter.signal });
    await finished(sink);
    progress.finish();
  } catch (err) {
    progress?.finish(true);
    sink?.destroy();
    if (temp) await rm(temp, { force: true });
    if (writeError !== undefined)
      throw new CliError(CliExit.failure, `cannot write ${local}: ${writeError.message}`, { cause: writeError });
    if (err instanceof ApiError && err.code === 'not_found') {
      throw new CliError(CliExit.dataError, `no file ${remoteText} (no such path, or no such object for you)`, { cause: err });
    }
    if (err instanceof ApiError && err.code === 'not_a_file')
      throw new CliError(CliExit.dataError, `${remoteText} is a directory`, { cause: err });
    throw err;
  } finally {
    unsubscribe();
  }
  if (temp) await rename(temp, local);
  const json = { objectId: remote.objectId, path: remote.path, file: local, bytes: result.bytes, etag: result.etag };
  // With `-` stdout carries the file: the summary goes nowhere (or, with --json, to stderr).
  if (toStdout) {
    if (ctx.cmd.json) ctx.io.stderr.write(`${JSON.stringify(json)}\n`);
  } else print(ctx, json, () => `downloaded ${remoteText} to ${local} (${result.bytes} bytes)\n`);
}

// ---- remote access (through a device's relay)

/**
 * Remote calls wait out a short Retry-After (a relay that is busy for a second) but not the
 * longer one of an offline device: that is said at once.
 */
const remoteRetry: Partial<RetryPolicy> = { maxDelayMs: 2_000 };

/** A device a remote command names: the id or the name of one of the user's devices, else taken as another user's device id. */
async function resolveDevice(client: MeshworkClient, text: string): Promise<{ id: string; label: string }> {
  const devices = await client.listDevices();
  const byId = devices.find((d) => d.id === text);
  if (byId !== undefined) return { id: byId.id, label: `${byId.name} (${byId.id})` };
  const named = devices.filter((d) => d.name === text);
  if (named.length === 1) return { id: named[0]!.id, label: `${named[0]!.name} (${named[0]!.id})` };
  if (named.length > 1)
    throw new CliError(
      CliExit.dataError,
      `${named.length} of your devices are named ${text}: name one by its id (${named.map((d) => d.id).join(', ')})`,
    );
  return { id: text, label: text };
}

/** Runs a remote call, turning the answers a person meets into messages that name the device. */
async function remoteCall<T>(device: { label: string }, what: string, call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (err) {
    if (err instanceof ApiError && err.code === 'device_offline') {
      const retry = err.headers['retry-after'];
      throw new CliError(
        CliExit.temporary,
        `device ${device.label} is offline: it has no connection to the server (it runs meshwork sync with its relay on when it is online)${retry ? `; try again in ${retry} s or later` : ''}`,
        { cause: err },
      );
    }
    if (err instanceof ApiError && err.code === 'relay_busy')
      throw new CliError(CliExit.temporary, `device ${device.label} is busy serving other requests; try again later`, { cause: err });
    if (err instanceof ApiError && err.code === 'not_found')
      throw new CliError(CliExit.dataError, `${what} on device ${device.label}: ${err.message}`, { cause: err });
    if (err instanceof ApiError && err.code === 'forbidden')
      throw new CliError(CliExit.noPermission, `${what} on device ${device.label}: not allowed: ${err.message}`, { cause: err });
    throw err;
  }
}

async function remoteLs(ctx: Context): Promise<void> {
  const [deviceText, placeText] = ctx.cmd.args as [string, string | undefined];
  const place = placeText === undefined ? undefined : parseRemoteDirectory(placeText);
  const { client } = await deviceClient(ctx, remoteRetry);
  const device = await resolveDevice(client, deviceText);
  if (place === undefined) {
    const objects = await remoteCall(device, 'the objects', client.remoteObjects(device.id));
    print(ctx, { deviceId: device.id, objects }, () => formatRemoteObjects(objects));
    return;
  }
  const listing = await remoteCall(device, `${place.objectId}:${place.path}`, client.remoteList(device.id, place.objectId, place.path));
  const json = { deviceId: device.id, objectId: place.objectId, path: place.path, ...listing };
  if (listing.kind === 'dir') print(ctx, json, () => formatRemoteEntries(listing.entries));
  else
    print(ctx, json, () =>
      formatRemoteEntries([{ name: place.path, kind: 'file', size: listing.size, mtime: listing.lastModified ?? '' }]),
    );
}

/** Whether a download that failed this way may be continued later from its .part file. */
function resumableFailure(err: unknown): boolean {
  if (err instanceof NetworkError || err instanceof RequestTimeoutError || err instanceof RequestAbortedError) return true;
  return err instanceof CliError && err.exitCode === CliExit.temporary;
}

async function remoteGet(ctx: Context): Promise<void> {
  const [deviceText, remoteText, localArg] = ctx.cmd.args as [string, string, string | undefined];
  const remote = parseRemotePath(remoteText);
  const toStdout = localArg === '-';
  const local = toStdout ? '-' : resolve(localArg ?? basename(remote.path));
  if (!toStdout) {
    const exists = await lstat(local).then(
      () => true,
      () => false,
    );
    if (exists && ctx.cmd.flags.force !== true)
      throw new CliError(CliExit.dataError, `${local} exists already; use --force to overwrite it`);
    const parent = await stat(dirname(local)).catch(() => undefined);
    if (!parent?.isDirectory()) throw new CliError(CliExit.dataError, `no directory ${dirname(local)} to write ${basename(local)} in`);
  }
  const { client } = await deviceClient(ctx, remoteRetry);
  const device = await resolveDevice(client, deviceText);
  const info = await remoteCall(device, remoteText, client.remoteList(device.id, remote.objectId, remote.path));
  if (info.kind === 'dir') throw new CliError(CliExit.dataError, `${remoteText} is a directory on device ${device.label}`);
  // The .part file is named after the file's ETag on the device: a later run continues it only while that still matches.
  const tag = info.etag === undefined ? `${process.pid}` : createHash('sha256').update(info.etag).digest('hex').slice(0, 16);
  const part = toStdout ? undefined : join(dirname(local), `.${basename(local)}.${tag}.meshwork-part`);
  let offset = part === undefined || info.etag === undefined ? 0 : ((await stat(part).catch(() => undefined))?.size ?? 0);
  if (offset > info.size) offset = 0;
  const aborter = new AbortController();
  const unsubscribe = ctx.io.onSignal(() => aborter.abort(new Error('interrupted')));
  let sink: Writable | undefined;
  let writeError: Error | undefined;
  const progress = new Progress(ctx.io.stderr, basename(remote.path), info.size);
  progress.add(offset);
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      progress.add(chunk.length);
      done(null, chunk);
    },
  });
  let fetched = 0;
  try {
    sink = toStdout ? stdoutSink(ctx.io.stdout) : createWriteStream(part!, { flags: offset > 0 ? 'a' : 'w', mode: 0o644 });
    sink.on('error', (err) => {
      writeError = err;
      counter.destroy(err);
    });
    counter.pipe(sink);
    if (offset > 0 && offset === info.size) counter.end();
    else {
      const result = await remoteCall(
        device,
        remoteText,
        downloadContentToStream((o) => client.remoteContent(device.id, remote.objectId, remote.path, o), remoteText, counter, {
          signal: aborter.signal,
          ...(offset > 0 ? { range: { start: offset } } : {}),
        }),
      );
      fetched = result.bytes;
      if (result.etag !== info.etag) {
        if (part !== undefined) await rm(part, { force: true });
        throw new CliError(CliExit.temporary, `${remoteText} changed on device ${device.label} while downloading; run the command again`);
      }
    }
    await finished(sink);
    progress.finish();
  } catch (err) {
    progress.finish(true);
    sink?.destroy();
    if (part !== undefined && (writeError !== undefined || !resumableFailure(err))) await rm(part, { force: true });
    if (writeError !== undefined)
      throw new CliError(CliExit.failure, `cannot write ${local}: ${writeError.message}`, { cause: writeError });
    if (part !== undefined && resumableFailure(err) && err instanceof Error)
      err.message += `; run the same command again to continue from ${basename(part)}`;
    throw err;
  } finally {
    unsubscribe();
  }
  if (part !== undefined) await rename(part, local);
  const bytes = offset + fetched;
  const json = {
    deviceId: device.id,
    objectId: remote.objectId,
    path: remote.path,
    file: local,
    bytes,
    resumedFrom: offset,
    etag: info.etag,
  };
  if (toStdout) {
    if (ctx.cmd.json) ctx.io.stderr.write(`${JSON.stringify(json)}\n`);
  } else
    print(
      ctx,
      json,
      () =>
        `downloaded ${remoteText} from device ${device.label} to ${local} (${bytes} bytes${offset > 0 ? `, continued from ${offset}` : ''})\n`,
    );
}

/** A Writable into stdout that never ends stdout itself. */
function stdoutSink(stdout: CliIo['stdout']): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (stdout.write(chunk)) done();
      else stdout.once('drain', () => done());
    },
  });
}

// ---- sync and status

async function sync(ctx: Context): Promise<CliExitCode> {
  const { client, config } = await deviceClient(ctx);
  const dir = resolve(ctx.cmd.args[0]!);
  const objectId = String(ctx.cmd.flags.object);
  const existing = await stat(dir).catch(() => undefined);
  if (existing !== undefined && !existing.isDirectory()) throw new CliError(CliExit.dataError, `${dir} is not a directory`);
  const object = await objectCall(objectId, client.getObject(objectId));
  await mkdir(dir, { recursive: true });
  const statePath = await registerStateDatabase(stateDir(ctx.io.env, ctx.io.home), dir, objectId);
  const progress = new Map<string, Progress>();
  const onEvent = (event: AgentEvent): void => {
    if (ctx.cmd.json) {
      ctx.io.stdout.write(`${JSON.stringify({ at: new Date().toISOString(), ...event })}\n`);
      return;
    }
    if (event.type === 'upload' || event.type === 'download') {
      const key = `${event.type}:${event.path}`;
      let bar = progress.get(key);
      if (bar === undefined) {
        bar = new Progress(ctx.io.stderr, `${event.type === 'upload' ? '↑' : '↓'} ${event.path}`, event.totalBytes);
        progress.set(key, bar);
      }
      bar.set(event.bytes);
      return;
    }
    if (event.type === 'committed') {
      for (const kind of ['upload', 'download']) {
        progress.get(`${kind}:${event.path}`)?.finish(true);
        progress.delete(`${kind}:${event.path}`);
      }
    }
    const line = formatEvent(event);
    if (line !== undefined) ctx.io.stdout.write(`${line}\n`);
  };
  const once = ctx.cmd.flags.once === true;
  const listenFlag = typeof ctx.cmd.flags['peer-listen'] === 'string' ? ctx.cmd.flags['peer-listen'] : ctx.io.env.MESHWORK_PEER_LISTEN;
  const listen = parsePeerListen(listenFlag ?? defaultPeerListen);
  const announce = typeof ctx.cmd.flags.announce === 'string' ? parseAnnounce(ctx.cmd.flags.announce) : undefined;
  // The agent and the listener need each other: the listener reads the agent's blocks, the agent announces the listener.
  const opened: { agent?: SyncAgentShape } = {};
  const content = {
    locateBlock: (o: string, sha: string) => opened.agent?.locateBlock(o, sha) ?? [],
    // Until the agent is open nothing is shown: what it ignores is not known yet.
    folders: () => [
      { objectId, name: object.name, dir, ignores: (path: string, directory: boolean) => opened.agent?.ignores(path, directory) ?? true },
    ],
  };
  const handler = syncPeerHandler(client, config.deviceId, content, (n) => opened.agent?.countServed(n));
  const peer =
    once || listen === 'off' ? undefined : await startSyncPeer({ stateDir: stateDir(ctx.io.env, ctx.io.home), listen, announce, handler });
  const log = (line: string): void => {
    if (!ctx.cmd.json) ctx.io.stderr.write(`${line}\n`);
  };
  const relay =
    once || ctx.cmd.flags['no-relay'] === true
      ? undefined
      : startSyncRelay(config.server, config.deviceId, config.deviceToken, handler, log);
  const agent = await (ctx.io.engine ?? realEngine)
    .openAgent({
      client,
      dir,
      objectId,
      statePath,
      deviceName: config.deviceName,
      onEvent,
      ...(ctx.io.tracing ? { tracing: ctx.io.tracing } : {}),
      peer: {
        deviceId: config.deviceId,
        ...(peer === undefined ? {} : { announce: { endpoints: peer.endpoints, fingerprint: peer.identity.fingerprint } }),
      },
    })
    .catch(async (err: unknown) => {
      await relay?.close();
      await peer?.listener.close();
      throw err;
    });
  opened.agent = agent;
  if (peer !== undefined && !ctx.cmd.json)
    ctx.io.stderr.write(
      `serving peers on ${peer.listener.host}:${peer.listener.port}, announced as ${peer.endpoints.join(', ') || 'nothing'}\n`,
    );
  try {
    if (once) {
      const report = await agent.syncOnce();
      if (ctx.cmd.json) ctx.io.stdout.write(`${JSON.stringify({ type: 'report', ...report })}\n`);
      else ctx.io.stdout.write(formatReport(report));
      return report.problems > 0 ? CliExit.partial : CliExit.ok;
    }
    const aborter = new AbortController();
    const unsubscribe = ctx.io.onSignal((signal) => aborter.abort(new Error(`stopped by ${signal}`)));
    if (!ctx.cmd.json) ctx.io.stderr.write(`syncing ${dir} with ${objectId}; Ctrl-C stops\n`);
    try {
      await agent.run(aborter.signal);
    } finally {
      unsubscribe();
    }
    if (!ctx.cmd.json) ctx.io.stderr.write('stopped\n');
    return CliExit.ok;
  } finally {
    await relay?.close();
    await peer?.listener.close();
    await agent.close();
  }
}

async function status(ctx: Context): Promise<void> {
  const dir = stateDir(ctx.io.env, ctx.io.home);
  const wanted = ctx.cmd.flags.object;
  const databases = (await listStateDatabases(dir)).filter((d) => wanted === undefined || d.objectId === wanted);
  const folders: (AgentStatus & { statePath: string })[] = [];
  const unreadable: { statePath: string; dir?: string; objectId?: string; error: string }[] = [];
  for (const db of databases) {
    try {
      folders.push({ ...(ctx.io.engine ?? realEngine).readStatus(db.path), statePath: db.path });
    } catch (err) {
      unreadable.push({ statePath: db.path, dir: db.dir, objectId: db.objectId, error: outcomeOf(err).message });
    }
  }
  print(ctx, { stateDir: dir, folders, unreadable }, () => {
    if (folders.length === 0 && unreadable.length === 0) return nothingSyncedYet;
    const lines = folders.map(formatStatus);
    for (const u of unreadable) lines.push(`${u.dir ?? u.statePath}  <->  ${u.objectId ?? '?'}\n  cannot read its state: ${u.error}\n`);
    return lines.join('\n');
  });
}
