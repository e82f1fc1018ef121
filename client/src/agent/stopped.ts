// The one error the engine raises to say it must stop for good; its own module so that the
// engine and the public surface (index.ts) both import it without a cycle.
import type { StopCode } from './index.ts';

/** The agent stopped for good: the device was revoked (401) or the object is gone for this user (404). */
export class AgentStopped extends Error {
  readonly code: StopCode;
  constructor(code: StopCode, message: string) {
    super(message);
    this.name = 'AgentStopped';
    this.code = code;
  }
}
