// Pure helpers of browsing a device through its relay (docs/web.md): the page's hash for a
// place on a device, the download link of a file there, and what to tell a person when the
// device cannot be reached.
import { ApiError } from '@meshwork/client';

/** A place on a device: its objects (no objectId), or a directory of one of them. */
export interface DevicePlace {
  deviceId: string;
  objectId?: string;
  dir: string;
}

const encodePath = (path: string): string => path.split('/').map(encodeURIComponent).join('/');

/** The hash of a place on a device: `#/d/{deviceId}/{objectId}/{dir}`. */
export function deviceHref(place: DevicePlace): string {
  const base = `#/d/${encodeURIComponent(place.deviceId)}/`;
  if (place.objectId === undefined) return base;
  return `${base}${encodeURIComponent(place.objectId)}/${place.dir === '' ? '' : encodePath(place.dir)}`;
}

/** The place a hash's parts after `d` name (`['dev', 'obj', 'a', 'b']`). */
export function placeOf(parts: readonly string[]): DevicePlace {
  const [deviceId = '', objectId, ...rest] = parts;
  const dir = rest.filter((p) => p !== '').join('/');
  return objectId === undefined || objectId === '' ? { deviceId, dir: '' } : { deviceId, objectId, dir };
}

/** The URL that downloads a file from the device (same origin: the session cookie goes with it). */
export function deviceFileUrl(deviceId: string, objectId: string, path: string): string {
  return `/v1/devices/${encodeURIComponent(deviceId)}/remote/files/${encodeURIComponent(objectId)}/${encodePath(path)}`;
}

/** A message for a failure reaching a device, or undefined when it is not about the device. */
export function deviceProblem(err: unknown): string | undefined {
  if (!(err instanceof ApiError)) return undefined;
  if (err.code === 'device_offline')
    return 'This device is offline: it is not connected to the mesh now. Its folders can be browsed while it runs meshwork sync.';
  if (err.code === 'relay_busy') return 'This device is busy serving other requests: try again in a moment.';
  if (err.code === 'not_found') return 'There is nothing here on this device (or you may not see it).';
  return undefined;
}
