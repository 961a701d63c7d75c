// The drop-ins: `fetch()` on a module-wide Session (created on first use, like connect()'s), and
// UvfetchAgent for code that takes an undici dispatcher.

import { Session } from '../session/session.js';
import { registerFetch, type UvfetchRequestInit, type UvfetchResponse } from '../session/fetch-types.js';
import { sessionFetch } from './fetch.js';

export { UvfetchAgent, type UvfetchDispatchOptions, type UvfetchDispatchHandler, type UvfetchDispatchController } from './agent.js';
export type { UvfetchRequestInit, UvfetchResponse, UvfetchFetchOptions, FetchResponseDetails } from '../session/fetch-types.js';

registerFetch((session, input, init) => sessionFetch(session as Session, input, init));

let defaultSession: Session | undefined;

/** The session the module-level fetch() uses (default options; created on first use, never closed). */
export function fetchSession(): Session {
  defaultSession ??= new Session();
  return defaultSession;
}

/**
 * WHATWG fetch() through uvfetch's native engine, on a module-wide Session. Same arguments and
 * result as Node's global fetch (a global Response), plus uvfetch's options in `init`.
 */
export function fetch(input: string | URL | Request, init?: UvfetchRequestInit): Promise<UvfetchResponse> {
  return sessionFetch(fetchSession(), input, init);
}
