#include "telephony/media/mulaw.hpp"

#include <array>
#include <bit>

namespace clozit::telephony::media {
namespace {

constexpr int kBias = 0x84;  // 132: shifts every segment's range so the exponent is the top bit's position
constexpr int kClip = 32635;

constexpr int16_t DecodeOne(uint8_t code) {
  const int inverted = static_cast<uint8_t>(~code);
  const int exponent = (inverted >> 4) & 0x07;
  const int mantissa = inverted & 0x0F;
  const int magnitude = (((mantissa << 3) + kBias) << exponent) - kBias;
  return static_cast<int16_t>((inverted & 0x80) ? -magnitude : magnitude);
}

constexpr std::array<int16_t, 256> kDecodeTable = [] {
  std::array<int16_t, 256> table{};
  for (int code = 0; code < 256; ++code) table[code] = DecodeOne(static_cast<uint8_t>(code));
  return table;
}();

}  // namespace

uint8_t MulawEncode(int16_t sample) {
  int value = sample;
  const int sign = value < 0 ? 0x80 : 0x00;
  if (value < 0) value = -value;
  if (value > kClip) value = kClip;
  value += kBias;
  // Segment = position of the highest set bit above bit 7 (value is at least 0x84, at most 0x7FFF).
  const int exponent = 31 - std::countl_zero(static_cast<uint32_t>(value)) - 7;
  const int mantissa = (value >> (exponent + 3)) & 0x0F;
  return static_cast<uint8_t>(~(sign | (exponent << 4) | mantissa));
}

int16_t MulawDecode(uint8_t code) { return kDecodeTable[code]; }

void MulawDecode(std::string_view codes, std::vector<int16_t>& out) {
  out.reserve(out.size() + codes.size());
  for (char code : codes) out.push_back(kDecodeTable[static_cast<uint8_t>(code)]);
}

void MulawEncode(std::span<const int16_t> samples, char* out) {
  for (size_t i = 0; i < samples.size(); ++i) out[i] = static_cast<char>(MulawEncode(samples[i]));
}

std::string MulawEncode(std::span<const int16_t> samples) {
  std::string out(samples.size(), '\0');
  MulawEncode(samples, out.data());
  return out;
}

}  // namespace clozit::telephony::media
