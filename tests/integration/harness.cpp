#include "integration/harness.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

extern char** environ;

namespace clozit::itest {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::atomic<int> g_file_counter{0};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string Tail(const std::string& text, size_t bytes) {
  return text.size() <= bytes ? text : "..." + text.substr(text.size() - bytes);
}

/// fork/exec of the clozit binary. Everything the child needs is prepared
/// before fork, so the child only makes async-signal-safe calls.
pid_t Spawn(const std::vector<std::string>& args, const Env& env, const std::string& work_dir,
            const std::string& out_path, const std::string& err_path) {
  std::vector<std::string> argv_storage{ClozitBinary()};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<std::string> env_storage;
  for (char** entry = environ; entry && *entry; ++entry) {
    std::string_view text = *entry;
    const bool overridden = env.count(std::string(text.substr(0, text.find('=')))) > 0;
    if (!text.starts_with("CLOZIT_") && !overridden) env_storage.emplace_back(text);
  }
  for (const auto& [name, value] : env) env_storage.push_back(name + "=" + value);
  std::vector<char*> argv, envp;
  for (auto& arg : argv_storage) argv.push_back(arg.data());
  argv.push_back(nullptr);
  for (auto& entry : env_storage) envp.push_back(entry.data());
  envp.push_back(nullptr);

  int in_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int out_fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int err_fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (in_fd < 0 || out_fd < 0 || err_fd < 0) {
    ADD_FAILURE() << "cannot open child stdio files in " << work_dir << ": " << std::strerror(errno);
    for (int fd : {in_fd, out_fd, err_fd})
      if (fd >= 0) ::close(fd);
    return -1;
  }
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    // A server must not outlive a crashed test run.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    ::dup2(in_fd, STDIN_FILENO);
    ::dup2(out_fd, STDOUT_FILENO);
    ::dup2(err_fd, STDERR_FILENO);
    // Sockets and database handles of the test process must not keep connections alive in the child.
    if (::close_range(3, ~0U, 0) != 0) {
      for (int fd = 3; fd < 4096; ++fd) ::close(fd);
    }
    if (::chdir(work_dir.c_str()) != 0) ::_exit(125);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(in_fd);
  ::close(out_fd);
  ::close(err_fd);
  if (pid < 0) ADD_FAILURE() << "fork failed: " << std::strerror(errno);
  return pid;
}

/// Waits for `pid` up to `timeout`. Returns the raw wait status, or nullopt if still running.
std::optional<int> WaitPid(pid_t pid, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) return status;
    if (done < 0 && errno != EINTR) return std::nullopt;
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(5ms);
  }
}

std::string RandomSuffix() {
  static std::atomic<uint64_t> counter{0};
  uint64_t mix = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
                 (static_cast<uint64_t>(::getpid()) << 32) ^ (++counter * 0x9E3779B97F4A7C15ULL);
  std::ostringstream out;
  out << std::hex << (mix & 0xFFFFFFFFFFFFULL);
  return out.str();
}

/// Replaces the database name (the path) of a libpq URI.
std::string WithDatabase(const std::string& url, const std::string& name) {
  auto authority = url.find("://");
  size_t start = authority == std::string::npos ? 0 : authority + 3;
  auto query = url.find('?', start);
  std::string params = query == std::string::npos ? "" : url.substr(query);
  std::string head = url.substr(0, query == std::string::npos ? url.size() : query);
  auto slash = head.find('/', start);
  if (slash != std::string::npos) head.resize(slash);
  return head + "/" + name + params;
}

bool PgExec(const std::string& url, const std::string& sql, std::string* error) {
  PGconn* conn = PQconnectdb(url.c_str());
  bool ok = PQstatus(conn) == CONNECTION_OK;
  if (!ok) {
    *error = PQerrorMessage(conn);
  } else {
    PGresult* result = PQexec(conn, sql.c_str());
    ok = PQresultStatus(result) == PGRES_COMMAND_OK;
    if (!ok) *error = PQerrorMessage(conn);
    PQclear(result);
  }
  PQfinish(conn);
  return ok;
}

}  // namespace

std::string BackendName(const testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kSqlite ? "Sqlite" : "Postgres";
}

void PrintTo(Backend backend, std::ostream* out) { *out << (backend == Backend::kSqlite ? "SQLite" : "PostgreSQL"); }

std::string ClozitBinary() {
  if (const char* override_path = std::getenv("CLOZIT_TEST_BINARY")) return override_path;
  return CLOZIT_BINARY;
}

// ---- TempDir

TempDir::TempDir() {
  std::string pattern = testing::TempDir();
  if (pattern.empty() || pattern.back() != '/') pattern += '/';
  pattern += "clozit-it-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp failed: " << std::strerror(errno);
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  if (keep_ || path_.empty()) return;
  std::error_code ec;
  fs::remove_all(path_, ec);
}

// ---- processes

ProcessResult RunClozit(const std::vector<std::string>& args, const Env& env, const std::string& work_dir,
                        std::chrono::milliseconds timeout) {
  ProcessResult result;
  int n = ++g_file_counter;
  std::string out_path = work_dir + "/run-" + std::to_string(n) + ".out";
  std::string err_path = work_dir + "/run-" + std::to_string(n) + ".err";
  pid_t pid = Spawn(args, env, work_dir, out_path, err_path);
  if (pid < 0) return result;
  auto status = WaitPid(pid, timeout);
  if (!status) {
    ::kill(pid, SIGKILL);
    status = WaitPid(pid, 5s);
    result.timed_out = true;
  }
  if (status && WIFEXITED(*status)) result.exit_code = WEXITSTATUS(*status);
  result.out = ReadFile(out_path);
  result.err = ReadFile(err_path);
  return result;
}

std::unique_ptr<ServerProcess> ServerProcess::Start(Options options) {
  std::unique_ptr<ServerProcess> server(new ServerProcess());
  int n = ++g_file_counter;
  server->log_path_ = options.work_dir + "/server-" + std::to_string(n) + ".log";
  std::string out_path = options.work_dir + "/server-" + std::to_string(n) + ".out";
  server->pid_ = Spawn({"serve"}, options.env, options.work_dir, out_path, server->log_path_);
  if (server->pid_ < 0) return nullptr;

  static const std::regex kListening(R"(listening on (https?)://([^:\s]+):(\d+))");
  auto deadline = std::chrono::steady_clock::now() + options.start_timeout;
  for (;;) {
    std::string log = ReadFile(server->log_path_);
    std::smatch match;
    if (std::regex_search(log, match, kListening)) {
      server->port_ = std::stoi(match[3].str());
      bool tls = match[1].str() == "https";
      // TLS: connect by name, so the certificate's DNS name is what gets verified.
      server->origin_ = (tls ? "https://localhost:" : "http://127.0.0.1:") + std::to_string(server->port_);
      return server;
    }
    if (auto status = WaitPid(server->pid_, 0ms)) {
      server->exited_ = true;
      server->exit_code_ = WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
      ADD_FAILURE() << "clozit serve exited with " << server->exit_code_ << " before listening; log:\n"
                    << Tail(ReadFile(server->log_path_), 4000);
      return nullptr;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      ADD_FAILURE() << "clozit serve did not report listening within " << options.start_timeout.count() << " ms; log:\n"
                    << Tail(log, 4000);
      server->Stop(2s);
      return nullptr;
    }
    std::this_thread::sleep_for(10ms);
  }
}

ServerProcess::~ServerProcess() {
  if (!exited_) Stop(5s);
}

std::string ServerProcess::Log() const { return ReadFile(log_path_); }

void ServerProcess::Terminate() {
  if (!exited_) ::kill(pid_, SIGTERM);
}

std::optional<int> ServerProcess::Wait(std::chrono::milliseconds timeout) {
  if (!exited_) {
    auto status = WaitPid(pid_, timeout);
    if (!status) return std::nullopt;
    exited_ = true;
    exit_code_ = WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
  }
  if (exit_code_ < 0) return std::nullopt;
  return exit_code_;
}

std::optional<int> ServerProcess::Stop(std::chrono::milliseconds timeout) {
  if (exited_) return Wait(0ms);
  Terminate();
  auto code = Wait(timeout);
  if (!exited_) {
    ::kill(pid_, SIGKILL);
    Wait(5s);
    return std::nullopt;
  }
  return code;
}

// ---- database

std::unique_ptr<TestDatabase> TestDatabase::Create(Backend backend, const std::string& dir) {
  std::unique_ptr<TestDatabase> db(new TestDatabase());
  db->backend_ = backend;
  if (backend == Backend::kSqlite) {
    db->url_ = "sqlite:" + dir + "/clozit.db";
    return db;
  }
  const char* admin = std::getenv("CLOZIT_TEST_PG_URL");
  if (admin == nullptr) {
    ADD_FAILURE() << "CLOZIT_TEST_PG_URL is not set";
    return nullptr;
  }
  db->admin_url_ = admin;
  db->name_ = "clozit_it_" + RandomSuffix();
  std::string error;
  if (!PgExec(db->admin_url_, "CREATE DATABASE " + db->name_, &error)) {
    ADD_FAILURE() << "cannot create PostgreSQL database " << db->name_ << ": " << error;
    return nullptr;
  }
  db->url_ = WithDatabase(db->admin_url_, db->name_);
  return db;
}

TestDatabase::~TestDatabase() {
  direct_.reset();
  if (backend_ == Backend::kPostgres && !name_.empty()) {
    std::string error;
    if (!PgExec(admin_url_, "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)", &error)) {
      std::cerr << "warning: cannot drop test database " << name_ << ": " << error << "\n";
    }
  }
}

storage::Database& TestDatabase::Direct() {
  if (!direct_) {
    storage::OpenOptions options;
    options.url = url_;
    options.pool_size = 2;
    auto opened = storage::Open(options);
    if (!opened) throw std::runtime_error("cannot open the test database " + url_ + ": " + opened.error().message);
    direct_ = std::move(opened).value();
  }
  return *direct_;
}

// ---- responses and credentials

json Response::Json() const {
  auto parsed = json::parse(body, nullptr, false);
  if (parsed.is_discarded()) {
    ADD_FAILURE() << "response body is not JSON: " << *this;
    return nullptr;
  }
  return parsed;
}

std::vector<std::string> Response::SetCookies() const {
  std::vector<std::string> out;
  for (const auto& [name, value] : headers.all()) {
    if (strcasecmp(name.c_str(), "Set-Cookie") == 0) out.push_back(value);
  }
  return out;
}

std::optional<std::string> Response::Cookie(const std::string& name) const {
  for (const auto& line : SetCookies()) {
    if (line.rfind(name + "=", 0) != 0) continue;
    auto end = line.find(';');
    return line.substr(name.size() + 1, end == std::string::npos ? std::string::npos : end - name.size() - 1);
  }
  return std::nullopt;
}

std::string Response::CookieLine(const std::string& name) const {
  for (const auto& line : SetCookies()) {
    if (line.rfind(name + "=", 0) == 0) return line;
  }
  return {};
}

std::ostream& operator<<(std::ostream& out, const Response& response) {
  if (!response.ok()) return out << "[no response: " << response.transport_error << "]";
  out << "[HTTP " << response.status;
  if (auto type = response.headers.Get("Content-Type")) out << " " << *type;
  return out << "] " << Tail(response.body, 2000);
}

std::string RawExchange(int port, const std::string& bytes, std::chrono::milliseconds timeout) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "[socket failed]";
  timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string received;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return "[connect failed]";
  }
  // The server may answer and close before reading everything: a failed send is not an error here.
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  char buffer[16 * 1024];
  for (;;) {
    ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    received.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return received;
}

Response ParseRawResponse(const std::string& raw) {
  Response response;
  auto end_of_headers = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.", 0) != 0 || end_of_headers == std::string::npos) {
    response.transport_error = "not an HTTP response: " + raw.substr(0, 200);
    return response;
  }
  std::istringstream head(raw.substr(0, end_of_headers));
  std::string line;
  std::getline(head, line);
  response.status = std::atoi(line.substr(9, 3).c_str());
  while (std::getline(head, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    auto value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    response.headers.Add(line.substr(0, colon), value);
  }
  response.body = raw.substr(end_of_headers + 4);
  return response;
}

void ExpectProblem(const Response& response, int status, const std::string& code, const std::string& field) {
  ASSERT_TRUE(response.ok()) << response;
  EXPECT_EQ(response.status, status) << response;
  EXPECT_EQ(response.Header("Content-Type"), "application/problem+json") << response;
  auto body = json::parse(response.body, nullptr, false);
  ASSERT_TRUE(body.is_object()) << response;
  EXPECT_EQ(body.value("code", ""), code) << response;
  EXPECT_EQ(body.value("status", 0), status) << response;
  EXPECT_EQ(body.value("type", ""), "https://docs.clozit.tech/problems/" + code) << response;
  EXPECT_FALSE(body.value("title", "").empty()) << response;
  EXPECT_TRUE(body.contains("detail") && body["detail"].is_string()) << response;
  // Errors raised before routing (oversize bodies, malformed HTTP) have no request id yet.
  if (body.contains("request_id")) {
    EXPECT_EQ(body.value("request_id", ""), response.Header("X-Request-Id")) << response;
  }
  if (!field.empty()) {
    EXPECT_EQ(body.value("field", ""), field) << response;
  }
}

Credentials Credentials::Cookie(std::string session, std::string csrf) {
  Credentials out;
  out.session = std::move(session);
  out.csrf = std::move(csrf);
  out.label = "cookie";
  return out;
}

Credentials Credentials::Bearer(std::string secret) {
  Credentials out;
  out.bearer = std::move(secret);
  out.label = "bearer";
  return out;
}

Credentials Credentials::Operator(std::string session, std::string csrf) {
  Credentials out;
  out.operator_session = std::move(session);
  out.csrf = std::move(csrf);
  out.label = "operator";
  return out;
}

Credentials Credentials::WithoutCsrf() const {
  Credentials out = *this;
  out.csrf.clear();
  out.label += " without CSRF";
  return out;
}

// ---- client

TestClient::TestClient(const std::string& origin, http::ClientOptions options) {
  auto created = http::Client::Create(origin, options);
  if (created) {
    client_ = std::move(created).value();
  } else {
    create_error_ = created.error().message;
  }
}

Response TestClient::SendRaw(const std::string& method, const std::string& target, const std::string& body,
                             const http::Headers& headers) {
  Response response;
  if (!client_) {
    response.transport_error = "no client: " + create_error_;
    return response;
  }
  auto result = client_->Send(method, target, headers, body);
  if (!result) {
    response.transport_error = result.error().message;
    return response;
  }
  response.status = result->status;
  response.headers = std::move(result->headers);
  response.body = std::move(result->body);
  return response;
}

Response TestClient::Send(const std::string& method, const std::string& target, const std::optional<json>& body,
                          const Credentials* credentials, const http::Headers& extra) {
  http::Headers headers = extra;
  if (body && !headers.Get("Content-Type")) headers.Set("Content-Type", "application/json");
  return SendBytes(method, target, body ? body->dump() : std::string(), credentials, headers);
}

Response TestClient::SendBytes(const std::string& method, const std::string& target, const std::string& body,
                               const Credentials* credentials, const http::Headers& extra) {
  http::Headers headers;
  if (credentials) {
    std::string cookie;
    if (!credentials->session.empty()) cookie = "clozit_session=" + credentials->session;
    if (!credentials->operator_session.empty()) {
      cookie += (cookie.empty() ? "" : "; ") + std::string("clozit_operator_session=") + credentials->operator_session;
    }
    if (!cookie.empty()) headers.Set("Cookie", cookie);
    if (!credentials->csrf.empty()) headers.Set("X-CSRF-Token", credentials->csrf);
    if (!credentials->bearer.empty()) headers.Set("Authorization", "Bearer " + credentials->bearer);
  }
  for (const auto& [name, value] : extra.all()) headers.Set(name, value);
  return SendRaw(method, target, body, headers);
}

void TestClient::Close() {
  if (client_) client_->Close();
}

// ---- fixture

void ServerTest::SetUp() {
  if (GetParam() == Backend::kPostgres && std::getenv("CLOZIT_TEST_PG_URL") == nullptr) {
    GTEST_SKIP() << "CLOZIT_TEST_PG_URL is not set (run under scripts/with-postgres.sh)";
  }
  temp_ = std::make_unique<TempDir>();
  database_ = TestDatabase::Create(GetParam(), temp_->path());
  ASSERT_NE(database_, nullptr);
}

void ServerTest::TearDown() {
  bool failed = HasFailure();
  for (auto& server : servers_) {
    if (!server->exited()) server->Stop(15s);
    if (failed) {
      std::cerr << "---- log of server pid " << server->pid() << " (" << server->log_path() << ")\n"
                << Tail(server->Log(), 6000) << "\n";
    }
  }
  servers_.clear();
  database_.reset();
  if (failed && temp_) {
    temp_->Keep();
    std::cerr << "test files kept in " << temp_->path() << "\n";
  }
  temp_.reset();
}

Env ServerTest::ServerEnv(const Env& overrides) const {
  Env env = {
      {"CLOZIT_SERVER__PORT", "0"},
      {"CLOZIT_DATABASE__URL", database_ ? database_->url() : ""},
      {"CLOZIT_ACCOUNTS__ARGON2_OPSLIMIT", "1"},
      {"CLOZIT_ACCOUNTS__ARGON2_MEMLIMIT_KIB", "8192"},
      {"CLOZIT_RATE_LIMIT__AUTH_PER_IP_PER_MINUTE", "100000"},
      {"CLOZIT_RATE_LIMIT__PER_PRINCIPAL_PER_SECOND", "100000"},
      {"CLOZIT_RATE_LIMIT__PER_PRINCIPAL_BURST", "100000"},
      {"CLOZIT_LOG__LEVEL", "info"},
  };
  for (const auto& [name, value] : overrides) env[name] = value;
  return env;
}

ServerProcess* ServerTest::StartServer(const Env& overrides) {
  ServerProcess::Options options;
  options.work_dir = dir();
  options.env = ServerEnv(overrides);
  auto server = ServerProcess::Start(options);
  if (!server) return nullptr;
  servers_.push_back(std::move(server));
  return servers_.back().get();
}

std::unique_ptr<TestClient> ServerTest::Client(ServerProcess* server) {
  if (server == nullptr) server = servers_.empty() ? nullptr : servers_.back().get();
  return std::make_unique<TestClient>(server ? server->origin() : "http://127.0.0.1:1");
}

std::string ServerTest::UniqueEmail(const std::string& label) {
  return label + "-" + std::to_string(++email_counter_) + "@example.com";
}

Account ServerTest::SignUp(TestClient& client, const std::string& label) {
  Account account;
  account.email = UniqueEmail(label);
  account.password = kPassword;
  auto response = client.Post("/v1/signup", {{"company", label + " Ltd"},
                                             {"name", label + " Owner"},
                                             {"email", account.email},
                                             {"phone", "+14155552671"},
                                             {"password", account.password}});
  EXPECT_EQ(response.status, 201) << response;
  auto body = response.Json();
  if (response.status != 201 || !body.is_object()) return account;
  account.tenant_id = body["tenant"].value("id", "");
  account.user_id = body["user"].value("id", "");
  account.cookie = Credentials::Cookie(response.Cookie("clozit_session").value_or(""), body.value("csrf_token", ""));
  EXPECT_FALSE(account.cookie.session.empty()) << response;
  EXPECT_FALSE(account.cookie.csrf.empty()) << response;
  return account;
}

json ServerTest::CreateApiKey(TestClient& client, const Credentials& by, const std::string& name,
                              const std::string& role) {
  auto response = client.Post("/v1/api-keys", {{"name", name}, {"role", role}}, &by);
  EXPECT_EQ(response.status, 201) << response;
  auto body = response.Json();
  return body.is_object() ? body : json::object();
}

std::vector<json> ServerTest::ListAll(TestClient& client, const std::string& path, const Credentials& by) {
  std::vector<json> items;
  std::string cursor;
  for (int page = 0; page < 1000; ++page) {
    std::string target = path + (path.find('?') == std::string::npos ? "?" : "&") + "limit=200" +
                         (cursor.empty() ? "" : "&cursor=" + cursor);
    auto response = client.Get(target, &by);
    EXPECT_EQ(response.status, 200) << target << ": " << response;
    if (response.status != 200) break;
    auto body = response.Json();
    for (const auto& item : body.value("data", json::array())) items.push_back(item);
    auto next = body.find("next_cursor");
    if (next == body.end() || !next->is_string() || next->get<std::string>().empty()) break;
    cursor = next->get<std::string>();
  }
  return items;
}

}  // namespace clozit::itest
