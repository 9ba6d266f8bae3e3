#include "telephony/credentials.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace clozit::telephony {
namespace {

constexpr const char* kKeyField = "telephony.credentials_key";

}  // namespace

std::optional<std::vector<uint8_t>> DecodeStandardBase64(std::string_view text) {
  std::vector<uint8_t> out(text.size());
  size_t length = 0;
  if (sodium_base642bin(out.data(), out.size(), text.data(), text.size(), nullptr, &length, nullptr,
                        sodium_base64_VARIANT_ORIGINAL) != 0) {
    return std::nullopt;
  }
  out.resize(length);
  return out;
}

namespace {

std::string EncodeBase64(const std::vector<uint8_t>& bytes) {
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), bytes.data(), bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

std::string Trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  return text;
}

}  // namespace

CredentialBox::~CredentialBox() { sodium_memzero(key_.data(), key_.size()); }

Result<CredentialBox> CredentialBox::FromKeyText(std::string_view text) {
  if (sodium_init() < 0) return Error::Internal("libsodium failed to initialise");
  CredentialBox box;
  if (text.size() == 2 * kKeyBytes) {
    size_t length = 0;
    if (sodium_hex2bin(box.key_.data(), box.key_.size(), text.data(), text.size(), nullptr, &length, nullptr) == 0 &&
        length == kKeyBytes) {
      return box;
    }
  }
  auto decoded = DecodeStandardBase64(text);
  if (!decoded || decoded->size() != kKeyBytes) {
    return Error::InvalidArgument(kKeyField, "telephony.credentials_key must be 32 bytes, as 64 hex digits or base64");
  }
  std::copy(decoded->begin(), decoded->end(), box.key_.begin());
  sodium_memzero(decoded->data(), decoded->size());
  return box;
}

Result<CredentialBox> CredentialBox::Load(std::string_view configured_key, const std::string& key_file,
                                          Random& random) {
  if (!configured_key.empty()) return FromKeyText(configured_key);
  if (std::filesystem::exists(key_file)) {
    std::ifstream in(key_file);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) return Error::Make(ErrorCode::kUnavailable, "cannot read the credentials key file " + key_file);
    return FromKeyText(Trim(text.str()));
  }
  std::vector<uint8_t> key(kKeyBytes);
  random.Fill(key);
  std::string encoded = EncodeBase64(key) + "\n";
  sodium_memzero(key.data(), key.size());
  std::error_code ignored;
  auto parent = std::filesystem::path(key_file).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ignored);
  // O_EXCL: two processes starting at once must not each write their own key.
  int fd = ::open(key_file.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return Load(configured_key, key_file, random);
    return Error::Make(ErrorCode::kUnavailable, "cannot create the credentials key file " + key_file);
  }
  bool written = ::write(fd, encoded.data(), encoded.size()) == static_cast<ssize_t>(encoded.size());
  written = ::fsync(fd) == 0 && written;
  ::close(fd);
  if (!written) return Error::Make(ErrorCode::kUnavailable, "cannot write the credentials key file " + key_file);
  auto box = FromKeyText(Trim(encoded));
  sodium_memzero(encoded.data(), encoded.size());
  return box;
}

std::string CredentialBox::Seal(std::string_view secret, Random& random) const {
  std::vector<uint8_t> sealed(crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + secret.size());
  random.Fill(std::span<uint8_t>(sealed.data(), crypto_secretbox_NONCEBYTES));
  crypto_secretbox_easy(sealed.data() + crypto_secretbox_NONCEBYTES, reinterpret_cast<const uint8_t*>(secret.data()),
                        secret.size(), sealed.data(), key_.data());
  return EncodeBase64(sealed);
}

Result<std::string> CredentialBox::Open(std::string_view sealed) const {
  auto bytes = DecodeStandardBase64(sealed);
  if (!bytes || bytes->size() < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES) {
    return Error::Internal("a sealed provider credential is malformed");
  }
  std::string secret(bytes->size() - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES, '\0');
  if (crypto_secretbox_open_easy(reinterpret_cast<uint8_t*>(secret.data()), bytes->data() + crypto_secretbox_NONCEBYTES,
                                 bytes->size() - crypto_secretbox_NONCEBYTES, bytes->data(), key_.data()) != 0) {
    return Error::Internal("a provider credential does not open with the configured telephony.credentials_key");
  }
  return secret;
}

std::string MaskedHint(std::string_view secret) {
  // Short secrets show nothing: four characters of an eight-character token would be half of it.
  if (secret.size() < 12) return "••••";
  return "••••" + std::string(secret.substr(secret.size() - 4));
}

}  // namespace clozit::telephony
