// Large uploads through the real server: a CSV import far over the in-memory
// body limit streams to disk (the server's peak memory barely moves), lands
// every row, and leaves no spooled file behind.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "integration/harness.hpp"

namespace clozit::itest {
namespace {

/// Peak resident set of a process in KiB (VmHWM), or -1.
long PeakRssKib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

size_t FilesUnder(const std::string& directory) {
  std::error_code error;
  if (!std::filesystem::exists(directory, error)) return 0;
  size_t count = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(directory, error)) {
    count += entry.is_regular_file() ? 1 : 0;
  }
  return count;
}

class UploadTest : public ServerTest {};

std::string Csv(int rows, size_t notes_bytes) {
  const std::string notes(notes_bytes, 'n');
  std::string csv = "phone,name,notes\n";
  csv.reserve(static_cast<size_t>(rows) * (notes_bytes + 40));
  for (int i = 0; i < rows; ++i) {
    const std::string area = i % 2 == 0 ? "415" : "212";
    csv += "+1" + area + std::to_string(5550000 + i / 2) + ",Person " + std::to_string(i) + "," + notes + "\n";
  }
  return csv;
}

const char* kImportQuery =
    "/v1/contacts/imports?file_name=big.csv&consent_type=prior_express_consent&consent_where=web%20form"
    "&consent_at=2026-01-02T03:04:05Z&consent_evidence=ref-9";

TEST_P(UploadTest, AnUploadSixtyTimesTheBodyLimitStreamsToDiskNotMemory) {
  // AddressSanitizer's quarantine keeps every freed block resident, so RSS would count each read's coroutine
  // frame; without it, RSS counts what the server holds.
  const char* asan = std::getenv("ASAN_OPTIONS");
  ServerProcess* server =
      StartServer({{"CLOZIT_SERVER__BODY_LIMIT_BYTES", "1048576"},
                   {"ASAN_OPTIONS", std::string(asan ? asan : "") + (asan ? ":" : "") + "quarantine_size_mb=0"}});
  ASSERT_NE(server, nullptr);
  auto client = Client();
  Account owner = SignUp(*client, "uploader");
  const std::string csv = Csv(20'000, 3000);
  ASSERT_GT(csv.size(), 55u << 20);

  // Warm the allocator and the worker threads first, so the peak below measures the upload alone.
  ASSERT_EQ(client->Get("/v1/contacts", &owner.cookie).status, 200);
  const long before = PeakRssKib(server->pid());
  ASSERT_GT(before, 0);
  http::Headers headers;
  headers.Set("Content-Type", "text/csv");
  // Without a consent basis the handler refuses, but only after the server has read the whole body: what this
  // measures is the reading alone, with no import running beside it.
  auto refused = client->SendBytes("POST", "/v1/contacts/imports?file_name=big.csv", csv, &owner.cookie, headers);
  ExpectProblem(refused, 400, "invalid_argument", "consent_type");
  const long after = PeakRssKib(server->pid());
  // Held in memory, the body alone would add 57 MB (more with copies); streamed, the server adds buffers only.
  EXPECT_LT(after - before, 16 * 1024) << "peak RSS grew by " << (after - before) << " KiB";
  EXPECT_EQ(FilesUnder(dir() + "/uploads") + FilesUnder(dir() + "/var/uploads"), 0u) << "the refused upload stayed";

  // A body over the in-memory limit on an ordinary route is still refused.
  auto too_big = client->SendBytes("POST", "/v1/contact-lists", std::string(2 << 20, 'x'), &owner.cookie, headers);
  ExpectProblem(too_big, 413, "payload_too_large", "body");
}

TEST_P(UploadTest, AnImportOverTheBodyLimitLandsEveryRow) {
  ASSERT_NE(StartServer({{"CLOZIT_SERVER__BODY_LIMIT_BYTES", "1048576"}}), nullptr);
  auto client = Client();
  Account owner = SignUp(*client, "importer");
  constexpr int kRows = 4'000;
  const std::string csv = Csv(kRows, 1000);
  ASSERT_GT(csv.size(), 3u << 20);
  http::Headers headers;
  headers.Set("Content-Type", "text/csv");
  auto started = client->SendBytes("POST", kImportQuery, csv, &owner.cookie, headers);
  ASSERT_EQ(started.status, 202) << started;
  const std::string id = started.Json().value("id", "");
  EXPECT_EQ(started.Json().value("file_bytes", int64_t{0}), static_cast<int64_t>(csv.size()));

  json job;
  for (int attempt = 0; attempt < 1200; ++attempt) {
    auto reply = client->Get("/v1/contacts/imports/" + id, &owner.cookie);
    ASSERT_EQ(reply.status, 200) << reply;
    job = reply.Json();
    if (job["status"] != "pending" && job["status"] != "running") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(job["status"], "completed") << job.dump();
  EXPECT_EQ(job["accepted"], kRows) << job.dump();
  EXPECT_EQ(job["rejected"], 0);
  EXPECT_EQ(job["bytes_read"], job["file_bytes"]);
  auto listed = client->Get("/v1/contacts?limit=1&number=%2B12125551999", &owner.cookie);
  ASSERT_EQ(listed.status, 200) << listed;
  ASSERT_EQ(listed.Json()["data"].size(), 1u) << listed;
  EXPECT_EQ(listed.Json()["data"][0].value("name", ""), "Person 3999");
  // The upload was moved into the import spool and deleted once the job completed.
  // (The data directory is beside the SQLite file, or var/ with PostgreSQL, where other files live too.)
  EXPECT_EQ(FilesUnder(dir() + "/uploads") + FilesUnder(dir() + "/imports") + FilesUnder(dir() + "/var/uploads") +
                FilesUnder(dir() + "/var/imports"),
            0u);
}

// Who may upload is decided on the headers: a caller the route refuses gets its answer before the body is read
// (with `Expect: 100-continue`, instead of the 100 that would invite the body), and nothing is spooled.
// A caller over its rate limit is refused on the upload's headers too (the admission only looks at the limit; the
// request takes its token when it runs), so it cannot make the server spool a body it will answer 429 to.
TEST_P(UploadTest, AnUploadOverTheCallersRateLimitIsRefusedBeforeItsBody) {
  ASSERT_NE(StartServer({{"CLOZIT_RATE_LIMIT__PER_PRINCIPAL_BURST", "3"},
                         {"CLOZIT_RATE_LIMIT__PER_PRINCIPAL_PER_SECOND", "1"}}),
            nullptr);
  auto client = Client();
  Account owner = SignUp(*client, "hasty-uploader");
  int status = 200;
  for (int i = 0; i < 20 && status != 429; ++i) status = client->Get("/v1/me", &owner.cookie).status;
  ASSERT_EQ(status, 429);
  http::Headers headers;
  headers.Set("Content-Type", "text/csv");
  headers.Set("Expect", "100-continue");
  auto refused = Client()->SendBytes("POST", kImportQuery, Csv(2'000, 1000), &owner.cookie, headers);
  ExpectProblem(refused, 429, "rate_limited");
  EXPECT_FALSE(refused.Header("Retry-After").empty()) << refused;
  // Answered on the headers, with the body unread: the connection cannot be reused.
  EXPECT_EQ(refused.Header("Connection"), "close") << refused;
  EXPECT_EQ(FilesUnder(dir() + "/uploads") + FilesUnder(dir() + "/var/uploads"), 0u);
}

TEST_P(UploadTest, AnUploadFromACallerTheRouteRefusesIsAnsweredBeforeItsBody) {
  ASSERT_NE(StartServer({{"CLOZIT_SERVER__BODY_LIMIT_BYTES", "1048576"}}), nullptr);
  auto client = Client();
  Account owner = SignUp(*client, "refused-uploader");
  const std::string csv = Csv(2'000, 1000);
  http::Headers headers;
  headers.Set("Content-Type", "text/csv");
  headers.Set("Expect", "100-continue");
  auto anonymous = client->SendBytes("POST", kImportQuery, csv, nullptr, headers);
  ExpectProblem(anonymous, 401, "unauthenticated");
  EXPECT_FALSE(anonymous.Header("X-Request-Id").empty()) << anonymous;
  const Credentials without_csrf = owner.cookie.WithoutCsrf();
  auto forged = Client()->SendBytes("POST", kImportQuery, csv, &without_csrf, headers);
  ExpectProblem(forged, 403, "permission_denied", "X-CSRF-Token");
  EXPECT_EQ(FilesUnder(dir() + "/uploads") + FilesUnder(dir() + "/var/uploads"), 0u);
}

CLOZIT_INSTANTIATE_BACKENDS(UploadTest);

}  // namespace
}  // namespace clozit::itest
