#include "telephony/provider.hpp"

#include <charconv>

namespace clozit::telephony {
namespace {
constexpr std::string_view kRetryAfterMarker = "retry_after=";
}

Result<ProviderCallState> Provider::GetCall(const std::string&) {
  return Error::Make(ErrorCode::kUnavailable, std::string(ProviderName(kind())) + " cannot report a call's state");
}

Error RateLimitedError(std::string_view provider, int retry_after_seconds) {
  return Error::Make(ErrorCode::kRateLimited, std::string(provider) + " rate limit reached; " +
                                                  std::string(kRetryAfterMarker) + std::to_string(retry_after_seconds));
}

std::optional<int> RetryAfterSeconds(const Error& error) {
  if (error.code != ErrorCode::kRateLimited) return std::nullopt;
  auto at = error.message.rfind(kRetryAfterMarker);
  if (at == std::string::npos) return std::nullopt;
  std::string_view digits = std::string_view(error.message).substr(at + kRetryAfterMarker.size());
  int seconds = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), seconds);
  if (ec != std::errc() || end == digits.data()) return std::nullopt;
  return seconds;
}

}  // namespace clozit::telephony
