// Tests for http1/content_decoder: Content-Encoding parsing, gzip (multi-member, padding),
// zlib-wrapped and raw deflate, brotli, chains, split-anywhere equivalence, truncation, corruption,
// and the output/ratio limits (a bomb stops early and never hands over more than the limit).
#include <dlfcn.h>
#include <zlib.h>

#include <string>
#include <vector>

#include "check.h"
#include "http1/content_decoder.h"

using namespace uvf;
using namespace uvf::http1;

namespace {

std::string zcompress(const std::string& in, int window_bits) {
  z_stream zs{};
  deflateInit2(&zs, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, in.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}
std::string gzip(const std::string& s) { return zcompress(s, 15 + 16); }
std::string zlib_deflate(const std::string& s) { return zcompress(s, 15); }
std::string raw_deflate(const std::string& s) { return zcompress(s, -15); }

std::string unhex(const char* h) {
  std::string out;
  for (size_t i = 0; h[i] && h[i + 1]; i += 2) {
    auto nib = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
    out.push_back(static_cast<char>(nib(h[i]) * 16 + nib(h[i + 1])));
  }
  return out;
}
// brotli of "brotli says hello, " x 20 (made with node:zlib brotliCompressSync)
const char* kBrotliHex = "1b7b01f8457778bdf3f73e451463544f4161889091181d1bebbfa8246500";
std::string brotli_plain() {
  std::string s;
  for (int i = 0; i < 20; ++i) s += "brotli says hello, ";
  return s;
}

struct Result {
  bool ok = false;
  Error error = Error::Ok;
  std::string out;
  size_t max_piece = 0;
};

bool collect(void* ctx, const char* p, size_t n) {
  auto* r = static_cast<Result*>(ctx);
  r->out.append(p, n);
  if (n > r->max_piece) r->max_piece = n;
  return true;
}

// Decodes `in` fed in pieces of `step` bytes (0 = all at once).
Result decode(const std::vector<Coding>& codings, const std::string& in, size_t step = 0,
              ContentDecoder::Limits lim = {}) {
  Result r;
  ContentDecoder d;
  if (!d.init(codings, lim)) {
    r.error = d.error();
    return r;
  }
  size_t pos = 0;
  bool ok = true;
  while (ok && pos < in.size()) {
    size_t n = step == 0 ? in.size() : std::min(step, in.size() - pos);
    ok = d.feed(in.data() + pos, n, collect, &r);
    pos += n;
  }
  if (ok) ok = d.finish(collect, &r);
  r.ok = ok;
  r.error = d.error();
  return r;
}

std::string sample(size_t n) {
  std::string s;
  unsigned x = 12345;
  while (s.size() < n) {
    x = x * 1103515245 + 12345;
    s.push_back(static_cast<char>('a' + (x >> 16) % 7));  // compressible, not trivially
  }
  return s;
}

}  // namespace

TEST(content_encoding_parsing) {
  std::vector<Coding> c;
  bool many = false;
  CHECK(parse_content_encoding("gzip", &c, &many));
  CHECK(c.size() == 1 && c[0] == Coding::Gzip);
  c.clear();
  CHECK(parse_content_encoding(" X-GZIP ,identity, br ,deflate", &c, &many));
  CHECK(c.size() == 3 && c[0] == Coding::Gzip && c[1] == Coding::Brotli && c[2] == Coding::Deflate);
  c.clear();
  CHECK(!parse_content_encoding("gzip, compress", &c, &many));  // unknown: body left as is
  c.clear();
  CHECK(parse_content_encoding("gzip,gzip,gzip,gzip,gzip", &c, &many));
  CHECK(!many);
  CHECK(parse_content_encoding("gzip", &c, &many));
  CHECK(many);  // a sixth coding
  c.clear();
  many = false;
  CHECK(parse_content_encoding("", &c, &many));
  CHECK(c.empty());
}

TEST(content_decoder_gzip_deflate_brotli_any_split) {
  std::string plain = sample(300 * 1024);
  for (size_t step : {size_t(0), size_t(1), size_t(7), size_t(1000), size_t(65536)}) {
    Result g = decode({Coding::Gzip}, gzip(plain), step);
    CHECK(g.ok);
    CHECK(g.out == plain);
    CHECK(g.max_piece <= ContentDecoder::kChunk);
    Result z = decode({Coding::Deflate}, zlib_deflate(plain), step);
    CHECK(z.ok);
    CHECK(z.out == plain);
    Result raw = decode({Coding::Deflate}, raw_deflate(plain), step);  // servers that skip the zlib wrapper
    CHECK(raw.ok);
    CHECK(raw.out == plain);
    Result b = decode({Coding::Brotli}, unhex(kBrotliHex), step == 0 ? 0 : std::min<size_t>(step, 5));
    CHECK(b.ok);
    CHECK(b.out == brotli_plain());
  }
}

TEST(content_decoder_chain_multimember_padding) {
  std::string plain = sample(50 * 1024);
  // Applied gzip then deflate: undone in reverse.
  Result chain = decode({Coding::Gzip, Coding::Deflate}, zlib_deflate(gzip(plain)), 333);
  CHECK(chain.ok);
  CHECK(chain.out == plain);
  Result two = decode({Coding::Gzip}, gzip("first ") + gzip("second"), 3);
  CHECK(two.ok);
  CHECK_EQ(two.out, std::string("first second"));
  Result pad = decode({Coding::Gzip}, gzip("padded") + std::string(8, '\0'));
  CHECK(pad.ok);
  CHECK_EQ(pad.out, std::string("padded"));
  Result empty = decode({Coding::Gzip}, "");
  CHECK(empty.ok);
  CHECK(empty.out.empty());
}

TEST(content_decoder_errors) {
  std::string gz = gzip(sample(10000));
  Result trunc = decode({Coding::Gzip}, gz.substr(0, gz.size() / 2), 100);
  CHECK(!trunc.ok);
  CHECK(trunc.error == Error::Decompression);
  std::string bad = gz;
  bad[bad.size() / 2] = static_cast<char>(bad[bad.size() / 2] ^ 0x55);
  Result corrupt = decode({Coding::Gzip}, bad);
  CHECK(!corrupt.ok);
  CHECK(corrupt.error == Error::Decompression);
  Result notgz = decode({Coding::Gzip}, "this is not gzip at all");
  CHECK(!notgz.ok);
  CHECK(notgz.error == Error::Decompression);
  Result junk = decode({Coding::Brotli}, unhex(kBrotliHex) + "xx");
  CHECK(!junk.ok);
  CHECK(junk.error == Error::Decompression);
  Result badbr = decode({Coding::Brotli}, "\xff\xff\xff\xff");
  CHECK(!badbr.ok);
}

TEST(content_decoder_limits_stop_bombs_early) {
  std::string zeros(64u << 20, '\0');  // 64 MiB of zeros: ~64 KiB of gzip
  std::string bomb = gzip(zeros);
  ContentDecoder::Limits lim;  // ratio 100 past 1 MiB
  Result r = decode({Coding::Gzip}, bomb, 4096, lim);
  CHECK(!r.ok);
  CHECK(r.error == Error::DecompressionBomb);
  CHECK(r.out.size() <= (1u << 20) + 100 * (bomb.size()) + ContentDecoder::kChunk);
  CHECK(r.out.size() < zeros.size() / 8);
  // max_output caps decoded bytes whatever the ratio.
  ContentDecoder::Limits cap;
  cap.max_ratio = 0;
  cap.max_output = 100000;
  Result c = decode({Coding::Gzip}, bomb, 0, cap);
  CHECK(!c.ok);
  CHECK(c.error == Error::BodyTooLarge);
  CHECK(c.out.size() <= 100000);
  // With no limits the same stream decodes completely.
  ContentDecoder::Limits none;
  none.max_ratio = 0;
  Result all = decode({Coding::Gzip}, bomb, 0, none);
  CHECK(all.ok);
  CHECK_EQ(all.out.size(), zeros.size());
}

TEST(content_decoder_sink_can_stop) {
  ContentDecoder d;
  CHECK(d.init({Coding::Gzip}, {}));
  std::string gz = gzip(sample(500 * 1024));
  int calls = 0;
  auto stop = [](void* ctx, const char*, size_t) {
    ++*static_cast<int*>(ctx);
    return false;
  };
  CHECK(!d.feed(gz.data(), gz.size(), stop, &calls));
  CHECK_EQ(calls, 1);
  CHECK(d.error() == Error::Ok);  // stopped by the sink, not an error
  CHECK(!d.feed(gz.data(), 1, stop, &calls));
  CHECK_EQ(calls, 1);
}

TEST(content_decoder_zstd_when_available) {
  if (!zstd_available()) return;  // the test binary links libzstd, so this runs here
  using CompressFn = size_t (*)(void*, size_t, const void*, size_t, int);
  using BoundFn = size_t (*)(size_t);
  auto compress = reinterpret_cast<CompressFn>(dlsym(RTLD_DEFAULT, "ZSTD_compress"));
  auto bound = reinterpret_cast<BoundFn>(dlsym(RTLD_DEFAULT, "ZSTD_compressBound"));
  if (compress == nullptr || bound == nullptr) return;
  std::string plain = sample(200 * 1024);
  std::string z(bound(plain.size()), '\0');
  z.resize(compress(z.data(), z.size(), plain.data(), plain.size(), 3));
  CHECK_EQ(default_accept_encoding(), std::string_view("gzip, deflate, br, zstd"));
  for (size_t step : {size_t(0), size_t(1), size_t(4096)}) {
    Result r = decode({Coding::Zstd}, z, step);
    CHECK(r.ok);
    CHECK(r.out == plain);
  }
  Result trunc = decode({Coding::Zstd}, z.substr(0, z.size() - 3));
  CHECK(!trunc.ok);
  CHECK(trunc.error == Error::Decompression);
}

// A feed whose output ends exactly on a kChunk boundary while the stream goes on: zlib's next
// call finds nothing to do (Z_BUF_ERROR) — that is "feed me more", not a failure. (Found by the
// content_decoder fuzzer: the whole-body feed failed with no error code, a split feed did not.)
TEST(content_decoder_output_ending_on_a_chunk_boundary_is_not_an_error) {
  for (size_t chunks : {1u, 2u, 4u, 7u}) {
    const std::string plain(chunks * ContentDecoder::kChunk, 'x');
    for (const std::string& enc : {gzip(plain), zlib_deflate(plain), raw_deflate(plain)}) {
      ContentDecoder d;
      std::vector<Coding> c = {enc[0] == '\x1f' ? Coding::Gzip : Coding::Deflate};
      CHECK(d.init(c, {}));
      Result r;
      // Everything but the last 8 bytes: the output so far is whole chunks, the stream unfinished.
      CHECK(d.feed(enc.data(), enc.size() - 8, collect, &r));
      CHECK(d.error() == Error::Ok);
      CHECK(d.feed(enc.data() + enc.size() - 8, 8, collect, &r));
      CHECK(d.finish(collect, &r));
      CHECK(r.out == plain);
    }
  }
}

// A failed feed or finish always names its error.
TEST(content_decoder_failure_always_has_a_code) {
  const std::string enc = gzip(std::string(3 * ContentDecoder::kChunk, 'y'));
  for (size_t cut = 1; cut < enc.size(); cut += 3) {
    ContentDecoder d;
    CHECK(d.init({Coding::Gzip}, {}));
    Result r;
    bool ok = d.feed(enc.data(), cut, collect, &r) && d.finish(collect, &r);
    CHECK(!ok);  // truncated
    CHECK(d.error() == Error::Decompression);
  }
}
