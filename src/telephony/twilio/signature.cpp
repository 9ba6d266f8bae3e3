#include "telephony/twilio/signature.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "common/encoding.hpp"
#include "http/message.hpp"

namespace clozit::telephony::twilio {
namespace {

std::string Base64(const unsigned char* data, size_t length) {
  std::string out(4 * ((length + 2) / 3) + 1, '\0');
  int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(length));
  out.resize(static_cast<size_t>(written));
  return out;
}

/// "https://host:443/p" ⇄ "https://host/p": the other port form of the URL, if it has one.
std::optional<std::string> OtherPortForm(std::string_view url) {
  std::string_view scheme;
  std::string_view default_port;
  if (url.starts_with("https://")) {
    scheme = "https://";
    default_port = ":443";
  } else if (url.starts_with("http://")) {
    scheme = "http://";
    default_port = ":80";
  } else {
    return std::nullopt;
  }
  std::string_view rest = url.substr(scheme.size());
  size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view tail = authority_end == std::string_view::npos ? std::string_view{} : rest.substr(authority_end);
  if (authority.ends_with(default_port)) {
    return std::string(scheme) + std::string(authority.substr(0, authority.size() - default_port.size())) +
           std::string(tail);
  }
  if (authority.find(':') != std::string_view::npos) return std::nullopt;  // a non-default port stays as is
  return std::string(scheme) + std::string(authority) + std::string(default_port) + std::string(tail);
}

std::optional<std::string> QueryValue(std::string_view url, std::string_view name) {
  auto question = url.find('?');
  if (question == std::string_view::npos) return std::nullopt;
  for (const auto& [key, value] : http::ParseQuery(url.substr(question + 1))) {
    if (key == name) return value;
  }
  return std::nullopt;
}

}  // namespace

std::string ComputeSignature(std::string_view auth_token, std::string_view url, const FormParams& params) {
  // std::multimap orders by name (byte order: uppercase before lowercase); values of one name must be sorted too.
  std::vector<std::pair<std::string, std::string>> sorted(params.begin(), params.end());
  std::sort(sorted.begin(), sorted.end());
  std::string data(url);
  for (const auto& [name, value] : sorted) data += name + value;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha1(), auth_token.data(), static_cast<int>(auth_token.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest, &length);
  return Base64(digest, length);
}

bool VerifyRequest(std::string_view auth_token, std::string_view url, const FormParams& params, std::string_view body,
                   std::string_view signature) {
  if (signature.empty() || auth_token.empty()) return false;
  if (auto body_hash = QueryValue(url, "bodySHA256")) {
    if (!params.empty()) return false;
    if (!ConstantTimeEquals(Sha256Hex(body), *body_hash)) return false;
  }
  if (ConstantTimeEquals(ComputeSignature(auth_token, url, params), signature)) return true;
  auto other = OtherPortForm(url);
  return other && ConstantTimeEquals(ComputeSignature(auth_token, *other, params), signature);
}

}  // namespace clozit::telephony::twilio
