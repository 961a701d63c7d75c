#include "http2/h2_session.h"

#include <algorithm>
#include <chrono>
#include <cstring>

namespace uvf::http2 {

namespace {

uint64_t steady_ms() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

constexpr size_t kMinMaxFrameSize = 16384;  // every peer accepts frames this large

struct SettingName {
  const char* name;
  uint16_t id;
};
constexpr SettingName kSettingNames[] = {
    {"HEADER_TABLE_SIZE", 1},      {"ENABLE_PUSH", 2},          {"MAX_CONCURRENT_STREAMS", 3},
    {"INITIAL_WINDOW_SIZE", 4},    {"MAX_FRAME_SIZE", 5},       {"MAX_HEADER_LIST_SIZE", 6},
    {"ENABLE_CONNECT_PROTOCOL", 8}, {"NO_RFC7540_PRIORITIES", 9},
};

bool ieq(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'a' && x <= 'z') x = static_cast<char>(x - 32);
    if (y >= 'a' && y <= 'z') y = static_cast<char>(y - 32);
    if (x != y) return false;
  }
  return true;
}

void put32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}
uint32_t get32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}
void frame_header(uint8_t* h, uint32_t len, uint8_t type, uint8_t flags, int32_t sid) {
  h[0] = static_cast<uint8_t>(len >> 16);
  h[1] = static_cast<uint8_t>(len >> 8);
  h[2] = static_cast<uint8_t>(len);
  h[3] = type;
  h[4] = flags;
  put32(h + 5, static_cast<uint32_t>(sid) & 0x7fffffffu);
}

bool connection_specific(std::string_view lname) {
  return lname == "connection" || lname == "keep-alive" || lname == "proxy-connection" ||
         lname == "transfer-encoding" || lname == "upgrade";
}

bool valid_name_char(unsigned char c) {
  // RFC 9110 token characters; upper case is accepted here and lower-cased on the way out.
  if (c >= 'a' && c <= 'z') return true;
  if (c >= 'A' && c <= 'Z') return true;
  if (c >= '0' && c <= '9') return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != 0;
}
bool valid_value(std::string_view v) {
  for (unsigned char c : v)
    if (c == 0 || c == '\r' || c == '\n') return false;
  return true;
}

}  // namespace

const char* h2_code_name(uint32_t c) {
  static const char* const kNames[] = {"NO_ERROR",       "PROTOCOL_ERROR",    "INTERNAL_ERROR",
                                       "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT", "STREAM_CLOSED",
                                       "FRAME_SIZE_ERROR", "REFUSED_STREAM",    "CANCEL",
                                       "COMPRESSION_ERROR", "CONNECT_ERROR",    "ENHANCE_YOUR_CALM",
                                       "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"};
  return c < sizeof(kNames) / sizeof(kNames[0]) ? kNames[c] : "UNKNOWN";
}

enum FloodKind { kFloodSettings, kFloodPing, kFloodRst, kFloodWindowUpdate, kFloodPriority, kFloodPush, kFloodEmpty };


bool setting_id_from_name(std::string_view name, uint16_t* id) {
  if (!name.empty() && name.size() <= 5 && std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    uint32_t v = 0;
    for (char c : name) v = v * 10 + static_cast<uint32_t>(c - '0');
    if (v == 0 || v > 0xffff) return false;
    *id = static_cast<uint16_t>(v);
    return true;
  }
  std::string_view n = name;
  if (n.size() > 9 && ieq(n.substr(0, 9), "SETTINGS_")) n.remove_prefix(9);
  for (const auto& s : kSettingNames) {
    if (ieq(n, s.name)) {
      *id = s.id;
      return true;
    }
  }
  return false;
}

Error validate_options(const SessionOptions& o, std::string* why) {
  auto bad = [&](const char* w) {
    if (why) *why = w;
    return Error::InvalidOption;
  };
  for (const auto& s : o.settings) {
    if (s.id == 0) return bad("settings: id 0 is not a setting");
    if (s.id == 2 && s.value > 1) return bad("settings: ENABLE_PUSH must be 0 or 1");
    if (s.id == 4 && s.value > 0x7fffffffu) return bad("settings: INITIAL_WINDOW_SIZE above 2^31-1");
    if (s.id == 5 && (s.value < 16384 || s.value > 16777215)) return bad("settings: MAX_FRAME_SIZE outside 16384..16777215");
    if (s.id == 8 && s.value > 1) return bad("settings: ENABLE_CONNECT_PROTOCOL must be 0 or 1");
    if (s.id == 9 && s.value > 1) return bad("settings: NO_RFC7540_PRIORITIES must be 0 or 1");
  }
  if (o.settings.size() > 1024) return bad("settings: too many entries");
  if (o.connection_window_increment > 0x7fffffffu - 65535u) return bad("connectionWindowIncrement: window above 2^31-1");
  auto check_prio = [&](const PrioritySpec& p, bool frame) -> bool {
    if (p.weight < 1 || p.weight > 256) return false;
    if (p.depends_on < 0) return false;
    if (frame && (p.stream_id <= 0 || p.stream_id == p.depends_on)) return false;
    return true;
  };
  for (const auto& p : o.priority_frames)
    if (!check_prio(p, true)) return bad("priorityFrames: stream id > 0, dependency >= 0 and not itself, weight 1..256");
  if (o.priority_frames.size() > 256) return bad("priorityFrames: at most 256");
  if (o.headers_priority && !check_prio(o.headers_priority_spec, false)) return bad("headersPriority: dependency >= 0, weight 1..256");
  std::string order(o.pseudo_order.begin(), o.pseudo_order.end());
  std::string sorted = order;
  std::sort(sorted.begin(), sorted.end());
  if (sorted != "amps") return bad("pseudoHeaderOrder: a permutation of method, authority, scheme, path");
  if (o.first_stream_id < 0 || (o.first_stream_id > 0 && (o.first_stream_id % 2) == 0))
    return bad("firstStreamId: an odd stream id");
  if (o.max_header_list_size == 0) return bad("maxHeaderListSize: > 0");
  if (o.flood_window_ms == 0) return bad("flood window: > 0");
  return Error::Ok;
}

struct H2Session::Stream {
  int32_t id = 0;
  bool headers_sent = false;
  bool final_received = false;
  bool in_head = false;  // the header block being received is a response head (else trailers)
  bool remote_closed = false;
  int status = 0;
  HeaderList headers;
  size_t header_bytes = 0;
  bool headers_overflow = false;
  bool bad_status = false;  // an invalid :status in this block: reset when it ends
  int64_t content_length = -1;
  uint64_t data_received = 0;
  uint8_t last_frame = 0xff;
  // flow control
  bool paused = false;
  size_t unconsumed = 0;
  // body
  bool has_body = false;
  std::string body;
  size_t body_off = 0;
  bool body_end = false;
  bool deferred = false;
  // priority on the HEADERS frame
  bool has_priority = false;
  PrioritySpec priority;
  // how it ends
  Error error = Error::Ok;
  std::string detail;
  bool peer_reset = false;
  uint32_t peer_code = 0;
  bool local_reset = false;
  uint32_t local_code = 0;
  bool lib_reset = false;
  uint32_t lib_code = 0;
  std::string lib_detail;
};

H2Session::H2Session(const SessionOptions& opts, H2Listener* listener)
    : ng_(api()), opts_(opts), listener_(listener) {}

H2Session::~H2Session() {
  if (session_ != nullptr) ng_.session_del(session_);
}

uint64_t H2Session::now() const { return opts_.clock_ms ? opts_.clock_ms() : steady_ms(); }

std::unique_ptr<H2Session> H2Session::create(const SessionOptions& opts, H2Listener* listener, Error* err,
                                             std::string* why) {
  const Nghttp2Api& a = api();
  if (!a.ok) {
    if (err) *err = Error::Http2Unavailable;
    if (why) *why = std::string("nghttp2 not available in this process: ") + a.missing;
    return nullptr;
  }
  Error e = validate_options(opts, why);
  if (e != Error::Ok) {
    if (err) *err = e;
    return nullptr;
  }
  std::unique_ptr<H2Session> s(new H2Session(opts, listener));
  if (!s->start(err, why)) return nullptr;
  return s;
}

bool H2Session::start(Error* err, std::string* why) {
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_option* opt = nullptr;
  if (ng_.session_callbacks_new(&cbs) != 0 || ng_.option_new(&opt) != 0) {
    if (cbs) ng_.session_callbacks_del(cbs);
    if (err) *err = Error::Internal;
    if (why) *why = "out of memory";
    return false;
  }
  ng_.session_callbacks_set_on_begin_frame_callback(cbs, cb_begin_frame);
  ng_.session_callbacks_set_on_begin_headers_callback(cbs, cb_begin_headers);
  ng_.session_callbacks_set_on_header_callback(cbs, cb_header);
  ng_.session_callbacks_set_on_frame_recv_callback(cbs, cb_frame_recv);
  ng_.session_callbacks_set_on_invalid_frame_recv_callback(cbs, cb_invalid_frame_recv);
  ng_.session_callbacks_set_on_data_chunk_recv_callback(cbs, cb_data_chunk);
  ng_.session_callbacks_set_on_frame_send_callback(cbs, cb_frame_send);
  ng_.session_callbacks_set_on_frame_not_send_callback(cbs, cb_frame_not_send);
  ng_.session_callbacks_set_on_stream_close_callback(cbs, cb_stream_close);
  ng_.session_callbacks_set_error_callback2(cbs, cb_error);
  ng_.option_set_no_auto_window_update(opt, 1);
  ng_.option_set_peer_max_concurrent_streams(opt, 100);
  ng_.option_set_max_settings(opt, opts_.max_settings_entries);
  ng_.option_set_max_outbound_ack(opt, opts_.max_outbound_ack);
  // nghttp2 >= 1.61 counts CONTINUATIONs itself; ours (one lower) reports first, with our error.
  if (ng_.option_set_max_continuations) ng_.option_set_max_continuations(opt, opts_.max_continuations + 1);
  int rv = ng_.session_client_new2(&session_, cbs, this, opt);
  ng_.session_callbacks_del(cbs);
  ng_.option_del(opt);
  if (rv != 0) {
    session_ = nullptr;
    if (err) *err = Error::Internal;
    if (why) *why = "nghttp2_session_client_new2 failed";
    return false;
  }
  std::vector<nghttp2_settings_entry> iv;
  iv.reserve(opts_.settings.size());
  for (const auto& s : opts_.settings) iv.push_back({s.id, s.value});
  rv = ng_.submit_settings(session_, 0, iv.data(), iv.size());
  if (rv == 0 && opts_.connection_window_increment > 0)
    rv = ng_.submit_window_update(session_, 0, 0, static_cast<int32_t>(opts_.connection_window_increment));
  int32_t first = opts_.first_stream_id;
  if (first == 0) {
    first = 1;
    for (const auto& p : opts_.priority_frames)
      if ((p.stream_id & 1) && p.stream_id >= first) first = p.stream_id + 2;
  }
  if (rv == 0 && first > 1) rv = ng_.session_set_next_stream_id(session_, first);
  if (rv != 0) {
    if (err) *err = Error::InvalidOption;
    if (why) *why = std::string("nghttp2 refused the preface: ") + ng_.strerror(rv);
    return false;
  }
  // Preface (magic, SETTINGS, WINDOW_UPDATE) now, so the PRIORITY frames follow it directly.
  pull_output(true);
  for (const auto& p : opts_.priority_frames) append_priority_frame(p);
  return !dead_;
}

// ---- output ------------------------------------------------------------------------------------

void H2Session::pull_output(bool ignore_high_water) {
  while (!dead_ && session_ != nullptr && (ignore_high_water || out_.size() - out_off_ < opts_.output_high_water)) {
    const uint8_t* p = nullptr;
    ssize_t n = ng_.session_mem_send(session_, &p);
    if (n < 0) {
      fail(Error::Http2Protocol, kH2InternalError, std::string("nghttp2: ") + ng_.strerror(static_cast<int>(n)));
      dead_ = true;
      break;
    }
    if (n == 0) break;
    frame_in(p, static_cast<size_t>(n));
  }
  finish_failure();
}

std::pair<const uint8_t*, size_t> H2Session::output() {
  pull_output(false);
  return {out_.data() + out_off_, out_.size() - out_off_};
}

void H2Session::consume_output(size_t n) {
  out_off_ += std::min(n, out_.size() - out_off_);
  if (out_off_ == out_.size()) {
    out_.clear();
    out_off_ = 0;
  } else if (out_off_ > 65536 && out_off_ * 2 > out_.size()) {
    out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(out_off_));
    out_off_ = 0;
  }
}

bool H2Session::want_write() {
  if (out_.size() > out_off_) return true;
  return !dead_ && session_ != nullptr && ng_.session_want_write(session_) != 0;
}

bool H2Session::finished() const {
  if (dead_) return true;
  return ng_.session_want_read(session_) == 0 && ng_.session_want_write(session_) == 0;
}

void H2Session::emit(const uint8_t* p, size_t n) {
  out_.insert(out_.end(), p, p + n);
  if (!fp_done_) observe_payload(p, n);
}

void H2Session::emit_frame_header(uint32_t len, uint8_t type, uint8_t flags, int32_t sid) {
  uint8_t h[9];
  frame_header(h, len, type, flags, sid);
  out_.insert(out_.end(), h, h + 9);
  if (!fp_done_) observe_header(len, type, flags, sid);
}

// nghttp2's output passes through here frame by frame (in whatever pieces mem_send returns).
// HEADERS frames of streams with a priority get the PRIORITY flag and the 5-byte field; when that
// would take the frame over 16384 bytes, the last 5 bytes of the block move to a CONTINUATION.
void H2Session::frame_in(const uint8_t* p, size_t n) {
  if (magic_left_ > 0) {  // the 24-byte client connection preface is not a frame
    size_t take = std::min(n, magic_left_);
    out_.insert(out_.end(), p, p + take);
    magic_left_ -= take;
    p += take;
    n -= take;
  }
  while (n > 0) {
    if (payload_left_ == 0 && !split_pending_) {
      size_t take = std::min(n, size_t{9} - fh_have_);
      std::memcpy(fh_ + fh_have_, p, take);
      fh_have_ += take;
      p += take;
      n -= take;
      if (fh_have_ < 9) return;
      fh_have_ = 0;
      uint32_t len = (uint32_t{fh_[0]} << 16) | (uint32_t{fh_[1]} << 8) | fh_[2];
      uint8_t type = fh_[3], flags = fh_[4];
      int32_t sid = static_cast<int32_t>(get32(fh_ + 5) & 0x7fffffffu);
      payload_left_ = len;
      Stream* s = type == kFrameHeaders && !(flags & (kFlagPriority | kFlagPadded)) ? find(sid) : nullptr;
      if (s != nullptr && s->has_priority) {
        uint8_t pri[5];
        put32(pri, (static_cast<uint32_t>(s->priority.depends_on) & 0x7fffffffu) |
                       (s->priority.exclusive ? 0x80000000u : 0u));
        pri[4] = static_cast<uint8_t>(s->priority.weight - 1);
        if (len + 5 <= kMinMaxFrameSize) {
          emit_frame_header(len + 5, type, flags | kFlagPriority, sid);
          emit(pri, 5);
        } else {
          emit_frame_header(len, type, static_cast<uint8_t>((flags | kFlagPriority) & ~kFlagEndHeaders), sid);
          emit(pri, 5);
          frame_header(split_hdr_, 5, kFrameContinuation, flags & kFlagEndHeaders, sid);
          split_left_ = len - 5;
          split_pending_ = true;
        }
      } else {
        emit_frame_header(len, type, flags, sid);
      }
      if (s != nullptr) s->has_priority = false;  // one HEADERS per request
      continue;
    }
    if (split_pending_ && split_left_ == 0) {
      uint32_t len = 5;
      emit_frame_header(len, split_hdr_[3], split_hdr_[4], static_cast<int32_t>(get32(split_hdr_ + 5)));
      split_pending_ = false;
    }
    size_t take = std::min(n, payload_left_);
    if (split_pending_) take = std::min(take, split_left_);
    emit(p, take);
    p += take;
    n -= take;
    payload_left_ -= take;
    if (split_pending_) split_left_ -= take;
    if (split_pending_ && split_left_ == 0 && payload_left_ > 0) continue;
  }
}

void H2Session::append_priority_frame(const PrioritySpec& p) {
  // Only between frames (always true here: called right after the preface was pulled).
  emit_frame_header(5, kFramePriority, 0, p.stream_id);
  uint8_t b[5];
  put32(b, (static_cast<uint32_t>(p.depends_on) & 0x7fffffffu) | (p.exclusive ? 0x80000000u : 0u));
  b[4] = static_cast<uint8_t>(p.weight - 1);
  emit(b, 5);
}

// ---- fingerprint (observes the final output bytes) ------------------------------------------------

void H2Session::observe_header(uint32_t len, uint8_t type, uint8_t flags, int32_t sid) {
  ob_type_ = type;
  ob_flags_ = flags;
  ob_sid_ = sid;
  ob_left_ = len;
  ob_buf_.clear();
  ob_capture_ = (type == kFrameSettings && !(flags & kFlagAck) && !fp_seen_settings_) ||
                (type == kFrameWindowUpdate && sid == 0 && fp_window_ == "00" && !fp_seen_headers_) ||
                (type == kFramePriority && !fp_seen_headers_) || type == kFrameHeaders ||
                (type == kFrameContinuation && fp_seen_headers_);
  if (len == 0) observe_done();
}

void H2Session::observe_payload(const uint8_t* p, size_t n) {
  size_t take = std::min(n, ob_left_);
  if (ob_capture_) ob_buf_.append(reinterpret_cast<const char*>(p), take);
  ob_left_ -= take;
  if (ob_left_ == 0 && take > 0) observe_done();
}

void H2Session::observe_done() {
  if (!ob_capture_) return;
  ob_capture_ = false;
  const auto* b = reinterpret_cast<const uint8_t*>(ob_buf_.data());
  size_t n = ob_buf_.size();
  switch (ob_type_) {
    case kFrameSettings:
      fp_seen_settings_ = true;
      for (size_t i = 0; i + 6 <= n; i += 6) {
        if (!fp_settings_.empty()) fp_settings_ += ';';
        fp_settings_ += std::to_string((b[i] << 8) | b[i + 1]) + ':' + std::to_string(get32(b + i + 2));
      }
      break;
    case kFrameWindowUpdate:
      if (n == 4) fp_window_ = std::to_string(get32(b) & 0x7fffffffu);
      break;
    case kFramePriority:
      if (n == 5) {
        uint32_t d = get32(b);
        if (!fp_priority_.empty()) fp_priority_ += ',';
        fp_priority_ += std::to_string(ob_sid_) + ':' + ((d & 0x80000000u) ? '1' : '0') + ':' +
                        std::to_string(d & 0x7fffffffu) + ':' + std::to_string(b[4] + 1);
      }
      break;
    case kFrameHeaders:
    case kFrameContinuation: {
      if (ob_type_ == kFrameHeaders) {
        if (fp_seen_headers_) break;
        fp_seen_headers_ = true;
        size_t off = 0, pad = 0;
        if (ob_flags_ & kFlagPadded) {
          if (n < 1) break;
          pad = b[0];
          off = 1;
        }
        if (ob_flags_ & kFlagPriority) off += 5;
        if (off + pad > n) break;
        fp_block_.assign(ob_buf_, off, n - off - pad);
      } else {
        fp_block_.append(ob_buf_);
      }
      if (!(ob_flags_ & kFlagEndHeaders)) break;
      // Decode the first request's header block with a fresh HPACK decoder (its dynamic table
      // starts empty, as the encoder's did for the first block) and read the pseudo-header order.
      nghttp2_hd_inflater* inf = nullptr;
      if (ng_.hd_inflate_new(&inf) == 0) {
        const auto* in = reinterpret_cast<const uint8_t*>(fp_block_.data());
        size_t left = fp_block_.size();
        for (;;) {
          nghttp2_nv nv;
          int fl = 0;
          ssize_t r = ng_.hd_inflate_hd2(inf, &nv, &fl, in, left, 1);
          if (r < 0) break;
          in += r;
          left -= static_cast<size_t>(r);
          if (fl & kNgHdInflateEmit) {
            std::string_view name(reinterpret_cast<const char*>(nv.name), nv.namelen);
            if (!name.empty() && name[0] == ':' && name.size() > 1) {
              if (!fp_pseudo_.empty()) fp_pseudo_ += ',';
              fp_pseudo_ += name[1];
            }
          }
          if (fl & kNgHdInflateFinal) {
            ng_.hd_inflate_end_headers(inf);
            break;
          }
          if (r == 0 && left == 0 && !(fl & kNgHdInflateEmit)) break;
        }
        ng_.hd_inflate_del(inf);
      }
      fp_block_.clear();
      fp_block_.shrink_to_fit();
      fp_done_ = true;
      break;
    }
    default:
      break;
  }
}

std::string H2Session::fingerprint() const {
  return fp_settings_ + '|' + fp_window_ + '|' + (fp_priority_.empty() ? "0" : fp_priority_) + '|' + fp_pseudo_;
}

// ---- requests ----------------------------------------------------------------------------------

H2Session::Stream* H2Session::find(int32_t id) const {
  // nghttp2 calls back once per header field of a block: the last stream found answers most.
  if (id == last_id_ && last_stream_ != nullptr) return last_stream_;
  auto it = streams_.find(id);
  Stream* s = it == streams_.end() ? nullptr : it->second.get();
  last_id_ = id;
  last_stream_ = s;
  return s;
}

bool H2Session::can_submit() const {
  return !dead_ && !goaway_received_ && !goaway_submitted_ && !fail_reported_ && fail_error_ == Error::Ok;
}

uint32_t H2Session::remote_max_concurrent_streams() const {
  return dead_ ? 0 : ng_.session_get_remote_settings(session_, 3);
}
int32_t H2Session::stream_remote_window(int32_t id) const {
  return dead_ ? -1 : ng_.session_get_stream_remote_window_size(session_, id);
}
int32_t H2Session::connection_remote_window() const {
  return dead_ ? -1 : ng_.session_get_remote_window_size(session_);
}

int32_t H2Session::submit_request(const RequestHead& req, Error* err, std::string* why) {
  auto refuse = [&](Error e, const char* w) {
    if (err) *err = e;
    if (why) *why = w;
    return -1;
  };
  if (!can_submit()) return refuse(goaway_received_ ? Error::Http2Goaway : Error::SessionClosed,
                                   "the HTTP/2 connection accepts no new stream");
  if (req.method.empty() || req.scheme.empty() || req.path.empty())
    return refuse(Error::InvalidOption, "HTTP/2 request without :method, :scheme or :path");
  if (!valid_value(req.method) || !valid_value(req.scheme) || !valid_value(req.authority) || !valid_value(req.path))
    return refuse(Error::InvalidHeader, "pseudo-header value with CR, LF or NUL");
  std::vector<std::string> names;
  names.reserve(req.header_count);
  std::vector<nghttp2_nv> nva;
  nva.reserve(req.header_count + 4);
  auto add = [&](std::string_view n, std::string_view v) {
    nva.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(n.data())),
                   reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(), kNgNvFlagNone});
  };
  for (char c : opts_.pseudo_order) {
    switch (c) {
      case 'm': add(":method", req.method); break;
      case 'a': if (!req.authority.empty()) add(":authority", req.authority); break;
      case 's': add(":scheme", req.scheme); break;
      case 'p': add(":path", req.path); break;
      default: break;
    }
  }
  for (size_t i = 0; i < req.header_count; ++i) {
    const Header& h = req.headers[i];
    if (h.name.empty()) return refuse(Error::InvalidHeader, "empty header name");
    std::string lname(h.name);
    for (char& c : lname) {
      if (!valid_name_char(static_cast<unsigned char>(c))) return refuse(Error::InvalidHeader, "invalid header name");
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    }
    if (!valid_value(h.value)) return refuse(Error::InvalidHeader, "header value with CR, LF or NUL");
    // HTTP/1.1 connection-level fields have no meaning in HTTP/2 (RFC 9113 §8.2.2); Host is :authority.
    if (connection_specific(lname)) continue;
    if (lname == "te" && !ieq(h.value, "trailers")) continue;
    if (lname == "host" && !req.authority.empty()) continue;
    names.push_back(std::move(lname));  // reserved: no reallocation, earlier pointers stay valid
    add(names.back(), h.value);
  }
  auto st = std::make_unique<Stream>();
  st->has_body = req.has_body;
  if (req.priority == RequestHead::Priority::Explicit) {
    if (req.priority_spec.weight < 1 || req.priority_spec.weight > 256 || req.priority_spec.depends_on < 0)
      return refuse(Error::InvalidOption, "request priority: dependency >= 0, weight 1..256");
    st->has_priority = true;
    st->priority = req.priority_spec;
  } else if (req.priority == RequestHead::Priority::SessionDefault && opts_.headers_priority) {
    st->has_priority = true;
    st->priority = opts_.headers_priority_spec;
  }
  nghttp2_data_provider prd;
  prd.source.ptr = st.get();
  prd.read_callback = cb_read_body;
  int32_t id = ng_.submit_request(session_, nullptr, nva.data(), nva.size(), req.has_body ? &prd : nullptr, st.get());
  if (id == kNgErrStreamIdNotAvailable) return refuse(Error::SessionClosed, "HTTP/2 stream ids exhausted on this connection");
  if (id < 0) return refuse(Error::Http2Protocol, ng_.strerror(id));
  if (st->has_priority && st->priority.depends_on == id)
    st->has_priority = false;  // a stream cannot depend on itself: send no priority rather than a protocol error
  st->id = id;
  streams_.emplace(id, std::move(st));
  return id;
}

bool H2Session::write_body(int32_t id, const uint8_t* data, size_t len, bool end) {
  Stream* s = find(id);
  if (s == nullptr || dead_ || !s->has_body || s->body_end) return false;
  if (len > 0) s->body.append(reinterpret_cast<const char*>(data), len);
  if (end) s->body_end = true;
  if (s->deferred && (len > 0 || end)) {
    s->deferred = false;
    ng_.session_resume_data(session_, id);
  }
  return true;
}

size_t H2Session::body_queued(int32_t id) const {
  Stream* s = find(id);
  return s == nullptr ? 0 : s->body.size() - s->body_off;
}

ssize_t H2Session::cb_read_body(nghttp2_session*, int32_t id, uint8_t* buf, size_t length, uint32_t* flags,
                                nghttp2_data_source* src, void* ud) {
  auto* self = static_cast<H2Session*>(ud);
  auto* s = static_cast<Stream*>(src->ptr);
  size_t avail = s->body.size() - s->body_off;
  size_t n = std::min(avail, length);
  if (n > 0) std::memcpy(buf, s->body.data() + s->body_off, n);
  s->body_off += n;
  if (s->body_off == s->body.size()) {
    s->body.clear();
    s->body_off = 0;
  } else if (s->body_off > 65536 && s->body_off * 2 > s->body.size()) {
    s->body.erase(0, s->body_off);
    s->body_off = 0;
  }
  if (n == 0 && !s->body_end) {
    s->deferred = true;
    return kNgErrDeferred;
  }
  if (s->body_end && s->body_off == s->body.size()) *flags |= kNgDataFlagEof;
  if (n > 0) self->listener_->on_body_sent(id, s->body.size() - s->body_off);
  return static_cast<ssize_t>(n);
}

void H2Session::reset_stream(int32_t id, uint32_t code) {
  Stream* s = find(id);
  if (s == nullptr || dead_) return;
  if (!s->local_reset) {
    s->local_reset = true;
    s->local_code = code;
  }
  ng_.submit_rst_stream(session_, 0, id, code);
}

void H2Session::set_paused(int32_t id, bool paused) {
  Stream* s = find(id);
  if (s == nullptr || dead_) return;
  s->paused = paused;
  if (!paused && s->unconsumed > 0) {
    size_t n = s->unconsumed;
    s->unconsumed = 0;
    ng_.session_consume_stream(session_, id, n);
  }
}

bool H2Session::ping(uint64_t opaque) {
  if (dead_) return false;
  uint8_t b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(opaque >> (56 - 8 * i));
  return ng_.submit_ping(session_, 0, b) == 0;
}

void H2Session::goaway(uint32_t code, std::string_view debug) {
  if (dead_ || goaway_submitted_) return;
  goaway_submitted_ = true;
  goaway_code_ = code;
  ng_.submit_goaway(session_, 0, ng_.session_get_last_proc_stream_id(session_), code,
                    reinterpret_cast<const uint8_t*>(debug.data()), debug.size());
}

// ---- receiving -----------------------------------------------------------------------------------

bool H2Session::feed(const uint8_t* data, size_t len) {
  if (dead_) return false;
  ssize_t n = ng_.session_mem_recv(session_, data, len);
  if (n < 0) {
    if (fail_error_ == Error::Ok) {
      if (n == kNgErrFlooded)
        fail(Error::Http2Protocol, kH2EnhanceYourCalm, "flood: the server sent more frames needing an answer than it reads");
      else
        fail(Error::Http2Protocol, kH2ProtocolError,
             last_lib_error_.empty() ? std::string("nghttp2: ") + ng_.strerror(static_cast<int>(n)) : last_lib_error_);
    }
    // After a callback failure nghttp2 must not be used again: end the connection ourselves.
    dead_ = true;
    if (magic_left_ == 0 && fh_have_ == 0 && payload_left_ == 0 && !split_pending_ && !goaway_sent_) {
      uint8_t g[8];
      put32(g, 0);
      put32(g + 4, fail_h2_);
      emit_frame_header(8, kFrameGoaway, 0, 0);
      emit(g, 8);
      goaway_sent_ = true;
    }
  }
  pull_output(false);
  finish_failure();
  return !dead_;
}

void H2Session::fail(Error e, uint32_t h2_code, std::string detail) {
  if (fail_error_ != Error::Ok) return;
  fail_error_ = e;
  fail_h2_ = h2_code;
  fail_detail_ = std::move(detail);
}

void H2Session::finish_failure() {
  if (fail_error_ == Error::Ok || fail_reported_) return;
  fail_reported_ = true;
  dead_ = true;
  std::vector<int32_t> ids;
  ids.reserve(streams_.size());
  for (auto& kv : streams_) ids.push_back(kv.first);
  std::sort(ids.begin(), ids.end());
  for (int32_t id : ids) {
    Stream* s = find(id);
    if (s == nullptr) continue;
    StreamEnd end;
    end.error = fail_error_;
    end.h2_code = fail_h2_;
    end.detail = fail_detail_;
    if (!s->headers_sent || (goaway_received_ && id > goaway_last_id_)) end.retryable = true;
    close_stream(id, std::move(end));
  }
  listener_->on_connection_error(fail_error_, fail_h2_, fail_detail_);
}

void H2Session::transport_closed(Error e, std::string_view detail) {
  if (fail_reported_) return;
  dead_ = true;
  fail_reported_ = true;
  if (fail_error_ == Error::Ok) {
    fail_error_ = e;
    fail_detail_ = std::string(detail);
  }
  std::vector<int32_t> ids;
  for (auto& kv : streams_) ids.push_back(kv.first);
  std::sort(ids.begin(), ids.end());
  for (int32_t id : ids) {
    Stream* s = find(id);
    if (s == nullptr) continue;
    StreamEnd end;
    if (s->final_received && s->remote_closed) {
      end.error = Error::Ok;
    } else if (!s->headers_sent || (goaway_received_ && id > goaway_last_id_)) {
      end.error = Error::Http2Goaway;
      end.retryable = true;
      end.detail = "not processed by the server";
    } else {
      end.error = e;
      end.detail = std::string(detail);
    }
    close_stream(id, std::move(end));
  }
}

void H2Session::close_stream(int32_t id, StreamEnd end) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  std::unique_ptr<Stream> s = std::move(it->second);
  if (last_stream_ == s.get()) last_stream_ = nullptr;
  streams_.erase(it);
  listener_->on_stream_close(id, end);
}

bool H2Session::count_frame(int kind) {
  uint64_t t = now();
  if (t - window_start_ >= opts_.flood_window_ms || t < window_start_) {
    window_start_ = t;
    counts_.fill(0);
  }
  static const char* const kNames[] = {"SETTINGS", "PING", "RST_STREAM", "WINDOW_UPDATE", "PRIORITY", "PUSH_PROMISE", "empty frame"};
  const uint32_t caps[] = {opts_.max_settings_frames, opts_.max_ping_frames, opts_.max_rst_frames,
                           opts_.max_window_update_frames, opts_.max_priority_frames, opts_.max_push_promise_frames,
                           opts_.max_empty_frames};
  if (++counts_[kind] > caps[kind]) {
    fail(Error::Http2Protocol, kH2EnhanceYourCalm, std::string(kNames[kind]) + " flood");
    return false;
  }
  return true;
}

int H2Session::cb_begin_frame(nghttp2_session*, const nghttp2_frame_hd* hd, void* ud) {
  auto* self = static_cast<H2Session*>(ud);
  bool ok = true;
  switch (hd->type) {
    case kFrameHeaders:
      self->continuations_ = 0;
      break;
    case kFramePushPromise:
      self->continuations_ = 0;
      ok = self->count_frame(kFloodPush);
      break;
    case kFrameContinuation:
      if (++self->continuations_ > self->opts_.max_continuations) {
        self->fail(Error::Http2Protocol, kH2EnhanceYourCalm, "CONTINUATION flood");
        ok = false;
      } else if (hd->length == 0) {
        ok = self->count_frame(kFloodEmpty);
      }
      break;
    case kFrameSettings: ok = self->count_frame(kFloodSettings); break;
    case kFramePing: ok = self->count_frame(kFloodPing); break;
    case kFrameRstStream: ok = self->count_frame(kFloodRst); break;
    case kFrameWindowUpdate: ok = self->count_frame(kFloodWindowUpdate); break;
    case kFramePriority: ok = self->count_frame(kFloodPriority); break;
    case kFrameData:
      if (hd->length == 0 && !(hd->flags & kFlagEndStream)) ok = self->count_frame(kFloodEmpty);
      break;
    default:
      break;
  }
  if (ok && (hd->type == kFrameData || hd->type == kFrameHeaders)) {
    if (Stream* s = self->find(hd->stream_id)) s->last_frame = hd->type;
  }
  return ok ? 0 : kNgErrCallbackFailure;
}

int H2Session::cb_begin_headers(nghttp2_session* session, const nghttp2_frame* f, void* ud) {
  auto* self = static_cast<H2Session*>(ud);
  if (f->hd.type == kFramePushPromise) {
    // Server push is never used: refuse every promised stream.
    self->ng_.submit_rst_stream(session, 0, f->push_promise.promised_stream_id, kH2RefusedStream);
    return 0;
  }
  Stream* s = self->find(f->hd.stream_id);
  if (s == nullptr) return 0;
  s->in_head = !s->final_received;
  s->headers.clear();
  s->header_bytes = 0;
  s->status = 0;
  return 0;
}

int H2Session::cb_header(nghttp2_session*, const nghttp2_frame* f, const uint8_t* name, size_t namelen,
                         const uint8_t* value, size_t valuelen, uint8_t, void* ud) {
  auto* self = static_cast<H2Session*>(ud);
  if (f->hd.type != kFrameHeaders) return 0;  // PUSH_PROMISE: refused, fields ignored
  Stream* s = self->find(f->hd.stream_id);
  if (s == nullptr) return 0;
  s->header_bytes += namelen + valuelen + 32;
  if (s->header_bytes > self->opts_.max_header_list_size) {
    if (s->error == Error::Ok) {
      s->error = Error::HeadersTooLarge;
      s->detail = "HTTP/2 header list larger than maxHeaderSize after HPACK decoding";
    }
    s->headers.clear();
    s->headers.shrink_to_fit();
    return kNgErrTemporalCallbackFailure;  // nghttp2 resets the stream and keeps HPACK in sync
  }
  std::string_view n(reinterpret_cast<const char*>(name), namelen);
  std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  if (n == ":status") {
    // nghttp2 checks for three digits only ("051" passes): HTTP status codes are 100..599.
    int st = 0;
    for (char c : v) st = st * 10 + (c - '0');
    if (v.size() != 3 || st < 100 || st > 599) {
      if (s->error == Error::Ok) {
        s->error = Error::Http2Protocol;
        s->detail = "invalid :status in the response";
      }
      // Accepted here (HPACK stays in sync); the stream is reset with PROTOCOL_ERROR once the
      // block ends (cb_frame_recv), as nghttp2's own pseudo-header checks do (RFC 9113 §8.1.1).
      // The RST goes out now: with END_STREAM on this block the stream closes right after it
      // (nghttp2 1.69 then drops a RST submitted later, from the frame callback).
      if (!s->bad_status) {
        s->bad_status = true;
        self->reset_stream(s->id, kH2ProtocolError);
      }
      return 0;
    }
    s->status = st;
    return 0;
  }
  if (!n.empty() && n[0] == ':') return 0;
  if (s->in_head && n == "content-length") {
    int64_t cl = 0;
    bool ok = !v.empty() && v.size() <= 18;
    for (char c : v) {
      if (c < '0' || c > '9') ok = false;
      else cl = cl * 10 + (c - '0');
    }
    if (ok) s->content_length = cl;
  }
  s->headers.emplace_back(std::string(n), std::string(v));
  return 0;
}

int H2Session::cb_frame_recv(nghttp2_session*, const nghttp2_frame* f, void* ud) {
  auto* self = static_cast<H2Session*>(ud);
  switch (f->hd.type) {
    case kFrameHeaders: {
      Stream* s = self->find(f->hd.stream_id);
      if (s != nullptr && s->bad_status) {
        s->headers.clear();  // reset when the :status came (cb_header); nothing is delivered
        break;
      }
      if (s == nullptr || s->error != Error::Ok) break;
      if (s->in_head) {
        if (s->status >= 100 && s->status < 200) {
          self->listener_->on_informational(s->id, s->status, s->headers);
        } else {
          s->final_received = true;
          self->listener_->on_response_headers(s->id, s->status, s->headers);
        }
      } else {
        self->listener_->on_trailers(s->id, s->headers);
      }
      s = self->find(f->hd.stream_id);  // the listener may have reset it
      if (s != nullptr) {
        s->headers.clear();
        if (f->hd.flags & kFlagEndStream) s->remote_closed = true;
      }
      break;
    }
    case kFrameData: {
      Stream* s = self->find(f->hd.stream_id);
      if (s != nullptr && (f->hd.flags & kFlagEndStream)) s->remote_closed = true;
      break;
    }
    case kFrameRstStream: {
      Stream* s = self->find(f->hd.stream_id);
      if (s != nullptr && !s->peer_reset) {
        s->peer_reset = true;
        s->peer_code = f->rst_stream.error_code;
      }
      break;
    }
    case kFrameSettings:
      if (f->hd.flags & kFlagAck) {
        if (!self->settings_sent_at_.empty()) self->settings_sent_at_.pop_front();
        self->listener_->on_settings(true);
      } else {
        self->listener_->on_settings(false);
      }
      break;
    case kFramePing: {
      uint64_t v = 0;
      for (int i = 0; i < 8; ++i) v = (v << 8) | f->ping.opaque_data[i];
      self->listener_->on_ping((f->hd.flags & kFlagAck) != 0, v);
      break;
    }
    case kFrameGoaway: {
      if (!self->goaway_received_ || f->goaway.last_stream_id < self->goaway_last_id_)
        self->goaway_last_id_ = f->goaway.last_stream_id;
      self->goaway_received_ = true;
      self->goaway_received_code_ = f->goaway.error_code;
      self->listener_->on_goaway(
          f->goaway.last_stream_id, f->goaway.error_code,
          std::string_view(reinterpret_cast<const char*>(f->goaway.opaque_data), f->goaway.opaque_data_len));
      break;
    }
    default:
      break;
  }
  return 0;
}

int H2Session::cb_invalid_frame_recv(nghttp2_session*, const nghttp2_frame* f, int lib_error, void* ud) {
  auto* self = static_cast<H2Session*>(ud);
  std::string what = std::string(self->ng_.strerror(lib_error));
  if (f->hd.stream_id == 0) {
    self->last_lib_error_ = what;
    return 0;
  }
  if (Stream* s = self->find(f->hd.stream_id)) {
    if (s->lib_detail.empty()) {
      if (f->hd.type == kFrameData && s->content_length >= 0)
        s->lib_detail = "response DATA does not match content-length";
      else if (lib_error == kNgErrHttpHeader) s->lib_detail = "malformed response header block (pseudo-header or field misuse)";
      else if (lib_error == kNgErrHttpMessaging) s->lib_detail = "malformed response message";
      else s->lib_detail = what;
    }
  }
  return 0;
}

int H2Session::cb_data_chunk(nghttp2_session* session, uint8_t, int32_t id, const uint8_t* data, size_t len,
                             void* ud) {
  auto* self = static_cast<H2Session*>(ud);
  // The connection window reopens whatever the stream does.
  self->ng_.session_consume_connection(session, len);
  Stream* s = self->find(id);
  if (s == nullptr) return 0;
  s->data_received += len;
  self->listener_->on_data(id, data, len);
  s = self->find(id);
  if (s == nullptr) return 0;
  if (s->paused) s->unconsumed += len;
  else self->ng_.session_consume_stream(session, id, len);
  return 0;
}

int H2Session::cb_frame_send(nghttp2_session*, const nghttp2_frame* f, void* ud) {
  auto* self = static_cast<H2Session*>(ud);
  switch (f->hd.type) {
    case kFrameHeaders:
      if (Stream* s = self->find(f->hd.stream_id)) s->headers_sent = true;
      break;
    case kFrameSettings:
      if (!(f->hd.flags & kFlagAck)) self->settings_sent_at_.push_back(self->now());
      break;
    case kFrameRstStream:
      if (Stream* s = self->find(f->hd.stream_id)) {
        if (!s->local_reset && !s->lib_reset) {
          s->lib_reset = true;
          s->lib_code = f->rst_stream.error_code;
        }
      }
      break;
    case kFrameGoaway:
      self->goaway_sent_ = true;
      if (!self->goaway_submitted_ || f->goaway.error_code != self->goaway_code_) {
        // nghttp2 ended the connection on a protocol error of the server's.
        std::string d = self->last_lib_error_.empty() ? std::string("connection error") : self->last_lib_error_;
        self->fail(Error::Http2Protocol, f->goaway.error_code, std::string(h2_code_name(f->goaway.error_code)) + ": " + d);
      }
      break;
    default:
      break;
  }
  return 0;
}

int H2Session::cb_frame_not_send(nghttp2_session*, const nghttp2_frame* f, int lib_error, void* ud) {
  auto* self = static_cast<H2Session*>(ud);
  if (f->hd.type != kFrameHeaders) return 0;
  Stream* s = self->find(f->hd.stream_id);
  if (s == nullptr) return 0;
  StreamEnd end;
  end.retryable = true;
  if (s->local_reset) {
    end.error = Error::Aborted;
    end.h2_code = s->local_code;
    end.retryable = false;
  } else {
    end.error = self->goaway_received_ ? Error::Http2Goaway : Error::Http2Protocol;
    end.detail = std::string("request not sent: ") + self->ng_.strerror(lib_error);
  }
  self->close_stream(f->hd.stream_id, std::move(end));
  return 0;
}

int H2Session::cb_stream_close(nghttp2_session*, int32_t id, uint32_t code, void* ud) {
  auto* self = static_cast<H2Session*>(ud);
  Stream* s = self->find(id);
  if (s == nullptr) return 0;
  StreamEnd end;
  if (s->error != Error::Ok) {
    end.error = s->error;
    end.detail = s->detail;
    end.h2_code = code != 0 ? code : s->local_reset ? s->local_code : 0;
  } else if (s->final_received && s->remote_closed && !s->lib_reset) {
    end.error = Error::Ok;  // complete (a RST_STREAM NO_ERROR that stops our upload is fine too)
  } else if (s->local_reset) {
    end.error = Error::Aborted;
    end.h2_code = s->local_code;
  } else if (s->peer_reset) {
    end.error = Error::Http2StreamReset;
    end.h2_code = s->peer_code;
    end.retryable = s->peer_code == kH2RefusedStream;
    end.detail = std::string("stream reset by the server: ") + h2_code_name(s->peer_code);
  } else if (s->lib_reset) {
    end.error = Error::Http2Protocol;
    end.h2_code = s->lib_code;
    if (!s->lib_detail.empty()) end.detail = s->lib_detail;
    else if (s->last_frame == kFrameData && s->content_length >= 0) end.detail = "response DATA does not match content-length";
    else end.detail = std::string("stream error: ") + h2_code_name(s->lib_code);
  } else if (self->goaway_received_ && id > self->goaway_last_id_) {
    end.error = Error::Http2Goaway;
    end.h2_code = code;
    end.retryable = true;
    end.detail = "stream above the server's GOAWAY last-stream-id: not processed";
  } else {
    end.error = Error::Http2Protocol;
    end.h2_code = code;
    end.detail = std::string("stream closed before the response completed: ") + h2_code_name(code);
  }
  self->close_stream(id, std::move(end));
  return 0;
}

int H2Session::cb_error(nghttp2_session*, int, const char* msg, size_t len, void* ud) {
  auto* self = static_cast<H2Session*>(ud);
  self->last_lib_error_.assign(msg, std::min(len, size_t{200}));
  return 0;
}

}  // namespace uvf::http2
