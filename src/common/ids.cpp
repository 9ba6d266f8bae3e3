#include "common/ids.hpp"

#include <array>
#include <cstdint>

namespace clozit {
namespace {
constexpr char kCrockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
}

std::string NewUlid(const Clock& clock, Random& random) {
  std::array<uint8_t, 16> bytes{};
  auto ms = static_cast<uint64_t>(ToUnixMillis(clock.Now()));
  for (int i = 5; i >= 0; --i) {
    bytes[static_cast<size_t>(i)] = static_cast<uint8_t>(ms & 0xFF);
    ms >>= 8;
  }
  random.Fill(std::span<uint8_t>(bytes.data() + 6, 10));
  // 128 bits -> 26 base32 characters; the first character carries only 3 bits.
  std::string out(26, '0');
  unsigned __int128 value = 0;
  for (uint8_t b : bytes) value = (value << 8) | b;
  for (int i = 25; i >= 0; --i) {
    out[static_cast<size_t>(i)] = kCrockford[static_cast<size_t>(value & 0x1F)];
    value >>= 5;
  }
  return out;
}

bool IsUlid(std::string_view text) {
  if (text.size() != 26 || text[0] > '7') return false;
  for (char c : text) {
    bool found = false;
    for (const char* p = kCrockford; *p; ++p) found = found || (*p == c);
    if (!found) return false;
  }
  return true;
}

}  // namespace clozit
