#include "http1/content_decoder.h"

#include <dlfcn.h>
#include <zlib.h>

#include <cstring>

// Brotli's decoder API (stable since brotli 1.0). Node exports these symbols but ships no brotli
// headers, so the few declarations needed are spelled out here.
extern "C" {
typedef struct BrotliDecoderStateStruct BrotliDecoderState;
typedef void* (*uvf_brotli_alloc_func)(void* opaque, size_t size);
typedef void (*uvf_brotli_free_func)(void* opaque, void* address);
BrotliDecoderState* BrotliDecoderCreateInstance(uvf_brotli_alloc_func alloc, uvf_brotli_free_func free_func,
                                                void* opaque);
void BrotliDecoderDestroyInstance(BrotliDecoderState* state);
int BrotliDecoderDecompressStream(BrotliDecoderState* state, size_t* available_in, const uint8_t** next_in,
                                  size_t* available_out, uint8_t** next_out, size_t* total_out);
}

namespace uvf::http1 {

namespace {

enum BrotliResult { kBrotliError = 0, kBrotliSuccess = 1, kBrotliNeedsInput = 2, kBrotliNeedsOutput = 3 };

bool ieq(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
    if (x != y) return false;
  }
  return true;
}

// zstd streaming API, looked up at run time (absent from Node 20's exports).
struct ZstdInBuffer {
  const void* src;
  size_t size;
  size_t pos;
};
struct ZstdOutBuffer {
  void* dst;
  size_t size;
  size_t pos;
};
struct ZstdApi {
  void* (*create)() = nullptr;
  size_t (*free_stream)(void*) = nullptr;
  size_t (*set_parameter)(void*, int, int) = nullptr;
  size_t (*decompress)(void*, ZstdOutBuffer*, ZstdInBuffer*) = nullptr;
  unsigned (*is_error)(size_t) = nullptr;
  bool ok = false;
};

const ZstdApi& zstd() {
  static const ZstdApi api = [] {
    ZstdApi a;
    a.create = reinterpret_cast<void* (*)()>(dlsym(RTLD_DEFAULT, "ZSTD_createDCtx"));
    a.free_stream = reinterpret_cast<size_t (*)(void*)>(dlsym(RTLD_DEFAULT, "ZSTD_freeDCtx"));
    a.set_parameter = reinterpret_cast<size_t (*)(void*, int, int)>(dlsym(RTLD_DEFAULT, "ZSTD_DCtx_setParameter"));
    a.decompress =
        reinterpret_cast<size_t (*)(void*, ZstdOutBuffer*, ZstdInBuffer*)>(dlsym(RTLD_DEFAULT, "ZSTD_decompressStream"));
    a.is_error = reinterpret_cast<unsigned (*)(size_t)>(dlsym(RTLD_DEFAULT, "ZSTD_isError"));
    a.ok = a.create && a.free_stream && a.set_parameter && a.decompress && a.is_error;
    return a;
  }();
  return api;
}

constexpr int kZstdWindowLogMax = 100;  // ZSTD_d_windowLogMax
constexpr int kZstdHttpWindowLog = 23;  // RFC 9659: decoders need not accept windows above 8 MiB

}  // namespace

bool zstd_available() { return zstd().ok; }

std::string_view default_accept_encoding() {
  return zstd_available() ? std::string_view("gzip, deflate, br, zstd") : std::string_view("gzip, deflate, br");
}

bool parse_content_encoding(std::string_view v, std::vector<Coding>* out, bool* too_many) {
  size_t i = 0;
  while (i <= v.size()) {
    size_t end = v.find(',', i);
    if (end == std::string_view::npos) end = v.size();
    std::string_view tok = v.substr(i, end - i);
    while (!tok.empty() && (tok.front() == ' ' || tok.front() == '\t')) tok.remove_prefix(1);
    while (!tok.empty() && (tok.back() == ' ' || tok.back() == '\t')) tok.remove_suffix(1);
    i = end + 1;
    if (tok.empty() || ieq(tok, "identity")) continue;
    Coding c;
    if (ieq(tok, "gzip") || ieq(tok, "x-gzip")) {
      c = Coding::Gzip;
    } else if (ieq(tok, "deflate")) {
      c = Coding::Deflate;
    } else if (ieq(tok, "br")) {
      c = Coding::Brotli;
    } else if (ieq(tok, "zstd") && zstd_available()) {
      c = Coding::Zstd;
    } else {
      return false;
    }
    if (out->size() >= kMaxCodings) {
      *too_many = true;
      return true;
    }
    out->push_back(c);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------

class ContentDecoder::Stage {
 public:
  static constexpr size_t kChunk = ContentDecoder::kChunk;
  Stage(ContentDecoder* owner, size_t index) : owner_(owner), index_(index) {}
  virtual ~Stage() = default;
  virtual bool init() = 0;
  virtual bool feed(const char* p, size_t n) = 0;
  virtual bool finish() = 0;

 protected:
  bool out(const char* p, size_t n) { return n == 0 || owner_->push(index_ + 1, p, n, false); }
  bool fail(const char* why) { return owner_->fail(Error::Decompression, why); }
  ContentDecoder* owner_;
  size_t index_;
  std::unique_ptr<char[]> buf_{new char[kChunk]};
};

namespace {

class ZlibStage final : public ContentDecoder::Stage {
 public:
  ZlibStage(ContentDecoder* o, size_t i, bool gzip) : Stage(o, i), gzip_(gzip) {}
  ~ZlibStage() override {
    if (inited_) inflateEnd(&zs_);
  }
  bool init() override { return true; }  // the window format is decided by the first bytes (deflate)

  bool feed(const char* p, size_t n) override {
    if (!inited_) {
      // "deflate" should be zlib-wrapped (RFC 9110 §8.4.1.2), but some servers send raw deflate.
      // Two bytes tell: a zlib header is CM=8 with a check value divisible by 31.
      size_t take = std::min(n, sizeof(head_) - head_len_);
      std::memcpy(head_ + head_len_, p, take);
      head_len_ += take;
      p += take;
      n -= take;
      if (head_len_ < 2) return true;
      int bits;
      if (gzip_) {
        bits = 15 + 16;
      } else {
        auto b0 = static_cast<unsigned char>(head_[0]), b1 = static_cast<unsigned char>(head_[1]);
        bits = ((b0 & 0x0f) == 8 && ((b0 << 8) | b1) % 31 == 0) ? 15 : -15;
      }
      std::memset(&zs_, 0, sizeof zs_);
      if (inflateInit2(&zs_, bits) != Z_OK) return owner_fail_mem();
      inited_ = true;
      if (!run(head_, head_len_)) return false;
    }
    return run(p, n);
  }

  bool finish() override {
    if (!inited_) return head_len_ == 0 ? true : fail("truncated compressed body");
    if (!done_) return fail("truncated compressed body");
    return true;
  }

 private:
  bool owner_fail_mem() { return fail("out of memory initialising zlib"); }

  bool run(const char* p, size_t n) {
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(p));
    zs_.avail_in = static_cast<uInt>(n);
    while (zs_.avail_in > 0) {
      if (done_) {
        // More bytes after a complete stream: another gzip member (RFC 1952 §2.2), or padding
        // some servers append (ignored, as browsers do).
        if (ignore_rest_ || !gzip_ || zs_.next_in[0] != 0x1f) {
          ignore_rest_ = true;  // decided by the first byte after the stream, whatever the split
          zs_.avail_in = 0;
          break;
        }
        inflateReset(&zs_);
        done_ = false;
      }
      size_t produced = 0;
      int status = Z_OK;
      if (!step(&produced, &status)) return false;
      if (status == Z_BUF_ERROR && produced == 0) break;  // needs more input
    }
    // Output may still be pending with all input consumed (the window flushes in pieces). When
    // the last call filled the buffer exactly, the next one may find nothing: Z_BUF_ERROR with
    // nothing produced, which is not an error.
    while (!done_ && zs_.avail_out == 0) {
      size_t produced = 0;
      int status = Z_OK;
      if (!step(&produced, &status)) return false;
      if (produced == 0) break;
    }
    return true;
  }

  // One inflate() call into the output buffer, handing over what it produced. False when
  // decoding (or the consumer) failed; *status is zlib's (Z_BUF_ERROR, negative, only means
  // that no progress was possible).
  bool step(size_t* produced, int* status) {
    zs_.next_out = reinterpret_cast<Bytef*>(buf_.get());
    zs_.avail_out = static_cast<uInt>(kChunk);
    int r = inflate(&zs_, Z_NO_FLUSH);
    *produced = kChunk - zs_.avail_out;
    *status = r;
    if (r == Z_STREAM_END) done_ = true;
    if (r != Z_OK && r != Z_STREAM_END && r != Z_BUF_ERROR) return fail(gzip_ ? "invalid gzip data" : "invalid deflate data");
    return out(buf_.get(), *produced);
  }

  z_stream zs_{};
  bool gzip_;
  bool inited_ = false;
  bool done_ = false;
  bool ignore_rest_ = false;  // padding after the last member: everything else is ignored
  char head_[2];
  size_t head_len_ = 0;
};

class BrotliStage final : public ContentDecoder::Stage {
 public:
  using Stage::Stage;
  ~BrotliStage() override {
    if (st_ != nullptr) BrotliDecoderDestroyInstance(st_);
  }
  bool init() override {
    st_ = BrotliDecoderCreateInstance(nullptr, nullptr, nullptr);
    return st_ != nullptr || fail("out of memory initialising brotli");
  }
  bool feed(const char* p, size_t n) override {
    const auto* in = reinterpret_cast<const uint8_t*>(p);
    size_t avail_in = n;
    for (;;) {
      if (done_) {
        if (avail_in > 0) return fail("data after the end of the brotli stream");
        return true;
      }
      auto* next_out = reinterpret_cast<uint8_t*>(buf_.get());
      size_t avail_out = kChunk;
      int r = BrotliDecoderDecompressStream(st_, &avail_in, &in, &avail_out, &next_out, nullptr);
      if (r == kBrotliError) return fail("invalid brotli data");
      if (!out(buf_.get(), kChunk - avail_out)) return false;
      if (r == kBrotliSuccess) {
        done_ = true;
        continue;
      }
      if (r == kBrotliNeedsInput) return true;
      // kBrotliNeedsOutput: loop
    }
  }
  bool finish() override { return done_ || fail("truncated compressed body"); }

 private:
  BrotliDecoderState* st_ = nullptr;
  bool done_ = false;
};

class ZstdStage final : public ContentDecoder::Stage {
 public:
  using Stage::Stage;
  ~ZstdStage() override {
    if (ctx_ != nullptr) zstd().free_stream(ctx_);
  }
  bool init() override {
    ctx_ = zstd().create();
    if (ctx_ == nullptr) return fail("out of memory initialising zstd");
    zstd().set_parameter(ctx_, kZstdWindowLogMax, kZstdHttpWindowLog);
    return true;
  }
  bool feed(const char* p, size_t n) override {
    ZstdInBuffer in{p, n, 0};
    while (in.pos < in.size || pending_) {
      ZstdOutBuffer o{buf_.get(), kChunk, 0};
      size_t r = zstd().decompress(ctx_, &o, &in);
      if (zstd().is_error(r)) return fail("invalid zstd data (or a window above 8 MiB)");
      if (!out(buf_.get(), o.pos)) return false;
      frame_open_ = r != 0;
      pending_ = o.pos == o.size;  // the output buffer filled: more may be waiting
      if (!pending_ && in.pos == in.size) break;
    }
    return true;
  }
  bool finish() override { return !frame_open_ || fail("truncated compressed body"); }

 private:
  void* ctx_ = nullptr;
  bool frame_open_ = false;
  bool pending_ = false;
};

}  // namespace

// ---------------------------------------------------------------------------------------------

ContentDecoder::ContentDecoder() = default;
ContentDecoder::~ContentDecoder() = default;

bool ContentDecoder::init(const std::vector<Coding>& codings, const Limits& limits) {
  limits_ = limits;
  stages_.clear();
  error_ = Error::Ok;
  detail_ = nullptr;
  encoded_ = decoded_ = 0;
  stopped_ = false;
  // The last coding applied is undone first.
  for (size_t k = codings.size(); k-- > 0;) {
    size_t idx = stages_.size();
    std::unique_ptr<Stage> s;
    switch (codings[k]) {
      case Coding::Identity:
        continue;
      case Coding::Gzip:
        s = std::make_unique<ZlibStage>(this, idx, true);
        break;
      case Coding::Deflate:
        s = std::make_unique<ZlibStage>(this, idx, false);
        break;
      case Coding::Brotli:
        s = std::make_unique<BrotliStage>(this, idx);
        break;
      case Coding::Zstd:
        if (!zstd_available()) return fail(Error::Decompression, "zstd is not available in this Node.js");
        s = std::make_unique<ZstdStage>(this, idx);
        break;
    }
    stages_.push_back(std::move(s));
    if (!stages_.back()->init()) return false;
  }
  return true;
}

bool ContentDecoder::fail(Error e, const char* detail) {
  if (error_ == Error::Ok) {
    error_ = e;
    detail_ = detail;
  }
  return false;
}

bool ContentDecoder::emit(const char* p, size_t n) {
  decoded_ += n;
  if (decoded_ > limits_.max_output) return fail(Error::BodyTooLarge, "decoded response body exceeds maxBodySize");
  if (limits_.max_ratio > 0 && decoded_ > limits_.ratio_grace &&
      static_cast<double>(decoded_) > limits_.max_ratio * static_cast<double>(encoded_)) {
    return fail(Error::DecompressionBomb, "decoded/encoded size ratio exceeds maxDecompressionRatio");
  }
  if (!sink_(ctx_, p, n)) {
    stopped_ = true;
    return false;
  }
  return true;
}

bool ContentDecoder::push(size_t stage, const char* p, size_t n, bool) {
  if (stage == stages_.size()) return emit(p, n);
  return stages_[stage]->feed(p, n);
}

bool ContentDecoder::feed(const char* p, size_t n, Sink sink, void* ctx) {
  if (error_ != Error::Ok || stopped_) return false;
  sink_ = sink;
  ctx_ = ctx;
  encoded_ += n;
  bool ok = stages_.empty() ? emit(p, n) : stages_[0]->feed(p, n);
  return ok || named_failure();
}

// Every failure carries a code (the sink stopping is the caller's own doing): a stage that gives
// up without saying why is a bug of ours, reported as such rather than as a nameless failure.
bool ContentDecoder::named_failure() {
  if (error_ == Error::Ok && !stopped_) fail(Error::Internal, "content decoder stopped without a reason");
  return false;
}

bool ContentDecoder::finish(Sink sink, void* ctx) {
  if (error_ != Error::Ok || stopped_) return false;
  sink_ = sink;
  ctx_ = ctx;
  for (auto& s : stages_) {
    if (!s->finish()) return named_failure();
  }
  return true;
}

}  // namespace uvf::http1
