// Browser profiles (see profiles.ts, data.ts).
export { SHIPPED } from './data.js';
export { type Impersonation, impersonation, makeProfile, mergeProfileHeaders, profiles, resolveProfile } from './profiles.js';
export type * from './types.js';
