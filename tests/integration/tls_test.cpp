// TLS: the server presents its certificate, cookies become Secure, plaintext
// is refused; and plaintext on a public address is refused at startup.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "integration/harness.hpp"

namespace clozit::itest {
namespace {

using namespace std::chrono_literals;
using testing::HasSubstr;
using testing::Not;

class TlsTest : public ServerTest {
 protected:
  /// A self-signed certificate for localhost/127.0.0.1 in the test directory.
  bool MakeCertificate() {
    cert_ = dir() + "/cert.pem";
    key_ = dir() + "/key.pem";
    std::string command =
        "openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -addext "
        "'subjectAltName=DNS:localhost,IP:127.0.0.1' -days 1 -keyout '" +
        key_ + "' -out '" + cert_ + "' >'" + dir() + "/openssl.log' 2>&1";
    int status = std::system(command.c_str());
    EXPECT_EQ(status, 0) << command;
    return status == 0;
  }

  std::string cert_;
  std::string key_;
};

TEST_P(TlsTest, ServesHttpsWithVerifiedCertificateAndSecureCookies) {
  ASSERT_TRUE(MakeCertificate());
  auto* server = StartServer({{"CLOZIT_SERVER__TLS_CERT_FILE", cert_}, {"CLOZIT_SERVER__TLS_KEY_FILE", key_}});
  ASSERT_NE(server, nullptr);
  EXPECT_THAT(server->Log(), HasSubstr("listening on https://"));
  ASSERT_THAT(server->origin(), testing::StartsWith("https://localhost:"));

  // The client trusts the test certificate and checks the host name.
  TestClient client(server->origin(), http::ClientOptions{.timeout = 5s, .ca_file = cert_});
  auto health = client.Get("/healthz");
  ASSERT_EQ(health.status, 200) << health;
  EXPECT_EQ(health.Json().value("status", ""), "ok");

  // Sessions made over TLS carry Secure cookies, and work over the same connection.
  Account owner = SignUp(client, "tls");
  auto login = client.Post("/v1/login", {{"email", owner.email}, {"password", owner.password}});
  ASSERT_EQ(login.status, 200) << login;
  const std::string cookie = login.CookieLine("clozit_session");
  EXPECT_THAT(cookie, HasSubstr("; Secure"));
  EXPECT_THAT(cookie, HasSubstr("HttpOnly"));
  EXPECT_THAT(cookie, HasSubstr("SameSite=Lax"));
  EXPECT_EQ(client.Get("/v1/me", &owner.cookie).status, 200);

  // Without the certificate as a trust anchor the handshake fails.
  TestClient untrusting(server->origin(), http::ClientOptions{.timeout = 5s});
  auto refused = untrusting.Get("/healthz");
  EXPECT_FALSE(refused.ok()) << refused;
  EXPECT_THAT(refused.transport_error, HasSubstr("handshake"));

  // Plain HTTP to the TLS port gets no HTTP response.
  TestClient plain("http://127.0.0.1:" + std::to_string(server->port()), http::ClientOptions{.timeout = 5s});
  auto plaintext = plain.Get("/healthz");
  EXPECT_FALSE(plaintext.ok()) << "plaintext request answered: " << plaintext;

  // The server is still fine afterwards.
  TestClient again(server->origin(), http::ClientOptions{.timeout = 5s, .ca_file = cert_});
  EXPECT_EQ(again.Get("/readyz").status, 200);

  // Clients that hang up without a TLS close_notify do not hold up the shutdown.
  client.Close();
  again.Close();
  auto stopping = std::chrono::steady_clock::now();
  EXPECT_EQ(server->Stop(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - stopping, 2s);
}

TEST_P(TlsTest, RefusesPlaintextOnAPublicAddress) {
  auto result = RunClozit({"serve"}, ServerEnv({{"CLOZIT_SERVER__LISTEN_ADDRESS", "0.0.0.0"}}), dir(), 30s);
  EXPECT_FALSE(result.timed_out) << "the server started instead of refusing";
  EXPECT_NE(result.exit_code, 0);
  EXPECT_THAT(result.err, HasSubstr("server.listen_address"));
  EXPECT_THAT(result.err, Not(HasSubstr("listening on")));

  // Half a TLS configuration is refused too, naming the missing key.
  ASSERT_TRUE(MakeCertificate());
  auto half = RunClozit({"serve"}, ServerEnv({{"CLOZIT_SERVER__TLS_CERT_FILE", cert_}}), dir(), 30s);
  EXPECT_NE(half.exit_code, 0);
  EXPECT_THAT(half.err, HasSubstr("server.tls_key_file"));
  // An unreadable certificate names the certificate key.
  auto missing = RunClozit(
      {"serve"},
      ServerEnv({{"CLOZIT_SERVER__TLS_CERT_FILE", dir() + "/nope.pem"}, {"CLOZIT_SERVER__TLS_KEY_FILE", key_}}), dir(),
      30s);
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_THAT(missing.err, HasSubstr("server.tls_cert_file"));
  EXPECT_THAT(missing.err, Not(HasSubstr("listening on")));
}

CLOZIT_INSTANTIATE_BACKENDS(TlsTest);

}  // namespace
}  // namespace clozit::itest
