#include "telephony/detail/rest.hpp"

#include <sodium.h>

#include <charconv>
#include <thread>

namespace clozit::telephony::detail {

RestPool::RestPool(std::string origin, http::ClientOptions options)
    : origin_(std::move(origin)), options_(std::move(options)) {}

Result<http::ClientResponse> RestPool::Send(const std::string& method, const std::string& target,
                                            const http::Headers& headers, const std::string& body) {
  std::unique_ptr<http::Client> client;
  {
    std::lock_guard lock(mutex_);
    if (!idle_.empty()) {
      client = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (!client) {
    auto created = http::Client::Create(origin_, options_);
    if (!created) return Error::Make(ErrorCode::kUnavailable, created.error().message);
    client = std::move(created).value();
  }
  auto response = client->Send(method, target, headers, body);
  if (!response) return Error::Make(ErrorCode::kUnavailable, response.error().message);
  std::lock_guard lock(mutex_);
  if (idle_.size() < 16) idle_.push_back(std::move(client));
  return response;
}

std::string XmlEscape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string Base64(std::string_view bytes) {
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

std::optional<int> RetryAfterHeader(const http::ClientResponse& response) {
  auto value = response.headers.Get("Retry-After");
  if (!value) return std::nullopt;
  int seconds = 0;
  auto [end, ec] = std::from_chars(value->data(), value->data() + value->size(), seconds);
  if (ec != std::errc() || end != value->data() + value->size() || seconds < 0) return std::nullopt;
  return seconds;
}

void SleepFor(const RetryPolicy& policy, std::chrono::milliseconds duration) {
  if (policy.sleep) {
    policy.sleep(duration);
  } else {
    std::this_thread::sleep_for(duration);
  }
}

}  // namespace clozit::telephony::detail
