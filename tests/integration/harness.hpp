// Black-box test harness: starts the real `clozit` binary as a child process
// against a fresh database, and talks to it over HTTP(S) with the project's own
// client.
//
// Every test is a value-parameterized ServerTest: once on SQLite and, when
// CLOZIT_TEST_PG_URL names a PostgreSQL server, once on a freshly created
// PostgreSQL database (otherwise the PostgreSQL instance skips). A
// ServerTest owns a temporary directory (database file, logs, certificates),
// the database and every server it started; TearDown stops the servers and,
// when the test failed, prints the tail of their logs.
//
// Not thread-safe, except TestClient instances, which may each be used by one
// thread at a time (one per thread).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "http/client.hpp"
#include "storage/database.hpp"

namespace clozit::itest {

using json = nlohmann::json;
using Env = std::map<std::string, std::string>;

enum class Backend { kSqlite, kPostgres };

/// Test-name suffix for INSTANTIATE_TEST_SUITE_P: "Sqlite" or "Postgres".
std::string BackendName(const testing::TestParamInfo<Backend>& info);
/// How GoogleTest prints a Backend (instead of its bytes).
void PrintTo(Backend backend, std::ostream* out);

/// The clozit binary under test: CLOZIT_TEST_BINARY if set (e.g. a script that
/// runs the server under valgrind), else the one this test binary was built with.
std::string ClozitBinary();

/// A directory under the system temp folder, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  /// Keeps the directory after destruction (for post-mortems of failed tests).
  void Keep() { keep_ = true; }

 private:
  std::string path_;
  bool keep_ = false;
};

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal or timed out
  bool timed_out = false;
  std::string out;
  std::string err;
};

/// Runs clozit with `args` to completion (SIGKILL after `timeout`). The child's
/// environment is ours without any CLOZIT_* variable, plus `env`.
ProcessResult RunClozit(const std::vector<std::string>& args, const Env& env, const std::string& work_dir,
                        std::chrono::milliseconds timeout = std::chrono::seconds(30));

/// One database for one test: a SQLite file in the test's directory, or a new
/// PostgreSQL database (dropped on destruction).
class TestDatabase {
 public:
  /// Fails the current test (and returns nullptr) when the database cannot be created.
  static std::unique_ptr<TestDatabase> Create(Backend backend, const std::string& dir);
  ~TestDatabase();
  const std::string& url() const { return url_; }
  /// Direct access for assertions the HTTP API cannot make (the email outbox, row counts).
  storage::Database& Direct();

 private:
  TestDatabase() = default;
  Backend backend_ = Backend::kSqlite;
  std::string url_;
  std::string admin_url_;  // PostgreSQL: the server's maintenance database
  std::string name_;       // PostgreSQL: the database created for this test
  std::unique_ptr<storage::Database> direct_;
};

/// A response, or the connection-level failure that replaced it (status 0).
struct Response {
  int status = 0;
  http::Headers headers;
  std::string body;
  std::string transport_error;  // set when no response arrived

  bool ok() const { return transport_error.empty(); }
  /// The body as JSON; a parse failure fails the test and yields null.
  json Json() const;
  std::string Header(std::string_view name) const { return std::string(headers.GetOr(name, "")); }
  /// Every Set-Cookie value, in order.
  std::vector<std::string> SetCookies() const;
  /// The value of cookie `name` from Set-Cookie, if set.
  std::optional<std::string> Cookie(const std::string& name) const;
  /// The attribute part of the Set-Cookie line for `name` (e.g. "Path=/; HttpOnly; ...").
  std::string CookieLine(const std::string& name) const;
};

/// Prints status and body in assertion messages.
std::ostream& operator<<(std::ostream& out, const Response& response);

/// Writes `bytes` on a fresh TCP connection to 127.0.0.1:`port`, half-closes,
/// and returns everything the server sends until it closes (or `timeout`).
/// For requests the HTTP client cannot produce (malformed, oversized headers).
std::string RawExchange(int port, const std::string& bytes,
                        std::chrono::milliseconds timeout = std::chrono::seconds(5));
/// Splits a raw HTTP/1.1 response into a Response (status, headers, body).
Response ParseRawResponse(const std::string& raw);

/// Checks an RFC 9457 problem: the status, Content-Type application/problem+json,
/// the members type/title/status/code/detail/request_id, and `field` when given.
void ExpectProblem(const Response& response, int status, const std::string& code, const std::string& field = {});

/// How a request authenticates.
struct Credentials {
  std::string session;           // clozit_session cookie
  std::string csrf;              // X-CSRF-Token for cookie-authenticated state changes
  std::string bearer;            // API key secret for Authorization: Bearer
  std::string operator_session;  // clozit_operator_session cookie
  std::string label;             // for messages: "cookie", "bearer", ...

  static Credentials Cookie(std::string session, std::string csrf);
  static Credentials Bearer(std::string secret);
  static Credentials Operator(std::string session, std::string csrf);
  /// The same cookie session without the CSRF header.
  Credentials WithoutCsrf() const;
};

/// A keep-alive HTTP(S) connection to one server. Use one per thread.
class TestClient {
 public:
  explicit TestClient(const std::string& origin, http::ClientOptions options = {});
  /// Sends a request. A JSON `body` is serialized and sent with Content-Type application/json.
  Response Send(const std::string& method, const std::string& target, const std::optional<json>& body = std::nullopt,
                const Credentials* credentials = nullptr, const http::Headers& extra = {});
  /// Sends `body` as it is (set its Content-Type in `extra`), authenticated by `credentials`.
  Response SendBytes(const std::string& method, const std::string& target, const std::string& body,
                     const Credentials* credentials, const http::Headers& extra = {});
  /// Sends raw bytes as the body, with the given headers only.
  Response SendRaw(const std::string& method, const std::string& target, const std::string& body,
                   const http::Headers& headers);
  Response Get(const std::string& target, const Credentials* credentials = nullptr) {
    return Send("GET", target, std::nullopt, credentials);
  }
  Response Post(const std::string& target, const json& body, const Credentials* credentials = nullptr,
                const http::Headers& extra = {}) {
    return Send("POST", target, body, credentials, extra);
  }
  void Close();

 private:
  std::unique_ptr<http::Client> client_;
  std::string create_error_;
};

/// A running `clozit serve`.
class ServerProcess {
 public:
  struct Options {
    std::string work_dir;  // cwd of the server; its stderr goes to work_dir/server-N.log
    Env env;               // complete CLOZIT_* configuration
    std::chrono::milliseconds start_timeout{30'000};
  };
  /// Starts the server and waits for its "listening on" line. On failure the
  /// current test fails (via ADD_FAILURE) and nullptr is returned.
  static std::unique_ptr<ServerProcess> Start(Options options);
  ~ServerProcess();

  pid_t pid() const { return pid_; }
  int port() const { return port_; }
  /// "http://127.0.0.1:PORT" or "https://localhost:PORT".
  const std::string& origin() const { return origin_; }
  const std::string& log_path() const { return log_path_; }
  std::string Log() const;

  /// Sends SIGTERM.
  void Terminate();
  /// Waits up to `timeout` for exit; the exit code, or nullopt if still running (or killed by a signal).
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  /// SIGTERM, then wait up to `timeout`, then SIGKILL. The exit code if it exited on its own.
  std::optional<int> Stop(std::chrono::milliseconds timeout = std::chrono::seconds(15));
  bool exited() const { return exited_; }

 private:
  ServerProcess() = default;
  pid_t pid_ = -1;
  bool exited_ = false;
  int exit_code_ = -1;
  int port_ = 0;
  std::string origin_;
  std::string log_path_;
};

/// A tenant's owner as created by sign-up.
struct Account {
  std::string email;
  std::string password;
  std::string tenant_id;
  std::string user_id;
  Credentials cookie;  // cookie + CSRF
};

/// Base fixture: a temporary directory and a database per test, servers on demand.
class ServerTest : public testing::TestWithParam<Backend> {
 protected:
  void SetUp() override;
  void TearDown() override;

  /// The configuration every test server gets (fast argon2, port 0, generous
  /// limits, the test database); `overrides` win.
  Env ServerEnv(const Env& overrides = {}) const;
  /// Starts a server on the test's database; fails the test and returns nullptr on error.
  ServerProcess* StartServer(const Env& overrides = {});
  /// A client for `server` (or the last one started).
  std::unique_ptr<TestClient> Client(ServerProcess* server = nullptr);

  /// Signs up a new tenant (owner + company) with a unique email; asserts 201.
  Account SignUp(TestClient& client, const std::string& label);
  /// Creates an API key with `role`, authenticated by `by`; returns the whole 201 body (id, secret, ...).
  json CreateApiKey(TestClient& client, const Credentials& by, const std::string& name,
                    const std::string& role = "owner");
  /// Follows `next_cursor` through a list route; returns every item.
  std::vector<json> ListAll(TestClient& client, const std::string& path, const Credentials& by);

  /// A unique email for this test.
  std::string UniqueEmail(const std::string& label);
  const std::string& dir() const { return temp_->path(); }
  TestDatabase& database() { return *database_; }
  Backend backend() const { return GetParam(); }

  std::unique_ptr<TempDir> temp_;
  std::unique_ptr<TestDatabase> database_;
  std::vector<std::unique_ptr<ServerProcess>> servers_;
  int email_counter_ = 0;
};

/// A password that passes the strength rules.
inline constexpr const char* kPassword = "Blue-Kettle-93x";

/// Instantiates a ServerTest suite on both backends.
#define CLOZIT_INSTANTIATE_BACKENDS(Suite)                                                                          \
  INSTANTIATE_TEST_SUITE_P(Backends, Suite,                                                                         \
                           testing::Values(::clozit::itest::Backend::kSqlite, ::clozit::itest::Backend::kPostgres), \
                           ::clozit::itest::BackendName)

}  // namespace clozit::itest
