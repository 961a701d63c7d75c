// The 'uvfetch/testing' entry: MockSession.
export { type InterceptOptions, Interception, MockSession, type MockedRequest, type ReplyBody, type StringMatcher } from './mock.js';
