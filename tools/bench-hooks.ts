// Hooks for uvfetch's own benchmarks; not part of the public API (not exported from lib/index.ts).
// The Session reads this registered symbol (lib/session/options.ts); nothing here is imported by the
// library.
//
// kMemoryResponse as a Session option key makes every connection of that session a
// socket-less stand-in (native/core/net/memory_socket.h): it "connects" at once and answers each
// request head with the given complete response, from the event loop, without the kernel. What
// remains is exactly uvfetch's own cost per request: the JS API, one submit crossing, encoding,
// pool dispatch, parsing, the per-turn batch and the promise resolution.
//
//   new Session({ [kMemoryResponse]: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok' } as SessionOptions)
export const kMemoryResponse = Symbol.for('uvfetch.bench.memoryResponse');
