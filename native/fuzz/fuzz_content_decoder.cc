// Fuzz target: http1::ContentDecoder (gzip / deflate / br chains) over arbitrary bytes.
//
// Input: 4 control bytes, then the encoded body.
//   [0] bits 0-2: number of codings (0..5); [1] two bits per coding (gzip, deflate, br, gzip)
//   [2..3] seed of the split plan
// Invariants:
//   - the decoder never hands over more than max_output bytes in all, nor (past the grace) more
//     than max_ratio x the encoded bytes plus one output piece; pieces are at most kChunk bytes;
//   - the same bytes give the same result (decoded bytes, ok/failed, error code) whether fed at
//     once or in fuzzer-chosen pieces — except the ratio limit, which by design judges the bytes
//     received so far (a bomb fed slowly trips it earlier); then one output is a prefix of the other;
//   - after a failure, feed() and finish() keep failing and hand over nothing.
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "http1/content_decoder.h"

using namespace uvf;
using namespace uvf::http1;
using uvf_fuzz::Splitter;

namespace {

struct Outcome {
  std::string out;
  bool ok = false;
  Error error = Error::Ok;
};

constexpr uint64_t kMaxOutput = 4 << 20;

bool sink(void* ctx, const char* p, size_t n) {
  FUZZ_CHECK(n > 0 && n <= ContentDecoder::kChunk);
  auto* o = static_cast<Outcome*>(ctx);
  o->out.append(p, n);
  return true;
}

Outcome run(const std::vector<Coding>& codings, const uint8_t* p, size_t n, Splitter* split) {
  Outcome o;
  ContentDecoder d;
  ContentDecoder::Limits lim;
  lim.max_output = kMaxOutput;
  lim.max_ratio = 100;
  lim.ratio_grace = 64 * 1024;
  if (!d.init(codings, lim)) {
    o.error = d.error();
    return o;
  }
  size_t pos = 0;
  bool ok = true;
  while (ok && pos < n) {
    size_t len = split != nullptr ? split->next_piece() : n - pos;
    if (len > n - pos) len = n - pos;
    // Each piece in its own exact-size block: reads outside it are ASan reports.
    std::unique_ptr<char[]> piece(new char[len]);
    std::memcpy(piece.get(), p + pos, len);
    ok = d.feed(piece.get(), len, sink, &o);
    pos += len;
    FUZZ_CHECK(o.out.size() <= kMaxOutput);
    FUZZ_CHECK(o.out.size() <= lim.ratio_grace + 100 * pos + ContentDecoder::kChunk);
  }
  if (ok) ok = d.finish(sink, &o);
  o.ok = ok;
  o.error = d.error();
  if (!ok) {
    size_t before = o.out.size();
    FUZZ_CHECK(!d.feed("x", 1, sink, &o));
    FUZZ_CHECK(!d.finish(sink, &o));
    FUZZ_CHECK(o.out.size() == before);
  }
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  static const Coding kMap[4] = {Coding::Gzip, Coding::Deflate, Coding::Brotli, Coding::Gzip};
  std::vector<Coding> codings;
  size_t count = (data[0] & 7) % 6;
  for (size_t i = 0; i < count; ++i) codings.push_back(kMap[(data[1] >> ((i % 4) * 2)) & 3]);
  Splitter split(static_cast<uint16_t>(data[2] | (data[3] << 8)));
  Outcome whole = run(codings, data + 4, size - 4, nullptr);
  Outcome pieces = run(codings, data + 4, size - 4, &split);
  if (whole.error == Error::DecompressionBomb || pieces.error == Error::DecompressionBomb) {
    const std::string& a = whole.out.size() < pieces.out.size() ? whole.out : pieces.out;
    const std::string& b = whole.out.size() < pieces.out.size() ? pieces.out : whole.out;
    FUZZ_CHECK(b.compare(0, a.size(), a) == 0);
    return 0;
  }
  FUZZ_CHECK(whole.ok == pieces.ok);
  FUZZ_CHECK(whole.error == pieces.error);
  if (whole.ok) FUZZ_CHECK(whole.out == pieces.out);
  return 0;
}
