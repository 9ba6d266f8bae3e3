#include "telephony/media/detail/media_frame.hpp"

#include <sodium.h>

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

bool DecodeBase64Into(std::string_view text, std::string& out) {
  out.resize(text.size() / 4 * 3 + 3);
  size_t length = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(), text.size(), nullptr,
                        &length, nullptr, sodium_base64_VARIANT_ORIGINAL) != 0) {
    return false;
  }
  out.resize(length);
  return true;
}

void AppendMediaFrame(std::string_view stream_sid, std::span<const char> mulaw, std::string& out) {
  const size_t encoded = sodium_base64_ENCODED_LEN(mulaw.size(), sodium_base64_VARIANT_ORIGINAL);  // with the NUL
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
  sodium_bin2base64(out.data() + at, encoded, reinterpret_cast<const unsigned char*>(mulaw.data()), mulaw.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  out.resize(at + encoded - 1);
  out += "\"}}";
}

}  // namespace clozit::telephony::media::detail
