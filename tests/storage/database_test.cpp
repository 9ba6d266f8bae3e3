#include "storage/database.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "storage/backend_fixture.hpp"
#include "storage/find_one.hpp"
#include "storage/postgres/connection.hpp"

namespace clozit::storage::test {
namespace {

constexpr const char* kItemsTable = "CREATE TABLE items (id TEXT PRIMARY KEY, amount BIGINT, note TEXT)";

Result<void> InsertItem(Tx& tx, const std::string& id, Value amount = int64_t{0}, Value note = nullptr) {
  CLOZIT_TRY(tx.Exec("INSERT INTO items (id, amount, note) VALUES ($1, $2, $3)", {id, amount, note}));
  return Ok();
}

// A one-shot signal between threads; Set may be called again (a retried work function).
class Signal {
 public:
  void Set() {
    {
      std::lock_guard lock(mutex_);
      set_ = true;
    }
    changed_.notify_all();
  }
  bool WaitFor(std::chrono::seconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return set_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool set_ = false;
};

class DatabaseTest : public BackendTest {};
CLOZIT_INSTANTIATE_BACKENDS(DatabaseTest);

TEST_P(DatabaseTest, ReportsItsDialect) { EXPECT_EQ(db_->dialect(), GetParam()); }

TEST_P(DatabaseTest, RoundTripsIntegersTextAndNull) {
  Script(kItemsTable);
  const int64_t max = std::numeric_limits<int64_t>::max();
  const int64_t min = std::numeric_limits<int64_t>::min();
  const std::string utf8 = "Zoë — 日本語 🎉";
  const std::string tricky = "O'Brien\"; DROP TABLE items; -- $1 \\ %";
  auto written = db_->Write([&](Tx& tx) -> Result<void> {
    CLOZIT_TRY(InsertItem(tx, "a_max", max, utf8));
    CLOZIT_TRY(InsertItem(tx, "b_min", min, nullptr));
    CLOZIT_TRY(InsertItem(tx, "c_empty", int64_t{0}, std::string()));
    CLOZIT_TRY(InsertItem(tx, "d_null", nullptr, tricky));
    return Ok();
  });
  ASSERT_TRUE(written.ok()) << written.error().message;

  auto rows = db_->Query("SELECT id, amount, note FROM items ORDER BY id");
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  ASSERT_EQ(rows->size(), 4u);
  const Row& row_max = (*rows)[0];
  EXPECT_EQ(row_max.size(), 3u);
  EXPECT_EQ(row_max.Text(0), "a_max");
  EXPECT_EQ(row_max.Int(1), max);
  EXPECT_EQ(row_max.Text(1), std::to_string(max));
  EXPECT_EQ(row_max.Text(2), utf8);
  EXPECT_TRUE(row_max.Bool(1));

  const Row& row_min = (*rows)[1];
  EXPECT_EQ(row_min.Int(1), min);
  EXPECT_EQ(row_min.OptionalInt(1), min);
  EXPECT_TRUE(row_min.IsNull(2));
  EXPECT_EQ(row_min.OptionalText(2), std::nullopt);
  EXPECT_EQ(row_min.Text(2), "");

  const Row& row_empty = (*rows)[2];
  EXPECT_FALSE(row_empty.IsNull(2)) << "an empty string is not NULL";
  EXPECT_EQ(row_empty.OptionalText(2), std::optional<std::string>(""));
  EXPECT_FALSE(row_empty.Bool(1));

  const Row& row_null = (*rows)[3];
  EXPECT_TRUE(row_null.IsNull(1));
  EXPECT_EQ(row_null.OptionalInt(1), std::nullopt);
  EXPECT_EQ(row_null.Int(1), 0);
  EXPECT_EQ(row_null.Text(2), tricky);

  // Parameters echo back whatever the backend's native result type is.
  auto echoed = db_->Query("SELECT $1, $2", {max, utf8});
  ASSERT_TRUE(echoed.ok()) << echoed.error().message;
  EXPECT_EQ(echoed->front().Int(0), max);
  EXPECT_EQ(echoed->front().Text(1), utf8);

  // Integers compare as integers, text passed for an integer column converts.
  auto found = db_->Query("SELECT id FROM items WHERE amount = $1", {std::string("0")});
  ASSERT_TRUE(found.ok()) << found.error().message;
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ(found->front().Text(0), "c_empty");
}

TEST_P(DatabaseTest, WriteRollsBackWhenWorkReturnsAnError) {
  Script(kItemsTable);
  auto result = db_->Write([](Tx& tx) -> Result<void> {
    CLOZIT_TRY(InsertItem(tx, "gone"));
    return Error::Make(ErrorCode::kConflict, "changed my mind");
  });
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kConflict);
  EXPECT_EQ(result.error().message, "changed my mind");
  EXPECT_EQ(Count("items"), 0);
}

TEST_P(DatabaseTest, UniqueViolationIsAlreadyExistsWithoutTheValue) {
  Script("CREATE TABLE people (id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE)");
  const std::string email = "private.person@example.com";
  auto first = db_->Write([&](Tx& tx) -> Result<void> {
    CLOZIT_TRY(tx.Exec("INSERT INTO people (id, email) VALUES ($1, $2)", {std::string("p1"), email}));
    return Ok();
  });
  ASSERT_TRUE(first.ok()) << first.error().message;

  auto duplicate_key = db_->Write([&](Tx& tx) -> Result<void> {
    CLOZIT_TRY(tx.Exec("INSERT INTO people (id, email) VALUES ($1, $2)", {std::string("p1"), std::string("x@y.z")}));
    return Ok();
  });
  ASSERT_FALSE(duplicate_key.ok());
  EXPECT_EQ(duplicate_key.error().code, ErrorCode::kAlreadyExists) << duplicate_key.error().message;

  auto duplicate_email = db_->Write([&](Tx& tx) -> Result<void> {
    CLOZIT_TRY(tx.Exec("INSERT INTO people (id, email) VALUES ($1, $2)", {std::string("p2"), std::string("other")}));
    CLOZIT_TRY(tx.Exec("INSERT INTO people (id, email) VALUES ($1, $2)", {std::string("p3"), email}));
    return Ok();
  });
  ASSERT_FALSE(duplicate_email.ok());
  EXPECT_EQ(duplicate_email.error().code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(duplicate_email.error().message.find(email), std::string::npos)
      << "error messages must not carry bound values: " << duplicate_email.error().message;
  EXPECT_EQ(Count("people"), 1) << "p2 was in the failed transaction";
}

TEST_P(DatabaseTest, FailedStatementAbortsTheTransactionEvenIfWorkIgnoresIt) {
  Script(kItemsTable);
  auto result = db_->Write([](Tx& tx) -> Result<void> {
    CLOZIT_TRY(InsertItem(tx, "first"));
    auto duplicate = InsertItem(tx, "first");
    EXPECT_EQ(duplicate.error().code, ErrorCode::kAlreadyExists);
    auto after = InsertItem(tx, "second");
    EXPECT_FALSE(after.ok()) << "statements after a failure must fail, as on PostgreSQL";
    return Ok();  // wrongly ignores both errors
  });
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kInternal);
  EXPECT_EQ(Count("items"), 0);

  // The portable way to branch on a duplicate.
  std::vector<int64_t> changed;
  auto upsert = db_->Write([&](Tx& tx) -> Result<void> {
    changed.clear();
    for (const char* id : {"k", "k", "l"}) {
      CLOZIT_ASSIGN_OR_RETURN(
          int64_t count, tx.Exec("INSERT INTO items (id) VALUES ($1) ON CONFLICT (id) DO NOTHING", {std::string(id)}));
      changed.push_back(count);
    }
    return Ok();
  });
  ASSERT_TRUE(upsert.ok()) << upsert.error().message;
  EXPECT_EQ(changed, (std::vector<int64_t>{1, 0, 1}));
}

TEST_P(DatabaseTest, ExecCountsChangedRowsAndReturningReturnsThem) {
  Script(kItemsTable);
  std::vector<int64_t> counts;
  auto result = db_->Write([&](Tx& tx) -> Result<void> {
    counts.clear();
    for (const char* id : {"a", "b", "c"}) CLOZIT_TRY(InsertItem(tx, id, int64_t{5}));
    CLOZIT_ASSIGN_OR_RETURN(int64_t updated, tx.Exec("UPDATE items SET amount = amount + $1 WHERE id <> $2",
                                                     {int64_t{1}, std::string("c")}));
    counts.push_back(updated);
    CLOZIT_ASSIGN_OR_RETURN(int64_t deleted, tx.Exec("DELETE FROM items WHERE id = $1", {std::string("c")}));
    counts.push_back(deleted);
    // DDL changes no rows, even right after DML.
    CLOZIT_ASSIGN_OR_RETURN(int64_t created, tx.Exec("CREATE TABLE other (x BIGINT)"));
    counts.push_back(created);
    CLOZIT_ASSIGN_OR_RETURN(Row inserted,
                            tx.QueryOne("INSERT INTO items (id, amount) VALUES ($1, $2) RETURNING id, amount",
                                        {std::string("d"), int64_t{42}}));
    EXPECT_EQ(inserted.Text(0), "d");
    EXPECT_EQ(inserted.Int(1), 42);
    return Ok();
  });
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(counts, (std::vector<int64_t>{2, 1, 0}));
  auto sum = db_->Query("SELECT sum(amount) FROM items");
  ASSERT_TRUE(sum.ok());
  EXPECT_EQ(sum->front().Int(0), 6 + 6 + 42);
}

// ExecLater may send its statement with the next one (PostgreSQL) or run it at once (SQLite): either way
// the work's later statements see it, and a failure or a wrong row count fails that write alone.
TEST_P(DatabaseTest, ExecLaterIsSeenByLaterStatementsAndItsFailureFailsTheWrite) {
  Script(kItemsTable);
  auto seen = db_->Write([](Tx& tx) -> Result<void> {
    CLOZIT_TRY(tx.ExecLater("INSERT INTO items (id, amount) VALUES ($1, $2)", {std::string("a"), int64_t{1}}, 1));
    CLOZIT_TRY(tx.ExecLater("UPDATE items SET amount = amount + $1 WHERE id = $2", {int64_t{2}, std::string("a")}, 1));
    CLOZIT_ASSIGN_OR_RETURN(Row row, tx.QueryOne("SELECT amount FROM items WHERE id = $1", {std::string("a")}));
    EXPECT_EQ(row.Int(0), 3);
    // Held back until the work returns: the Write sends it before committing.
    return tx.ExecLater("INSERT INTO items (id, amount) VALUES ($1, $2)", {std::string("b"), int64_t{4}}, 1);
  });
  ASSERT_TRUE(seen.ok()) << seen.error().message;
  EXPECT_EQ(Count("items"), 2);

  auto wrong_count = db_->Write([](Tx& tx) -> Result<void> {
    CLOZIT_TRY(InsertItem(tx, "c"));
    CLOZIT_TRY(tx.ExecLater("UPDATE items SET amount = 9 WHERE id = $1", {std::string("nobody")}, 1));
    CLOZIT_TRY(tx.Query("SELECT count(*) FROM items"));
    return Ok();
  });
  ASSERT_FALSE(wrong_count.ok());
  EXPECT_EQ(wrong_count.error().code, ErrorCode::kInternal) << wrong_count.error().message;

  auto duplicate_at_the_end = db_->Write([](Tx& tx) -> Result<void> {
    CLOZIT_TRY(InsertItem(tx, "d"));
    return tx.ExecLater("INSERT INTO items (id) VALUES ($1)", {std::string("a")}, 1);
  });
  ASSERT_FALSE(duplicate_at_the_end.ok());
  EXPECT_EQ(duplicate_at_the_end.error().code, ErrorCode::kAlreadyExists) << duplicate_at_the_end.error().message;
  EXPECT_EQ(Count("items"), 2) << "c and d were in the failed writes";

  // The same connection works on after a failed pipeline.
  auto after = db_->Write([](Tx& tx) { return InsertItem(tx, "e"); });
  ASSERT_TRUE(after.ok()) << after.error().message;
  EXPECT_EQ(Count("items"), 3);
}

TEST_P(DatabaseTest, QueryOneReportsNotFound) {
  Script(kItemsTable);
  auto result = db_->Read([](Tx& tx) -> Result<void> {
    auto row = tx.QueryOne("SELECT id FROM items WHERE id = $1", {std::string("nobody")});
    EXPECT_FALSE(row.ok());
    EXPECT_EQ(row.error().code, ErrorCode::kNotFound);
    return Ok();
  });
  EXPECT_TRUE(result.ok()) << "an empty result is not a failed statement";
}

TEST_P(DatabaseTest, FindOneDecodesTheFirstRowOrAnswersNothing) {
  Script(kItemsTable);
  Script("INSERT INTO items (id, amount) VALUES ('a', 6), ('b', 7)");
  auto result = db_->Read([](Tx& tx) -> Result<void> {
    auto amount = [](const Row& row) { return row.Int(0); };
    CLOZIT_ASSIGN_OR_RETURN(auto first, FindOne(tx, "SELECT amount FROM items ORDER BY id DESC", {}, amount));
    EXPECT_EQ(first, std::optional<int64_t>(7));
    CLOZIT_ASSIGN_OR_RETURN(auto none,
                            FindOne(tx, "SELECT amount FROM items WHERE id = $1", {std::string("nobody")}, amount));
    EXPECT_EQ(none, std::nullopt);
    return Ok();
  });
  EXPECT_TRUE(result.ok()) << result.error().message;
  auto broken = db_->Read([](Tx& tx) -> Result<void> {
    CLOZIT_TRY(FindOne(tx, "SELECT amount FROM no_such_table", {}, [](const Row& row) { return row.Int(0); }));
    return Ok();
  });
  EXPECT_FALSE(broken.ok()) << "a failed statement is an error, not a miss";
}

// 8 threads x 200 writes through the batching writer (or the pool): every
// successful write lands, and the writes that fail take only themselves down.
TEST_P(DatabaseTest, ConcurrentWritesLandAndFailuresRollBackOnlyThemselves) {
  Script(kItemsTable);
  Script("INSERT INTO items (id) VALUES ('seed')");
  auto options = Options();
  options.write_batch_max = 16;  // several batches even when all threads queue at once
  db_.reset();
  db_ = OpenDatabase(options);
  ASSERT_NE(db_, nullptr);

  constexpr int kThreads = 8;
  constexpr int kWritesPerThread = 200;
  std::atomic<int> unexpected{0};
  std::vector<std::thread> threads;
  for (int thread = 0; thread < kThreads; ++thread) {
    threads.emplace_back([&, thread] {
      for (int write = 0; write < kWritesPerThread; ++write) {
        std::string id = std::to_string(thread) + "_" + std::to_string(write);
        bool fails_by_choice = write % 10 == 9;
        bool fails_on_duplicate = write % 25 == 0;
        auto result = db_->Write([&](Tx& tx) -> Result<void> {
          CLOZIT_TRY(InsertItem(tx, id, int64_t{thread}));
          if (fails_on_duplicate) CLOZIT_TRY(InsertItem(tx, "seed"));
          if (fails_by_choice) return Error::Make(ErrorCode::kConflict, "refused");
          return Ok();
        });
        ErrorCode expected = fails_on_duplicate ? ErrorCode::kAlreadyExists : ErrorCode::kConflict;
        bool as_expected =
            (fails_by_choice || fails_on_duplicate) ? (!result.ok() && result.error().code == expected) : result.ok();
        if (!as_expected) ++unexpected;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(unexpected.load(), 0);

  constexpr int kFailingPerThread = 20 + 8;  // write % 10 == 9, write % 25 == 0 (disjoint)
  EXPECT_EQ(Count("items"), 1 + kThreads * (kWritesPerThread - kFailingPerThread));
  auto failed = db_->Query("SELECT count(*) FROM items WHERE id IN ($1, $2, $3, $4)",
                           {std::string("0_9"), std::string("7_199"), std::string("3_0"), std::string("5_175")});
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(failed->front().Int(0), 0);
  auto landed =
      db_->Query("SELECT count(*) FROM items WHERE id IN ($1, $2)", {std::string("0_1"), std::string("7_198")});
  ASSERT_TRUE(landed.ok());
  EXPECT_EQ(landed->front().Int(0), 2);
}

using WorkFunction = std::function<Result<void>(Tx&)>;

// Runs `works` from threads of their own while a first write holds the writer, so that they queue up in
// this order and form the next batch together; returns their results, in order.
std::vector<Result<void>> WriteAsOneBatch(Database& db, const std::vector<WorkFunction>& works) {
  Signal first_running;
  Signal queued;
  std::thread first([&] {
    auto held = db.Write([&](Tx&) -> Result<void> {
      first_running.Set();
      queued.WaitFor(std::chrono::seconds(30));
      return Ok();
    });
    EXPECT_TRUE(held.ok());
  });
  EXPECT_TRUE(first_running.WaitFor(std::chrono::seconds(30)));
  std::vector<Result<void>> results(works.size());
  std::vector<std::thread> writers;
  for (size_t index = 0; index < works.size(); ++index) {
    writers.emplace_back([&, index] { results[index] = db.Write(works[index]); });
    // Each reaches the queue before the next starts.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  queued.Set();
  for (auto& writer : writers) writer.join();
  first.join();
  return results;
}

// A batch runs without savepoints until a write fails after running statements; then it is rolled back and
// run again with a savepoint per write (storage/detail/write_queue.hpp). Whatever path it took, each write
// commits or not exactly as on its own, and the AfterCommit of a committed write runs once.
TEST_P(DatabaseTest, ABatchRunAgainAfterAFailedWriteCommitsTheOthersOnceAndRunsTheirAfterCommitOnce) {
  Script(kItemsTable);
  Script("INSERT INTO items (id) VALUES ('seed'), ('seed2')");
  constexpr int kWrites = 7;
  std::atomic<int> runs[kWrites] = {};
  std::atomic<int> after_commits[kWrites] = {};
  std::atomic<int> careful_runs[kWrites] = {};
  std::vector<WorkFunction> works;
  for (int index = 0; index < kWrites; ++index) {
    works.push_back([&, index](Tx& tx) -> Result<void> {
      ++runs[index];
      if (tx.careful()) ++careful_runs[index];
      tx.AfterCommit([&, index] { ++after_commits[index]; });
      if (index == 5) return Error::Make(ErrorCode::kConflict, "refused before any statement");
      CLOZIT_TRY(InsertItem(tx, "w" + std::to_string(index)));
      if (index == 3) CLOZIT_TRY(InsertItem(tx, "seed"));  // fails after its first INSERT ran
      if (index == 6) {
        // Fails when sent: on PostgreSQL, optimistic, with the next write's first statement or at the end.
        CLOZIT_TRY(tx.ExecLater("INSERT INTO items (id) VALUES ('seed2')", {}, 1));
      }
      return Ok();
    });
  }
  auto results = WriteAsOneBatch(*db_, works);

  for (int index = 0; index < kWrites; ++index) {
    SCOPED_TRACE(index);
    if (index == 3 || index == 6) {
      ASSERT_FALSE(results[index].ok());
      EXPECT_EQ(results[index].error().code, ErrorCode::kAlreadyExists);
    } else if (index == 5) {
      ASSERT_FALSE(results[index].ok());
      EXPECT_EQ(results[index].error().code, ErrorCode::kConflict);
    } else {
      EXPECT_TRUE(results[index].ok());
    }
    EXPECT_EQ(after_commits[index].load(), results[index].ok() ? 1 : 0);
    // Once in the careful pass, and in the first (rolled back) pass if it came before the failing write.
    EXPECT_GE(runs[index].load(), 1);
    EXPECT_LE(runs[index].load(), 2);
    EXPECT_EQ(careful_runs[index].load(), 1);
  }
  EXPECT_EQ(Count("items"), 2 + kWrites - 3);
  auto failed = db_->Query("SELECT count(*) FROM items WHERE id IN ('w3', 'w6')");
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(failed->front().Int(0), 0);
}

// Tx::AddLater: optimistic, a batch's additions to one row are summed and sent once before COMMIT; a write that
// fails drops its own; an addition whose row is missing fails the batch, which runs again carefully, where
// only that write fails.
constexpr std::string_view kAddToCounter = "UPDATE counters SET a = a + $2, b = b + $3 WHERE id = $1";
constexpr std::string_view kCounters =
    "CREATE TABLE counters (id TEXT PRIMARY KEY, a BIGINT NOT NULL, b BIGINT NOT NULL); "
    "INSERT INTO counters (id, a, b) VALUES ('x', 0, 0), ('y', 0, 0)";

Params CounterParams(const std::string& key, const std::vector<int64_t>& deltas) { return {key, deltas[0], deltas[1]}; }

// `writes` works in one batch, each running `body(tx, index)`; counts the careful runs.
std::vector<Result<void>> AddInOneBatch(Database& db, int writes, std::atomic<int>& careful_runs,
                                        const std::function<Result<void>(Tx&, int)>& body) {
  std::vector<WorkFunction> works;
  for (int index = 0; index < writes; ++index) {
    works.push_back([&, index](Tx& tx) -> Result<void> {
      if (tx.careful()) ++careful_runs;
      return body(tx, index);
    });
  }
  return WriteAsOneBatch(db, works);
}

TEST_P(DatabaseTest, AdditionsOfABatchAreSummedPerRowAndAFailedWriteDropsItsOwn) {
  Script(std::string(kCounters));
  std::atomic<int> careful_runs{0};
  auto results = AddInOneBatch(*db_, 6, careful_runs, [](Tx& tx, int index) -> Result<void> {
    CLOZIT_TRY(tx.AddLater(kAddToCounter, "x", {1, 10}, &CounterParams));
    CLOZIT_TRY(tx.AddLater(kAddToCounter, "y", {index, 0}, &CounterParams));
    // Refused after its additions but before any statement: nothing to roll back, its additions go.
    if (index == 2) return Error::Make(ErrorCode::kConflict, "refused");
    return Ok();
  });
  for (int index = 0; index < 6; ++index) EXPECT_EQ(results[index].ok(), index != 2) << index;
  EXPECT_EQ(careful_runs.load(), 0);  // nothing failed after running statements: no careful pass
  auto rows = db_->Query("SELECT id, a, b FROM counters ORDER BY id");
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].Int(1), 5);
  EXPECT_EQ((*rows)[0].Int(2), 50);
  EXPECT_EQ((*rows)[1].Int(1), 0 + 1 + 3 + 4 + 5);
}

TEST_P(DatabaseTest, AnAdditionToAMissingRowFailsOnlyItsWriteAfterACarefulPass) {
  Script(std::string(kCounters));
  std::atomic<int> careful_runs{0};
  auto results = AddInOneBatch(*db_, 5, careful_runs, [](Tx& tx, int index) -> Result<void> {
    CLOZIT_TRY(tx.AddLater(kAddToCounter, "x", {1, 1}, &CounterParams));
    if (index == 3) CLOZIT_TRY(tx.AddLater(kAddToCounter, "missing", {1, 1}, &CounterParams));
    return Ok();
  });
  for (int index = 0; index < 5; ++index) EXPECT_EQ(results[index].ok(), index != 3) << index;
  EXPECT_EQ(careful_runs.load(), 5);
  auto rows = db_->Query("SELECT a, b FROM counters WHERE id = 'x'");
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  EXPECT_EQ(rows->front().Int(0), 4);
  EXPECT_EQ(rows->front().Int(1), 4);
}

// Tx::careful: an optimistic write may fail only because a shortcut's assumption did not hold; it runs
// again carefully, also alone in its batch, and that run's outcome is the write's.
TEST_P(DatabaseTest, AnOptimisticWriteThatFailsAfterStatementsRunsAgainCarefully) {
  Script(kItemsTable);
  int runs = 0, careful_runs = 0;
  auto result = db_->Write([&](Tx& tx) -> Result<void> {
    ++runs;
    CLOZIT_TRY(InsertItem(tx, "x"));
    if (!tx.careful()) return Error::Make(ErrorCode::kConflict, "the optimistic assumption did not hold");
    ++careful_runs;
    return Ok();
  });
  EXPECT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(careful_runs, 1);
  EXPECT_EQ(Count("items"), 1);
}

TEST_P(DatabaseTest, CarefulWritesRunEveryWriteCarefullyOnce) {
  auto options = Options();
  options.careful_writes = true;
  db_.reset();
  db_ = OpenDatabase(options);
  ASSERT_NE(db_, nullptr);
  Script(kItemsTable);
  for (int write = 0; write < 3; ++write) {
    int runs = 0;
    bool careful = false;
    auto result = db_->Write([&](Tx& tx) -> Result<void> {
      ++runs;
      careful = tx.careful();
      CLOZIT_TRY(InsertItem(tx, "w" + std::to_string(write)));
      return Error::Make(ErrorCode::kConflict, "refused after a statement");
    });
    EXPECT_FALSE(result.ok());
    EXPECT_EQ(runs, 1);
    EXPECT_TRUE(careful);
  }
  EXPECT_EQ(Count("items"), 0);
}

// A write that fails before it ran any statement changed nothing: the batch commits the others at once.
TEST_P(DatabaseTest, AWriteThatFailsBeforeAnyStatementDoesNotMakeItsBatchRunAgain) {
  Script(kItemsTable);
  constexpr int kWrites = 4;
  std::atomic<int> runs[kWrites] = {};
  std::vector<WorkFunction> works;
  std::atomic<int> careful_runs{0};
  for (int index = 0; index < kWrites; ++index) {
    works.push_back([&, index](Tx& tx) -> Result<void> {
      ++runs[index];
      if (tx.careful()) ++careful_runs;
      if (index == 1) return Error::Make(ErrorCode::kConflict, "refused before any statement");
      return InsertItem(tx, "w" + std::to_string(index));
    });
  }
  auto results = WriteAsOneBatch(*db_, works);
  for (int index = 0; index < kWrites; ++index) {
    SCOPED_TRACE(index);
    EXPECT_EQ(results[index].ok(), index != 1);
    EXPECT_EQ(runs[index].load(), 1);
  }
  EXPECT_EQ(careful_runs.load(), 0);
  EXPECT_EQ(Count("items"), kWrites - 1);
}

Result<void> HeldBackInsert(Tx& tx, const std::string& id) {
  return tx.ExecLater("INSERT INTO items (id) VALUES ($1)", {id}, 1);
}

WorkFunction HeldBack(std::string id) {
  return [id](Tx& tx) { return HeldBackInsert(tx, id); };
}

WorkFunction Inserted(std::string id) {
  return [id](Tx& tx) { return InsertItem(tx, id); };
}

Result<void> Refused(Tx&) { return Error::Make(ErrorCode::kConflict, "refused before any statement"); }

// What a write holds back (ExecLater) may be sent with a later write's statements, or just before COMMIT
// (PostgreSQL, optimistic): it commits exactly once with its own write, also past a write that fails before
// any statement; and failing just before COMMIT, it fails only its own write.
TEST_P(DatabaseTest, StatementsHeldBackInABatchCommitOnceWithTheirWrite) {
  Script(kItemsTable);
  Script("INSERT INTO items (id) VALUES ('seed')");
  auto results = WriteAsOneBatch(*db_, {HeldBack("a0"), Refused, HeldBack("a2"), Inserted("a3"), HeldBack("a4")});
  for (size_t index = 0; index < results.size(); ++index) EXPECT_EQ(results[index].ok(), index != 1) << index;
  EXPECT_EQ(Count("items"), 1 + 4);

  results = WriteAsOneBatch(*db_, {Inserted("c0"), HeldBack("seed")});
  ASSERT_EQ(results.size(), 2u);
  EXPECT_TRUE(results[0].ok());
  ASSERT_FALSE(results[1].ok());
  EXPECT_EQ(results[1].error().code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(Count("items"), 1 + 4 + 1);
}

// A held-back duplicate fails its own write, wherever it is sent; the others commit once.
TEST_P(DatabaseTest, AHeldBackStatementThatFailsFailsOnlyItsOwnWrite) {
  Script(kItemsTable);
  Script("INSERT INTO items (id) VALUES ('seed')");
  auto results = WriteAsOneBatch(*db_, {HeldBack("b0"), HeldBack("seed"), Inserted("b2"), Refused, HeldBack("b4")});
  ASSERT_EQ(results.size(), 5u);
  EXPECT_TRUE(results[0].ok());
  ASSERT_FALSE(results[1].ok());
  EXPECT_EQ(results[1].error().code, ErrorCode::kAlreadyExists);
  EXPECT_TRUE(results[2].ok());
  EXPECT_FALSE(results[3].ok());
  EXPECT_TRUE(results[4].ok());
  auto rows = db_->Query("SELECT count(*) FROM items WHERE id IN ('b0', 'b2', 'b4')");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->front().Int(0), 3);
  EXPECT_EQ(Count("items"), 1 + 3);
}

// Read-modify-write of one hot row from many threads: no update may be lost. One
// node batches its writes (one writer per Database), so none of them may fail
// either; a second node's writes collide on PostgreSQL and are retried as whole
// batches — some may give up as unavailable, none may be lost.
TEST_P(DatabaseTest, ConcurrentReadModifyWritesLoseNoUpdates) {
  Script("CREATE TABLE counters (id TEXT PRIMARY KEY, value BIGINT NOT NULL)");
  Script("INSERT INTO counters (id, value) VALUES ('hits', 0)");
  auto second_node = OpenDatabase();
  ASSERT_NE(second_node, nullptr);
  constexpr int kThreads = 32;
  constexpr int kWritesPerThread = 25;
  std::atomic<int> succeeded{0};
  std::atomic<int> gave_up_first{0};
  std::atomic<int> gave_up_second{0};
  std::vector<std::thread> threads;
  for (int thread = 0; thread < kThreads; ++thread) {
    // Three quarters of the threads write through this node, the rest through the second.
    const bool second = thread % 4 == 3;
    Database& db = second ? *second_node : *db_;
    threads.emplace_back([&, second] {
      for (int write = 0; write < kWritesPerThread; ++write) {
        auto result = db.Write([](Tx& tx) -> Result<void> {
          CLOZIT_ASSIGN_OR_RETURN(Row row, tx.QueryOne("SELECT value FROM counters WHERE id = 'hits'"));
          CLOZIT_TRY(tx.Exec("UPDATE counters SET value = $1 WHERE id = 'hits'", {row.Int(0) + 1}));
          return Ok();
        });
        if (result.ok()) {
          ++succeeded;
        } else {
          EXPECT_EQ(result.error().code, ErrorCode::kUnavailable) << result.error().message;
          ++(second ? gave_up_second : gave_up_first);
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  auto value = db_->Query("SELECT value FROM counters");
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(value->front().Int(0), succeeded.load()) << "an update was lost";
  RecordProperty("committed", succeeded.load());
  RecordProperty("gave_up_first_node", gave_up_first.load());
  RecordProperty("gave_up_second_node", gave_up_second.load());
  EXPECT_GT(succeeded.load(), kThreads * kWritesPerThread / 2);
  if (!postgres()) {
    EXPECT_EQ(gave_up_first.load() + gave_up_second.load(), 0);
  }
}

// The same hot row from one node only: every write commits, on both backends.
TEST_P(DatabaseTest, OneNodesConcurrentWritesToAHotRowAllCommit) {
  Script("CREATE TABLE counters (id TEXT PRIMARY KEY, value BIGINT NOT NULL)");
  Script("INSERT INTO counters (id, value) VALUES ('hits', 0)");
  constexpr int kThreads = 32;
  constexpr int kWritesPerThread = 25;
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int thread = 0; thread < kThreads; ++thread) {
    threads.emplace_back([&] {
      for (int write = 0; write < kWritesPerThread; ++write) {
        auto result = db_->Write([](Tx& tx) -> Result<void> {
          CLOZIT_ASSIGN_OR_RETURN(Row row, tx.QueryOne("SELECT value FROM counters WHERE id = 'hits'"));
          CLOZIT_TRY(tx.Exec("UPDATE counters SET value = $1 WHERE id = 'hits'", {row.Int(0) + 1}));
          return Ok();
        });
        if (!result.ok()) {
          ADD_FAILURE() << result.error().message;
          ++failed;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(Count("counters"), 1);
  auto value = db_->Query("SELECT value FROM counters");
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(value->front().Int(0), kThreads * kWritesPerThread);
}

TEST_P(DatabaseTest, ReadDoesNotWaitForAnOpenWriteAndSeesOnlyCommittedRows) {
  Script(kItemsTable);
  Signal inside_write;
  Signal read_done;
  std::thread writer([&] {
    auto result = db_->Write([&](Tx& tx) -> Result<void> {
      CLOZIT_TRY(InsertItem(tx, "pending"));
      inside_write.Set();
      read_done.WaitFor(std::chrono::seconds(20));
      return Ok();
    });
    EXPECT_TRUE(result.ok()) << result.error().message;
  });
  ASSERT_TRUE(inside_write.WaitFor(std::chrono::seconds(20)));
  EXPECT_EQ(Count("items"), 0) << "the uncommitted row must not be visible";
  read_done.Set();
  writer.join();
  EXPECT_EQ(Count("items"), 1);
}

// Each write adds two rows, so every consistent snapshot holds an even count.
TEST_P(DatabaseTest, ReadsSeeConsistentSnapshotsWhileWritesRun) {
  Script(kItemsTable);
  std::atomic<bool> writing{true};
  std::thread writer([&] {
    for (int write = 0; write < 150; ++write) {
      auto result = db_->Write([&](Tx& tx) -> Result<void> {
        CLOZIT_TRY(InsertItem(tx, "a" + std::to_string(write)));
        CLOZIT_TRY(InsertItem(tx, "b" + std::to_string(write)));
        return Ok();
      });
      EXPECT_TRUE(result.ok()) << result.error().message;
    }
    writing = false;
  });
  std::atomic<int> inconsistent{0};
  std::atomic<int> reads{0};
  std::vector<std::thread> readers;
  for (int reader = 0; reader < 3; ++reader) {
    readers.emplace_back([&] {
      int64_t last = 0;
      while (writing) {
        auto result = db_->Read([&](Tx& tx) -> Result<void> {
          CLOZIT_ASSIGN_OR_RETURN(Row first, tx.QueryOne("SELECT count(*) FROM items"));
          std::this_thread::yield();
          CLOZIT_ASSIGN_OR_RETURN(Row second, tx.QueryOne("SELECT count(*) FROM items"));
          int64_t count = first.Int(0);
          if (count != second.Int(0) || count % 2 != 0 || count < last) ++inconsistent;
          last = count;
          return Ok();
        });
        EXPECT_TRUE(result.ok()) << result.error().message;
        ++reads;
      }
    });
  }
  writer.join();
  for (auto& reader : readers) reader.join();
  EXPECT_EQ(inconsistent.load(), 0);
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(Count("items"), 300);
}

TEST_P(DatabaseTest, ReadTransactionCannotWrite) {
  Script(kItemsTable);
  auto result = db_->Read([](Tx& tx) -> Result<void> {
    CLOZIT_TRY(InsertItem(tx, "sneaky"));
    return Ok();
  });
  EXPECT_FALSE(result.ok());
  auto returning = db_->Query("INSERT INTO items (id) VALUES ('sneaky') RETURNING id");
  EXPECT_FALSE(returning.ok());
  auto ddl = db_->Read([](Tx& tx) { return tx.ExecScript("DROP TABLE items"); });
  EXPECT_FALSE(ddl.ok());
  EXPECT_EQ(Count("items"), 0);
}

TEST_P(DatabaseTest, BadSqlIsAnErrorNotACrash) {
  Script(kItemsTable);
  auto expect_error = [](const auto& result, const char* what) {
    EXPECT_FALSE(result.ok()) << what;
    if (!result.ok()) {
      EXPECT_EQ(result.error().code, ErrorCode::kInternal) << what;
      EXPECT_FALSE(result.error().message.empty()) << what;
    }
  };
  expect_error(db_->Query("SELEC 1"), "syntax error");
  expect_error(db_->Query("SELECT * FROM missing_table"), "missing table");
  expect_error(db_->Query(""), "empty statement");
  expect_error(db_->Query("SELECT 1; SELECT 2"), "two statements");
  expect_error(db_->Query("SELECT id FROM items WHERE id = $1"), "missing parameter");
  expect_error(db_->Query("SELECT id FROM items WHERE id = $1", {std::string("a"), std::string("b")}),
               "extra parameter");
  expect_error(db_->Query("SELECT id FROM items WHERE id = ?", {std::string("a")}), "foreign placeholder");
  auto unknown_column = [](Tx& tx) -> Result<void> {
    CLOZIT_TRY(tx.Exec("INSERT INTO items (nope) VALUES ($1)", {int64_t{1}}));
    return Ok();
  };
  expect_error(db_->Write(unknown_column), "unknown column");
  auto bad_script = [](Tx& tx) { return tx.ExecScript("CREATE TABLE x (a BIGINT); CREATE TABLE"); };
  expect_error(db_->Write(bad_script), "bad script");

  auto nul = db_->Query("SELECT $1", {std::string("a\0b", 3)});
  ASSERT_FALSE(nul.ok());
  EXPECT_EQ(nul.error().code, ErrorCode::kInvalidArgument);

  // And the database still works afterwards.
  auto after = db_->Write([](Tx& tx) { return InsertItem(tx, "fine"); });
  EXPECT_TRUE(after.ok()) << after.error().message;
  EXPECT_EQ(Count("items"), 1);
  auto tables = db_->Query(postgres() ? "SELECT count(*) FROM pg_tables WHERE tablename = 'x'"
                                      : "SELECT count(*) FROM sqlite_master WHERE name = 'x'");
  ASSERT_TRUE(tables.ok());
  EXPECT_EQ(tables->front().Int(0), 0) << "the failed script's first statement must be rolled back";
}

TEST_P(DatabaseTest, ExceptionInWorkPropagatesAndLeavesTheDatabaseUsable) {
  Script(kItemsTable);
  auto throwing_write = [](Tx& tx) -> Result<void> {
    (void)InsertItem(tx, "thrown");
    throw std::runtime_error("broken invariant");
  };
  auto throwing_read = [](Tx&) -> Result<void> { throw std::logic_error("bug"); };
  EXPECT_THROW((void)db_->Write(throwing_write), std::runtime_error);
  EXPECT_THROW((void)db_->Read(throwing_read), std::logic_error);
  auto after = db_->Write([](Tx& tx) { return InsertItem(tx, "fine"); });
  EXPECT_TRUE(after.ok()) << after.error().message;
  auto rows = db_->Query("SELECT id FROM items");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(rows->front().Text(0), "fine");
}

TEST_P(DatabaseTest, NestedCallsOnTheSameDatabaseAreRefused) {
  Script(kItemsTable);
  Result<void> nested_write;
  Result<void> nested_read;
  auto outer = db_->Write([&](Tx& tx) -> Result<void> {
    CLOZIT_TRY(InsertItem(tx, "outer"));
    nested_write = db_->Write([](Tx& inner) { return InsertItem(inner, "inner"); });
    nested_read = db_->Read([](Tx&) { return Ok(); });
    return Ok();
  });
  EXPECT_TRUE(outer.ok()) << outer.error().message;
  ASSERT_FALSE(nested_write.ok());
  EXPECT_EQ(nested_write.error().code, ErrorCode::kInternal);
  EXPECT_FALSE(nested_read.ok());
  EXPECT_EQ(Count("items"), 1);
}

TEST_P(DatabaseTest, PingSucceeds) {
  auto ping = db_->Ping();
  EXPECT_TRUE(ping.ok()) << ping.error().message;
}

TEST_P(DatabaseTest, DataSurvivesReopening) {
  Script(kItemsTable);
  auto written = db_->Write([](Tx& tx) { return InsertItem(tx, "kept", int64_t{7}); });
  ASSERT_TRUE(written.ok());
  db_.reset();
  db_ = OpenDatabase();
  ASSERT_NE(db_, nullptr);
  auto rows = db_->Query("SELECT amount FROM items WHERE id = $1", {std::string("kept")});
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(rows->front().Int(0), 7);
}

TEST_P(DatabaseTest, SqliteCheckpointsAndStartsTheWalOverWhileOpen) {
  if (postgres()) GTEST_SKIP() << "PostgreSQL checkpoints on its own";
  db_.reset();
  auto reopened = Open({.url = url_, .sqlite_checkpoint_pages = 1'000});
  ASSERT_TRUE(reopened.ok()) << reopened.error().message;
  db_ = std::move(reopened).value();
  Script("CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB)");
  // SQLite implements this pragma as a WAL hook of its own: a work that sets it (the importer once did) must
  // not leave the database without checkpoints.
  Script("PRAGMA wal_autocheckpoint = 0");
  const std::filesystem::path file = url_.substr(std::string("sqlite:").size());
  const std::filesystem::path wal = file.string() + "-wal";
  auto write_chunk = [&] {  // ≈ 145 WAL pages in one write: 128 rows of 4 KiB, each with an overflow page
    auto written = db_->Write([](Tx& tx) -> Result<void> {
      for (int row = 0; row < 128; ++row) CLOZIT_TRY(tx.Exec("INSERT INTO blobs (data) VALUES (randomblob(4096))"));
      return Ok();
    });
    ASSERT_TRUE(written.ok()) << written.error().message;
  };
  // ≈ 1,750 pages: past the 1,000 at which the checkpointer starts, short of the 3,000 at which the writer
  // would checkpoint everything itself.
  constexpr int kWrites = 12;
  constexpr uintmax_t kWritten = uintmax_t{kWrites} * 128 * 4096;
  for (int i = 0; i < kWrites; ++i) write_chunk();
  // The checkpointer copies the WAL into the database while it stays open (nothing else would before closing).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::filesystem::file_size(file) < kWritten / 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GE(std::filesystem::file_size(file), kWritten / 2);
  for (uintmax_t last = 0; std::filesystem::file_size(file) != last && std::chrono::steady_clock::now() < deadline;) {
    last = std::filesystem::file_size(file);  // until the checkpointer has finished its passes
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // Then the writer copies the tail at its next commit and starts the WAL over at the one after: a write
  // stops making the file longer — long before the 3,000 pages at which it would checkpoint on its own.
  bool started_over = false;
  int writes = 0;
  while (!started_over && writes < 3) {
    uintmax_t before = std::filesystem::file_size(wal);
    write_chunk();
    ++writes;
    started_over = std::filesystem::file_size(wal) <= before;
  }
  EXPECT_TRUE(started_over) << "the WAL kept growing: " << std::filesystem::file_size(wal) << " bytes";
  auto rows = db_->Query("SELECT count(*) FROM blobs");
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  EXPECT_EQ(rows->front().Int(0), (kWrites + writes) * 128);
}

TEST_P(DatabaseTest, OpenRejectsMalformedUrlsAndOptions) {
  auto expect_invalid = [](OpenOptions options, const char* what) {
    auto opened = Open(options);
    ASSERT_FALSE(opened.ok()) << what;
    EXPECT_EQ(opened.error().code, ErrorCode::kInvalidArgument) << what << ": " << opened.error().message;
    EXPECT_EQ(opened.error().message.find("hunter2"), std::string::npos) << "the URL's password leaked";
  };
  expect_invalid({.url = ""}, "empty");
  expect_invalid({.url = "mysql://root:hunter2@localhost/db"}, "unknown scheme");
  OpenOptions no_pool = Options();
  no_pool.pool_size = 0;
  expect_invalid(no_pool, "pool_size 0");
  OpenOptions no_batch = Options();
  no_batch.write_batch_max = 0;
  expect_invalid(no_batch, "write_batch_max 0");
  OpenOptions no_checkpoints = Options();
  no_checkpoints.sqlite_checkpoint_pages = 0;
  expect_invalid(no_checkpoints, "sqlite_checkpoint_pages 0");
  if (postgres()) {
    expect_invalid({.url = "postgresql://postgres:hunter2@127.0.0.1/db?no_such_option=1"}, "unknown option");
    expect_invalid({.url = "postgresql://postgres:hunter2@[::1/db"}, "broken host");
  } else {
    expect_invalid({.url = "sqlite:"}, "no path");
    expect_invalid({.url = "sqlite::memory:"}, "memory database");
  }
}

TEST_P(DatabaseTest, UnreachableDatabaseFailsQuicklyAsUnavailable) {
  OpenOptions options = Options();
  if (postgres()) {
    options.url = "postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=2";
  } else {
    // A regular file where a directory would have to be.
    std::filesystem::path blocker = directory_ / "blocker";
    std::ofstream(blocker) << "not a directory";
    options.url = "sqlite:" + (blocker / "sub" / "clozit.db").string();
  }
  auto started = std::chrono::steady_clock::now();
  auto opened = Open(options);
  auto elapsed = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().code, ErrorCode::kUnavailable) << opened.error().message;
  EXPECT_LT(elapsed, std::chrono::seconds(10));
}

TEST_P(DatabaseTest, ReconnectsAfterTheServerDropsPooledConnections) {
  if (!postgres()) GTEST_SKIP() << "SQLite has no server connection to lose";
  Script(kItemsTable);
  std::string error =
      AdminExec(server_url_, "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = '" +
                                 database_name_ + "' AND pid <> pg_backend_pid()");
  ASSERT_EQ(error, "");
  // The pooled connection died while idle: BEGIN notices, reconnects, carries on.
  auto written = db_->Write([](Tx& tx) { return InsertItem(tx, "after"); });
  EXPECT_TRUE(written.ok()) << written.error().message;
  auto ping = db_->Ping();
  EXPECT_TRUE(ping.ok()) << ping.error().message;
  EXPECT_EQ(Count("items"), 1);
}

// Not a backend test: how a URL becomes libpq parameters, no server needed.
TEST(PostgresConnectionUrl, AddsThePasswordOnlyWhenTheUrlHasNone) {
  auto without = postgres::ParseConnectionUrl("postgresql://app@db.internal:5433/clozit", "from-env");
  ASSERT_TRUE(without.ok()) << without.error().message;
  EXPECT_EQ(without->Get("password"), "from-env");
  EXPECT_EQ(without->Get("host"), "db.internal");
  EXPECT_EQ(without->Get("port"), "5433");
  EXPECT_EQ(without->Get("dbname"), "clozit");
  EXPECT_EQ(without->Get("connect_timeout"), "10");

  auto with = postgres::ParseConnectionUrl("postgres://app:in-url@db/clozit?connect_timeout=3", "from-env");
  ASSERT_TRUE(with.ok());
  EXPECT_EQ(with->Get("password"), "in-url");
  EXPECT_EQ(with->Get("connect_timeout"), "3");

  auto none = postgres::ParseConnectionUrl("postgresql://app@db/clozit", "");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->Get("password"), "");
}

}  // namespace
}  // namespace clozit::storage::test
