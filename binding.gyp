# The install-time build of the addon (node-gyp): `npm install` runs it through node-gyp-build
# when no prebuild fits. node-gyp comes with npm, so every user has it; CMake is not assumed on
# users' machines. Developers and CI build everything else (C++ unit tests, fuzzers, benchmarks,
# the ASan addon) with CMakeLists.txt, from the same source rule.
{
  "targets": [
    {
      "target_name": "uvfetch",
      # Sources: not listed here. scripts/native-sources.js holds the one rule (every
      # native/core/**/*.cc and native/binding/*.cc); CMakeLists.txt uses the same script, and
      # test/unit/native-sources.test.ts fails when the two lists disagree.
      "sources": ["<!@(node scripts/native-sources.js addon)"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native/core"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_DISABLE_CPP_EXCEPTIONS",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED"
      ],
      "cflags_cc": ["-std=c++17", "-O2", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc!": ["-std=gnu++1y", "-std=gnu++17"],
      "xcode_settings": {
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "GCC_SYMBOLS_PRIVATE_EXTERN": "YES"
      }
    }
  ]
}
