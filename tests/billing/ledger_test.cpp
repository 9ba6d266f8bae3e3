// The ledger's transfer rules, one test per rule, on both backends.
#include "billing/ledger.hpp"

#include <chrono>

#include "billing/detail/store.hpp"

#include "billing_fixture.hpp"

namespace clozit::billing::test {
namespace {

using namespace std::chrono_literals;

class LedgerTest : public BillingTest {
 protected:
  void SetUp() override {
    BillingTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    // A funding account without limits and a customer account that may not overdraw.
    OpenPlain("bank");
    OpenPlain("customer", AccountFlags::kDebitsMustNotExceedCredits);
    OpenPlain("shop");
    ASSERT_TRUE(ledger_->CreateTransfer(Single("fund", "bank", "customer", Cr(100))).ok());
  }

  static TransferSpec Single(std::string id, std::string debit, std::string credit, Credits amount) {
    TransferSpec spec;
    spec.id = std::move(id);
    spec.debit_account_id = std::move(debit);
    spec.credit_account_id = std::move(credit);
    spec.amount = amount;
    return spec;
  }

  TransferSpec Pending(std::string id, Credits amount, std::chrono::milliseconds ttl = 1min) {
    TransferSpec spec = Single(std::move(id), "customer", "shop", amount);
    spec.kind = TransferKind::kPending;
    spec.expires_at = clock_.Now() + ttl;
    return spec;
  }

  static TransferSpec Resolve(std::string id, TransferKind kind, std::string pending_id, Credits amount = {}) {
    TransferSpec spec;
    spec.id = std::move(id);
    spec.kind = kind;
    spec.pending_id = std::move(pending_id);
    spec.amount = amount;
    return spec;
  }
};

TEST_P(LedgerTest, SingleTransferMovesBothBalances) {
  auto moved = ledger_->CreateTransfer(Single("t1", "customer", "shop", Cr(30)));
  ASSERT_TRUE(moved.ok()) << moved.error().message;
  EXPECT_EQ(moved->kind, TransferKind::kSingle);
  EXPECT_EQ(AccountNow("customer").debits_posted, Cr(30));
  EXPECT_EQ(AccountNow("customer").Available(), Cr(70));
  EXPECT_EQ(AccountNow("shop").credits_posted, Cr(30));
  ExpectClean();
}

TEST_P(LedgerTest, RefusesOverspendCountingPendingDebits) {
  ASSERT_TRUE(ledger_->CreateTransfer(Pending("hold", Cr(60))).ok());
  EXPECT_EQ(AccountNow("customer").Available(), Cr(40));
  auto over = ledger_->CreateTransfer(Single("t1", "customer", "shop", Cr(41)));
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, ErrorCode::kInsufficientCredits);
  auto second_hold = ledger_->CreateTransfer(Pending("hold2", Cr(41)));
  ASSERT_FALSE(second_hold.ok());
  EXPECT_EQ(second_hold.error().code, ErrorCode::kInsufficientCredits);
  EXPECT_TRUE(ledger_->CreateTransfer(Single("t2", "customer", "shop", Cr(40))).ok());
  EXPECT_EQ(AccountNow("customer").Available(), Cr(0));
  EXPECT_FALSE(ledger_->LookupTransfer("t1").ok());
  ExpectClean();
}

TEST_P(LedgerTest, ReplayWithSameFieldsReturnsTheOriginal) {
  auto first = ledger_->CreateTransfer(Single("t1", "customer", "shop", Cr(10)));
  ASSERT_TRUE(first.ok());
  clock_.Advance(5s);
  auto again = ledger_->CreateTransfer(Single("t1", "customer", "shop", Cr(10)));
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->created_at, first->created_at);
  EXPECT_EQ(AccountNow("customer").debits_posted, Cr(10));  // applied once
  ExpectClean();
}

TEST_P(LedgerTest, SameIdWithDifferentFieldsIsAlreadyExists) {
  ASSERT_TRUE(ledger_->CreateTransfer(Single("t1", "customer", "shop", Cr(10))).ok());
  auto changed = ledger_->CreateTransfer(Single("t1", "customer", "shop", Cr(11)));
  ASSERT_FALSE(changed.ok());
  EXPECT_EQ(changed.error().code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(changed.error().field, "amount");
  EXPECT_NE(changed.error().message.find("stored 10, requested 11"), std::string::npos) << changed.error().message;
  auto other_account = ledger_->CreateTransfer(Single("t1", "bank", "shop", Cr(10)));
  ASSERT_FALSE(other_account.ok());
  EXPECT_EQ(other_account.error().code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(other_account.error().field, "debit_account_id");
  EXPECT_EQ(AccountNow("customer").debits_posted, Cr(10));
}

TEST_P(LedgerTest, PostForLessThanPendingReturnsTheRest) {
  ASSERT_TRUE(ledger_->CreateTransfer(Pending("hold", Cr(50))).ok());
  auto posted = ledger_->CreateTransfer(Resolve("post", TransferKind::kPostPending, "hold", Cr(20)));
  ASSERT_TRUE(posted.ok()) << posted.error().message;
  EXPECT_EQ(posted->debit_account_id, "customer");
  Account customer = AccountNow("customer");
  EXPECT_EQ(customer.debits_pending, Cr(0));
  EXPECT_EQ(customer.debits_posted, Cr(20));
  EXPECT_EQ(customer.Available(), Cr(80));
  EXPECT_EQ(AccountNow("shop").credits_posted, Cr(20));
  auto status = ledger_->LookupPending("hold");
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->state, PendingState::kPosted);
  EXPECT_EQ(status->resolved_by, "post");
  ExpectClean();
}

TEST_P(LedgerTest, PostAboveThePendingAmountIsRefused) {
  ASSERT_TRUE(ledger_->CreateTransfer(Pending("hold", Cr(50))).ok());
  auto posted = ledger_->CreateTransfer(Resolve("post", TransferKind::kPostPending, "hold", Cr(51)));
  ASSERT_FALSE(posted.ok());
  EXPECT_EQ(posted.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(posted.error().field, "amount");
  EXPECT_EQ(AccountNow("customer").debits_pending, Cr(50));
  ExpectClean();
}

TEST_P(LedgerTest, APendingTransferResolvesOnlyOnce) {
  ASSERT_TRUE(ledger_->CreateTransfer(Pending("hold", Cr(50))).ok());
  ASSERT_TRUE(ledger_->CreateTransfer(Resolve("post", TransferKind::kPostPending, "hold", Cr(50))).ok());
  // Replaying the same post is a success; a second post or a void is a conflict.
  EXPECT_TRUE(ledger_->CreateTransfer(Resolve("post", TransferKind::kPostPending, "hold", Cr(50))).ok());
  auto again = ledger_->CreateTransfer(Resolve("post2", TransferKind::kPostPending, "hold", Cr(1)));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::kConflict);
  auto voided = ledger_->CreateTransfer(Resolve("void", TransferKind::kVoidPending, "hold"));
  ASSERT_FALSE(voided.ok());
  EXPECT_EQ(voided.error().code, ErrorCode::kConflict);
  EXPECT_EQ(AccountNow("customer").debits_posted, Cr(50));

  ASSERT_TRUE(ledger_->CreateTransfer(Pending("hold2", Cr(10))).ok());
  ASSERT_TRUE(ledger_->CreateTransfer(Resolve("void2", TransferKind::kVoidPending, "hold2")).ok());
  auto post_after_void = ledger_->CreateTransfer(Resolve("post3", TransferKind::kPostPending, "hold2", Cr(10)));
  ASSERT_FALSE(post_after_void.ok());
  EXPECT_EQ(post_after_void.error().code, ErrorCode::kConflict);
  ExpectClean();
}

TEST_P(LedgerTest, VoidReleasesTheWholeHold) {
  ASSERT_TRUE(ledger_->CreateTransfer(Pending("hold", Cr(70))).ok());
  EXPECT_EQ(AccountNow("customer").Available(), Cr(30));
  auto voided = ledger_->CreateTransfer(Resolve("void", TransferKind::kVoidPending, "hold"));
  ASSERT_TRUE(voided.ok()) << voided.error().message;
  EXPECT_EQ(voided->amount, Cr(70));
  EXPECT_EQ(AccountNow("customer").Available(), Cr(100));
  EXPECT_EQ(AccountNow("shop").credits_pending, Cr(0));
  ExpectClean();
}

TEST_P(LedgerTest, ExpirySweepReleasesLapsedHoldsOnce) {
  ASSERT_TRUE(ledger_->CreateTransfer(Pending("short", Cr(30), 1min)).ok());
  ASSERT_TRUE(ledger_->CreateTransfer(Pending("long", Cr(30), 10min)).ok());
  auto none = ledger_->ExpirePending(clock_.Now());
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  clock_.Advance(2min);
  // Past its expiry a hold cannot be posted or voided, even before the sweep.
  auto late = ledger_->CreateTransfer(Resolve("post", TransferKind::kPostPending, "short", Cr(1)));
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, ErrorCode::kConflict);
  auto early = ledger_->CreateTransfer(Resolve("long/expire", TransferKind::kExpirePending, "long"));
  ASSERT_FALSE(early.ok());
  EXPECT_EQ(early.error().code, ErrorCode::kConflict);

  auto expired = ledger_->ExpirePending(clock_.Now());
  ASSERT_TRUE(expired.ok()) << expired.error().message;
  ASSERT_EQ(expired->size(), 1u);
  EXPECT_EQ(expired->front().pending_id, "short");
  EXPECT_EQ(expired->front().kind, TransferKind::kExpirePending);
  EXPECT_EQ(AccountNow("customer").debits_pending, Cr(30));
  auto status = ledger_->LookupPending("short");
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->state, PendingState::kExpired);
  auto again = ledger_->ExpirePending(clock_.Now());
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty());
  ExpectClean();
}

TEST_P(LedgerTest, LinkedBatchSucceedsOrFailsTogether) {
  std::vector<TransferSpec> batch = {Single("a", "customer", "shop", Cr(40)), Pending("b", Cr(40)),
                                     Single("c", "customer", "shop", Cr(40))};
  auto failed = ledger_->CreateTransfers(batch);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, ErrorCode::kInsufficientCredits);
  EXPECT_NE(failed.error().message.find("transfer 2 (c)"), std::string::npos) << failed.error().message;
  EXPECT_FALSE(ledger_->LookupTransfer("a").ok());
  EXPECT_FALSE(ledger_->LookupTransfer("b").ok());
  EXPECT_EQ(AccountNow("customer").Available(), Cr(100));

  batch.back().amount = Cr(20);
  auto applied = ledger_->CreateTransfers(batch);
  ASSERT_TRUE(applied.ok()) << applied.error().message;
  EXPECT_EQ(applied->size(), 3u);
  EXPECT_EQ(AccountNow("customer").Available(), Cr(0));
  // Post part of one hold and open the next, together.
  auto rolled =
      ledger_->CreateTransfers({Resolve("b/post", TransferKind::kPostPending, "b", Cr(10)), Pending("d", Cr(30))});
  ASSERT_TRUE(rolled.ok()) << rolled.error().message;
  EXPECT_EQ(AccountNow("customer").debits_pending, Cr(30));
  ExpectClean();
}

TEST_P(LedgerTest, CorrectionIsANewTransferNamingTheOriginal) {
  ASSERT_TRUE(ledger_->CreateTransfer(Single("wrong", "customer", "shop", Cr(25))).ok());
  TransferSpec correction = Single("fix", "shop", "customer", Cr(25));
  correction.code = "correction";
  correction.corrects = "wrong";
  auto fixed = ledger_->CreateTransfer(correction);
  ASSERT_TRUE(fixed.ok()) << fixed.error().message;
  EXPECT_EQ(fixed->corrects, "wrong");
  EXPECT_EQ(AccountNow("customer").Available(), Cr(100));
  auto original = ledger_->LookupTransfer("wrong");
  ASSERT_TRUE(original.ok());
  EXPECT_EQ(original->amount, Cr(25));  // untouched

  correction.id = "fix2";
  correction.corrects = "missing";
  auto dangling = ledger_->CreateTransfer(correction);
  ASSERT_FALSE(dangling.ok());
  EXPECT_EQ(dangling.error().code, ErrorCode::kNotFound);
  ExpectClean();
}

TEST_P(LedgerTest, MalformedTransfersAreRefusedWithTheField) {
  struct Case {
    TransferSpec spec;
    ErrorCode code;
    std::string field;
  };
  TransferSpec past = Pending("p", Cr(1));
  past.expires_at = clock_.Now() - 1s;
  TransferSpec single_with_expiry = Single("s", "customer", "shop", Cr(1));
  single_with_expiry.expires_at = clock_.Now() + 1min;
  std::vector<Case> cases = {
      {Single("", "customer", "shop", Cr(1)), ErrorCode::kInvalidArgument, "id"},
      {Single("has space", "customer", "shop", Cr(1)), ErrorCode::kInvalidArgument, "id"},
      {Single("zero", "customer", "shop", Cr(0)), ErrorCode::kInvalidArgument, "amount"},
      {Single("neg", "customer", "shop", Credits::FromMicros(-1)), ErrorCode::kInvalidArgument, "amount"},
      {Single("self", "shop", "shop", Cr(1)), ErrorCode::kInvalidArgument, "credit_account_id"},
      {Single("nowhere", "customer", "nobody", Cr(1)), ErrorCode::kNotFound, "credit_account_id"},
      {past, ErrorCode::kInvalidArgument, "expires_at"},
      {single_with_expiry, ErrorCode::kInvalidArgument, "expires_at"},
      {Resolve("r", TransferKind::kPostPending, "", Cr(1)), ErrorCode::kInvalidArgument, "pending_id"},
      {Resolve("r", TransferKind::kPostPending, "nope", Cr(1)), ErrorCode::kNotFound, "pending_id"},
      {Resolve("r", TransferKind::kVoidPending, "fund"), ErrorCode::kInvalidArgument, "pending_id"},
  };
  for (const Case& c : cases) {
    auto result = ledger_->CreateTransfer(c.spec);
    ASSERT_FALSE(result.ok()) << c.spec.id;
    EXPECT_EQ(result.error().code, c.code) << c.spec.id << ": " << result.error().message;
    EXPECT_EQ(result.error().field, c.field) << c.spec.id << ": " << result.error().message;
  }
  ExpectClean();
}

// A tenant's statement finds its transfers by the one tenant each carries (ADR 0015).
TEST_P(LedgerTest, ATransferBetweenTwoTenantsIsRefused) {
  OpenPlain("alice", 0, NewTenant().str());
  OpenPlain("bob", 0, NewTenant().str());
  ASSERT_TRUE(ledger_->CreateTransfer(Single("to-alice", "bank", "alice", Cr(5))).ok());
  auto across = ledger_->CreateTransfer(Single("across", "alice", "bob", Cr(1)));
  ASSERT_FALSE(across.ok());
  EXPECT_EQ(across.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(across.error().field, "credit_account_id");
  auto stored = ledger_->LookupTransfer("to-alice");
  ASSERT_TRUE(stored.ok()) << stored.error().message;
  EXPECT_EQ(stored->tenant_id, AccountNow("alice").tenant_id);
  ExpectClean();
}

TEST_P(LedgerTest, AmountsNeverOverflow) {
  OpenPlain("source");
  OpenPlain("huge");
  auto max = ledger_->CreateTransfer(Single("max", "source", "huge", Credits::FromMicros(INT64_MAX)));
  ASSERT_TRUE(max.ok()) << max.error().message;
  auto overflow = ledger_->CreateTransfer(Single("more", "bank", "huge", Credits::FromMicros(1)));
  ASSERT_FALSE(overflow.ok());
  EXPECT_EQ(overflow.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(AccountNow("huge").credits_posted, Credits::FromMicros(INT64_MAX));
}

TEST_P(LedgerTest, OpenAccountIsIdempotentAndRefusesDifferentFlags) {
  auto again = ledger_->OpenAccount(
      {"customer", kCreditsLedger, "", "test.customer", AccountFlags::kDebitsMustNotExceedCredits});
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->credits_posted, Cr(100));
  auto different = ledger_->OpenAccount({"customer", kCreditsLedger, "", "test.customer", 0});
  ASSERT_FALSE(different.ok());
  EXPECT_EQ(different.error().code, ErrorCode::kAlreadyExists);
}

TEST_P(LedgerTest, CheckLedgerReportsTamperedBooks) {
  ASSERT_TRUE(ledger_->CreateTransfer(Pending("hold", Cr(10))).ok());
  ExpectClean();
  Script("UPDATE ledger_accounts SET debits_posted = debits_posted + 1 WHERE id = 'customer'");
  Script("UPDATE ledger_pending SET state = 'voided' WHERE transfer_id = 'hold'");
  auto breaches = CheckLedger(*db_);
  ASSERT_TRUE(breaches.ok()) << breaches.error().message;
  std::string all = Join(*breaches);
  EXPECT_NE(all.find("account customer: debits_posted is 1 but its transfers sum to 0"), std::string::npos) << all;
  EXPECT_NE(all.find("ledger 1: "), std::string::npos) << all;
  EXPECT_NE(all.find("pending transfer hold: status voided without a resolving transfer"), std::string::npos) << all;
}

// A resolution finds its status row through the primary key: the partial index of open statuses also holds an
// entry for every status resolved since the last VACUUM, so a lookup through it grows with the ledger's history.
TEST_P(LedgerTest, AResolutionFindsItsStatusByPrimaryKeyNotThroughTheOpenIndex) {
  for (int i = 0; i < 40; ++i) {
    const std::string id = "hold" + std::to_string(i);
    ASSERT_TRUE(ledger_->CreateTransfer(Pending(id, Cr(1))).ok());
    if (i % 4 != 0) {
      ASSERT_TRUE(ledger_->CreateTransfer(Resolve(id + "/void", TransferKind::kVoidPending, id)).ok());
    }
  }
  std::string plan;
  auto explained = db_->Write([&](storage::Tx& tx) -> Result<void> {
    // Only index plans compete, as they do once the table is large.
    if (postgres()) {
      CLOZIT_TRY(tx.Exec("SET LOCAL enable_seqscan = off"));
    }
    CLOZIT_ASSIGN_OR_RETURN(auto rows,
                            tx.Query(std::string(postgres() ? "EXPLAIN " : "EXPLAIN QUERY PLAN ") +
                                         std::string(detail::kResolvePendingStatus),
                                     {std::string("hold0"), std::string("voided"), std::string("x"), int64_t{0}}));
    for (const auto& row : rows) plan += row.Text(row.size() - 1) + "\n";
    return Ok();
  });
  ASSERT_TRUE(explained.ok()) << explained.error().message;
  EXPECT_EQ(plan.find("ledger_pending_open"), std::string::npos) << plan;
  EXPECT_NE(plan.find(postgres() ? "Index Scan" : "USING"), std::string::npos) << plan;
}

// SQLite's foreign keys refuse these rows; PostgreSQL has none on the hot tables (ADR 0024), so ledger-check
// must name each one.
TEST_P(LedgerTest, DanglingReferencesAreRefusedOrReported) {
  ASSERT_TRUE(ledger_->CreateTransfer(Pending("hold", Cr(10))).ok());
  const std::vector<std::pair<std::string, std::string>> tampered = {
      {"INSERT INTO ledger_transfers (id, ledger, kind, debit_account_id, credit_account_id, amount, code, "
       "reference, tenant_id, corrects_id, created_at) VALUES ('stray', 1, 'single', 'customer', 'bank', 0, "
       "'correction', 'x', 'ten_gone', NULL, 0)",
       "transfer stray: its tenant ten_gone does not exist"},
      {"INSERT INTO ledger_transfers (id, ledger, kind, debit_account_id, credit_account_id, amount, code, "
       "reference, corrects_id, created_at) VALUES ('fix', 1, 'single', 'customer', 'bank', 0, 'correction', "
       "'x', 'nothing', 0)",
       "transfer fix: its corrected transfer nothing does not exist"},
      {"INSERT INTO ledger_pending (transfer_id, expires_at, state) VALUES ('ghost', NULL, 'pending')",
       "pending status ghost: its pending transfer (of kind pending) ghost does not exist"},
      {"UPDATE ledger_pending SET resolved_by = 'nobody' WHERE transfer_id = 'hold'",
       "pending status hold: its resolving transfer nobody does not exist"},
      {"INSERT INTO billing_reservations (id, tenant_id, idempotency_key, purpose, estimate, first_expires_at, "
       "hold_transfer_id, version, created_at, updated_at) VALUES ('rsv_x', 'ten_gone', 'k', 'call', 0, 0, "
       "'hold', 0, 0, 0)",
       "reservation rsv_x: its tenant ten_gone does not exist"},
  };
  for (const auto& [sql, breach] : tampered) {
    auto written = db_->Write([&](storage::Tx& tx) { return tx.ExecScript(sql); });
    if (!postgres()) {
      EXPECT_FALSE(written.ok()) << sql;
      continue;
    }
    ASSERT_TRUE(written.ok()) << written.error().message;
    auto breaches = CheckLedger(*db_);
    ASSERT_TRUE(breaches.ok()) << breaches.error().message;
    EXPECT_NE(Join(*breaches).find(breach), std::string::npos) << Join(*breaches);
  }
  if (!postgres()) ExpectClean();
}

// A retry of a pending transfer after its expiry passed is answered with the stored transfer (a crashed caller
// replays late); a new one with a past expiry is still refused.
TEST_P(LedgerTest, ARetryAfterTheExpiryPassedGetsTheStoredTransfer) {
  const TransferSpec hold = Pending("late-retry", Cr(5));
  auto first = ledger_->CreateTransfer(hold);
  ASSERT_TRUE(first.ok()) << first.error().message;
  clock_.Advance(2min);
  auto retried = ledger_->CreateTransfer(hold);
  ASSERT_TRUE(retried.ok()) << retried.error().message;
  EXPECT_EQ(retried->id, first->id);
  EXPECT_EQ(retried->expires_at, first->expires_at);
  TransferSpec other = hold;
  other.id = "late-new";
  auto refused = ledger_->CreateTransfer(other);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().field, "expires_at");
  TransferSpec changed = hold;
  changed.amount = Cr(6);
  auto differs = ledger_->CreateTransfer(changed);
  ASSERT_FALSE(differs.ok());
  EXPECT_EQ(differs.error().code, ErrorCode::kAlreadyExists);
}

// A reservation whose hold debits some other account is a breach also when its tenant has no credits account to
// compare with (SQL's NULL comparison hid it).
TEST_P(LedgerTest, AReservationWhoseHoldDebitsAnotherAccountIsReported) {
  TenantId tenant = NewTenant();
  TransferSpec hold = Pending("hold", Cr(10));
  hold.reference = "rsv_y";
  ASSERT_TRUE(ledger_->CreateTransfer(hold).ok());
  ExecOk(
      "INSERT INTO billing_reservations (id, tenant_id, idempotency_key, purpose, estimate, first_expires_at, "
      "hold_transfer_id, version, created_at, updated_at) VALUES ('rsv_y', $1, 'k', 'call', 10000000, 0, 'hold', 0, "
      "0, 0)",
      {tenant.str()});
  auto breaches = CheckLedger(*db_);
  ASSERT_TRUE(breaches.ok()) << breaches.error().message;
  EXPECT_NE(Join(*breaches).find("reservation rsv_y: its hold does not debit its tenant's credits"), std::string::npos)
      << Join(*breaches);
}

CLOZIT_INSTANTIATE_BACKENDS(LedgerTest);

}  // namespace
}  // namespace clozit::billing::test
