// http: a small blocking HTTP/1.1 client (plain or TLS) for outbound calls —
// provider REST APIs, customer webhooks — and for the black-box tests.
//
// A Client holds one keep-alive connection to one origin and reconnects when
// the server closed it. It is not thread-safe: use one per thread. Every
// operation has a deadline. TLS verifies the peer against the system trust
// store or `ca_file`, and checks the host name.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/result.hpp"
#include "http/message.hpp"

namespace clozit::http {

struct ClientOptions {
  std::chrono::milliseconds timeout{10'000};
  std::string ca_file;  // extra trust anchor (tests use their self-signed certificate)
  bool verify_peer = true;
};

struct ClientResponse {
  int status = 0;
  Headers headers;
  std::string body;
};

class Client {
 public:
  /// `origin` is "http://host:port" or "https://host:port".
  static Result<std::unique_ptr<Client>> Create(const std::string& origin, ClientOptions options = {});
  ~Client();

  Result<ClientResponse> Send(const std::string& method, const std::string& target, const Headers& headers = {},
                              const std::string& body = {});
  /// Drops the connection; the next Send opens a new one.
  void Close();

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace clozit::http
