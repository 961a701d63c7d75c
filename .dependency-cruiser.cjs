// The layering of lib/ (npm run lint:deps). Bottom up:
//
//   core/           errors, types, headers, options, defaults, version   (pure: no addon)
//   native/         the addon loader, its error indices, the event wire
//   net/ tls/ policies/                                                  (policies: pure)
//   profiles/       browser profiles (data over tls/)
//   observability/  tracing channels, metrics
//   session/        Session and its parts, responses, the policy loop, fetchMany
//   raw/            raw sockets and SocketPool (built on a Session's engine)
//   fetch/          fetch() and UvfetchAgent (session.fetch() reaches it through a registration
//                   in session/fetch-types.ts, so session/ does not import it)
//   interceptors/   ready-made interceptors (logging, bearer token, response cache)
//   testing/        MockSession (the 'uvfetch/testing' entry)
//   otel/           UvfetchInstrumentation (the 'uvfetch/otel' entry; loads @opentelemetry/api)
//   index.ts        exports only
//
// A layer imports only from layers below it (type imports included), nothing has a cycle, the
// pure modules cannot reach the addon even indirectly, and tools/ uses the library only through
// its entry. Folders not named here (e.g. new ones) are held to "no cycles" and "nothing imports
// the entry" until they get a rule.

const layer = (name, allowed) => ({
  name: `layer-${name}`,
  comment: `lib/${name}/ may import only from: ${allowed.join(', ')}`,
  severity: 'error',
  from: { path: `^lib/${name}/` },
  to: { path: '^lib/', pathNot: [`^lib/(${allowed.join('|')})/`] },
});

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No import cycles, type imports included.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    layer('core', ['core']),
    layer('native', ['core', 'native']),
    layer('net', ['core', 'native', 'net']),
    layer('tls', ['core', 'native', 'tls']),
    layer('policies', ['core', 'policies']),
    layer('profiles', ['core', 'native', 'tls', 'profiles']),
    layer('observability', ['core', 'tls', 'observability']),
    layer('session', ['core', 'native', 'net', 'tls', 'profiles', 'policies', 'observability', 'session']),
    layer('raw', ['core', 'native', 'net', 'tls', 'profiles', 'policies', 'observability', 'session', 'raw']),
    layer('fetch', ['core', 'native', 'net', 'tls', 'profiles', 'policies', 'observability', 'session', 'fetch']),
    layer('interceptors', ['core', 'policies', 'session', 'interceptors']),
    layer('testing', ['core', 'policies', 'session', 'fetch', 'testing']),
    layer('otel', ['core', 'policies', 'observability', 'session', 'otel']),
    layer('fleet', ['core', 'native', 'net', 'tls', 'profiles', 'policies', 'observability', 'session', 'fleet']),
    {
      name: 'pure-modules-load-no-addon',
      comment: 'core/, policies/ and net/proxy.ts must not reach the native addon, even indirectly.',
      severity: 'error',
      from: { path: '^lib/(core/|policies/|net/proxy\\.ts)' },
      to: { path: '^lib/native/', reachable: true },
    },
    {
      name: 'otel-api-only-in-otel',
      comment: "@opentelemetry/api (an optional peer) is loaded only by lib/otel/ (the 'uvfetch/otel' entry).",
      severity: 'error',
      from: { path: '^lib/', pathNot: '^lib/otel/' },
      to: { path: '@opentelemetry' },
    },
    {
      name: 'optional-entries-are-not-imported',
      comment: "lib/otel/ and lib/testing/ are entries of their own: the rest of lib/ does not import them.",
      severity: 'error',
      from: { path: '^lib/', pathNot: '^lib/(otel|testing)/' },
      to: { path: '^lib/(otel|testing)/' },
    },
    {
      name: 'entry-is-not-imported',
      comment: 'lib/index.ts only re-exports; nothing in lib/ imports it.',
      severity: 'error',
      from: { path: '^lib/' },
      to: { path: '^lib/index\\.ts$' },
    },
    {
      name: 'lib-does-not-use-tooling',
      comment: 'The library never loads tools/ or test/ code.',
      severity: 'error',
      from: { path: '^lib/' },
      to: { path: '^(tools|test)/' },
    },
    {
      name: 'tools-use-the-entry',
      comment: 'tools/ uses the library as users do: through its entries (uvfetch, uvfetch/fleet).',
      severity: 'error',
      from: { path: '^tools/' },
      to: { path: '^lib/', pathNot: '^lib/(index|fleet/index)\\.ts$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports count: a cycle through types is still a cycle.
    tsPreCompilationDeps: true,
    // tools/ imports 'uvfetch'; tsconfig.test.json maps that name to lib/index.ts.
    tsConfig: { fileName: 'tsconfig.test.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'types'], extensions: ['.ts', '.js'] },
  },
};
