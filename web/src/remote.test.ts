// The helpers of browsing a device: hashes and links round-trip, and the offline message.
import { describe, expect, it } from 'vitest';
import { ApiError } from '@meshwork/client';
import { deviceFileUrl, deviceHref, deviceProblem, placeOf } from './remote.ts';

describe('device places', () => {
  it.each([
    [{ deviceId: 'd1', dir: '' }, '#/d/d1/'],
    [{ deviceId: 'd1', objectId: 'o1', dir: '' }, '#/d/d1/o1/'],
    [{ deviceId: 'd1', objectId: 'o1', dir: 'a b/c#d' }, '#/d/d1/o1/a%20b/c%23d'],
  ])('%j is %s and back', (place, hash) => {
    expect(deviceHref(place)).toBe(hash);
    const parts = hash
      .replace(/^#\/d\//, '')
      .split('/')
      .map(decodeURIComponent);
    expect(placeOf(parts)).toEqual(place);
  });

  it('links a file to the remote route, each segment encoded', () => {
    expect(deviceFileUrl('d1', 'o1', 'films/a b?.mkv')).toBe('/v1/devices/d1/remote/files/o1/films/a%20b%3F.mkv');
  });

  it('says an offline device in words, and leaves other errors alone', () => {
    expect(deviceProblem(new ApiError('device_offline', 'device d1 is not connected'))).toMatch(/^This device is offline/);
    expect(deviceProblem(new ApiError('relay_busy', 'busy'))).toMatch(/busy/);
    expect(deviceProblem(new ApiError('forbidden', 'no'))).toBeUndefined();
    expect(deviceProblem(new Error('x'))).toBeUndefined();
  });
});
