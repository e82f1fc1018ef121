// Query parameters of the long-poll routes.
import { invalidRequest } from '../errors.ts';
import { maxWaitSeconds } from './long-polls.ts';

/**
 * Parses `wait` (whole seconds, 0 to 60); `fallback` when absent. A value over 60 is refused
 * rather than clamped, so a client learns its timeout is not what it asked for.
 */
export function parseWaitSeconds(value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'string') throw invalidRequest('wait', 'wait: must be given once');
  if (!/^\d{1,3}$/.test(value) || Number(value) > maxWaitSeconds) {
    throw invalidRequest('wait', `wait: must be a whole number of seconds from 0 to ${maxWaitSeconds}`);
  }
  return Number(value);
}
