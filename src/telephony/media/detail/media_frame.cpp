#include "telephony/media/detail/media_frame.hpp"

#include <openssl/evp.h>

#include <climits>

namespace clozit::telephony::media::detail {
namespace {

/// A cursor over the frame that gives up (returns false) at anything outside the subset it reads.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : text_(text) {}

  void SkipSpace() {
    while (at_ < text_.size() && (text_[at_] == ' ' || text_[at_] == '\t' || text_[at_] == '\n' || text_[at_] == '\r'))
      ++at_;
  }
  bool Take(char c) {
    SkipSpace();
    if (at_ >= text_.size() || text_[at_] != c) return false;
    ++at_;
    return true;
  }
  bool Peek(char c) {
    SkipSpace();
    return at_ < text_.size() && text_[at_] == c;
  }
  /// A string with nothing that would need decoding: no escapes, no control bytes, ASCII only.
  bool String(std::string_view& out) {
    if (!Take('"')) return false;
    size_t begin = at_;
    for (; at_ < text_.size(); ++at_) {
      auto c = static_cast<unsigned char>(text_[at_]);
      if (c == '"') {
        out = text_.substr(begin, at_ - begin);
        ++at_;
        return true;
      }
      if (c < 0x20 || c == '\\' || c >= 0x80) return false;
    }
    return false;
  }
  bool AtEnd() {
    SkipSpace();
    return at_ == text_.size();
  }

 private:
  std::string_view text_;
  size_t at_ = 0;
};

/// `{ "key": "value", ... }` with string values only, each member handed to `member`; false on anything else.
template <class Member>
bool FlatObject(Scanner& scanner, Member member) {
  if (!scanner.Take('{')) return false;
  if (scanner.Take('}')) return true;
  do {
    std::string_view key;
    if (!scanner.String(key) || !scanner.Take(':') || !member(key)) return false;
  } while (scanner.Take(','));
  return scanner.Take('}');
}

}  // namespace

bool ScanMediaFrame(std::string_view frame, MediaFrameView& out) {
  Scanner scanner(frame);
  bool event_seen = false, media_seen = false, payload_seen = false, track_seen = false;
  bool is_media = false;
  MediaFrameView view;
  bool ok = FlatObject(scanner, [&](std::string_view key) {
    if (key == "media") {
      // A repeated key is read differently by different parsers: leave it to the full one.
      if (media_seen || !scanner.Peek('{')) return false;
      media_seen = true;
      return FlatObject(scanner, [&](std::string_view inner) {
        std::string_view value;
        if (!scanner.String(value)) return false;
        if (inner == "payload") {
          if (payload_seen) return false;
          payload_seen = true;
          view.payload = value;
        } else if (inner == "track") {
          if (track_seen) return false;
          track_seen = true;
          view.track = value;
        }
        return true;
      });
    }
    std::string_view value;
    if (!scanner.String(value)) return false;
    if (key == "event") {
      if (event_seen) return false;
      event_seen = true;
      is_media = value == "media";
    }
    return true;
  });
  if (!ok || !scanner.AtEnd() || !is_media || !payload_seen) return false;
  out = view;
  return true;
}

// Base64 through OpenSSL's table codec: libsodium's is constant-time, which audio does not need, and cost ≈ 8 % of
// the platform's CPU per frame pair (media bench profile). EVP_DecodeBlock is lax (it skips surrounding
// whitespace and reads '=' anywhere as zero bits), so the strict rules libsodium applied are checked here:
// a multiple of four characters, at most two '=' and only at the end, no bits left over before them
// (the fuzz target holds this to libsodium's answer).
bool DecodeBase64Into(std::string_view text, std::string& out) {
  if (text.size() % 4 != 0 || text.size() > static_cast<size_t>(INT_MAX)) return false;
  if (text.empty()) {
    out.clear();
    return true;
  }
  const size_t padding = text.back() != '=' ? 0 : text[text.size() - 2] == '=' ? 2 : 1;
  if (text.substr(0, text.size() - padding).find('=') != std::string_view::npos) return false;
  const size_t decoded = text.size() / 4 * 3;
  out.resize(decoded);
  // Whatever EVP skipped would show as a shorter result.
  if (EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(text.data()),
                      static_cast<int>(text.size())) != static_cast<int>(decoded)) {
    return false;
  }
  // The bytes the padding stands for hold the bits left over, which must be zero.
  for (size_t i = decoded - padding; i < decoded; ++i) {
    if (out[i] != 0) return false;
  }
  out.resize(decoded - padding);
  return true;
}

void AppendMediaFrame(std::string_view stream_sid, std::span<const char> mulaw, std::string& out) {
  // 20 ms is 160 bytes; anything near EVP_EncodeBlock's int limit is a caller's bug.
  if (mulaw.size() > static_cast<size_t>(INT_MAX / 4)) mulaw = mulaw.first(static_cast<size_t>(INT_MAX / 4));
  const size_t encoded = (mulaw.size() + 2) / 3 * 4 + 1;  // with the NUL EVP_EncodeBlock writes
  out.reserve(out.size() + encoded + stream_sid.size() + 64);
  if (!stream_sid.empty()) {
    out += R"({"event":"media","streamSid":")";
    out += stream_sid;  // carrier-assigned, checked to need no escaping when the stream started
    out += R"(","media":{"payload":")";
  } else {
    out += R"({"event":"media","media":{"payload":")";
  }
  const size_t at = out.size();
  out.resize(at + encoded);
  EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data() + at),
                  reinterpret_cast<const unsigned char*>(mulaw.data()), static_cast<int>(mulaw.size()));
  out.resize(at + encoded - 1);
  out += "\"}}";
}

}  // namespace clozit::telephony::media::detail
