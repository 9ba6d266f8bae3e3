// Calls and credentials against a real database (SQLite, and PostgreSQL under
// scripts/with-postgres.sh) with a scripted provider: the n-th placement fails
// for every n and leaves no call in a non-terminal state; every order of a
// call's events, with duplicates, ends in the same final state; events that
// beat the carrier's REST answer are applied when the call id is attached;
// sealed credentials open only with their key.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "storage/backend_fixture.hpp"
#include "storage/migrations.hpp"
#include "telephony/telephony.hpp"

namespace clozit::telephony {
namespace {

using storage::Dialect;

// A provider whose PlaceCall fails when its call number is in `fail`; it may also deliver events first.
class ScriptedProvider final : public Provider {
 public:
  ProviderKind kind() const override { return ProviderKind::kTelnyx; }
  Result<ProviderCall> PlaceCall(const PlaceCallRequest& request) override {
    last_request = request;
    ++placed;
    ++total;  // call ids stay unique across rounds, as a carrier's are
    if (placed == fail_at) return Error::Make(ErrorCode::kUnavailable, "telnyx answered HTTP 500");
    if (before_answer) before_answer("v3:call-" + std::to_string(total));
    return ProviderCall{"v3:call-" + std::to_string(total), "initiated"};
  }
  Result<void> Hangup(const std::string& call_id) override {
    hung_up.push_back(call_id);
    return Ok();
  }
  Result<ProviderCallState> GetCall(const std::string& call_id) override {
    ++asked;
    if (!states.contains(call_id)) return Error::NotFound("no such call");
    return states.at(call_id);
  }
  Result<void> Transfer(const std::string&, const std::string&, const std::string&) override { return Ok(); }
  Result<std::vector<AvailableNumber>> SearchNumbers(const NumberSearch&) override {
    return std::vector<AvailableNumber>{};
  }
  Result<OwnedNumber> BuyNumber(const std::string&) override { return Error::Make(ErrorCode::kUnavailable, "no"); }
  Result<void> ReleaseNumber(const std::string&) override { return Ok(); }
  Result<std::vector<OwnedNumber>> ListNumbers() override { return std::vector<OwnedNumber>{}; }
  Result<std::optional<OwnedNumber>> FindNumber(const std::string&) override { return std::optional<OwnedNumber>(); }
  bool VerifyWebhook(const WebhookRequest&) const override { return true; }
  Result<CallEvent> ParseWebhook(const WebhookRequest& request) const override {
    return ParseTelnyxWebhook(request.body);
  }

  PlaceCallRequest last_request;
  int placed = 0;
  int total = 0;
  int fail_at = 0;
  std::function<void(const std::string&)> before_answer;
  std::vector<std::string> hung_up;
  std::map<std::string, ProviderCallState> states;
  int asked = 0;
};

CallEvent Event(const std::string& call_id, const std::string& id, CallEventKind kind,
                CallOutcome outcome = CallOutcome::kNone) {
  CallEvent event;
  event.provider = ProviderKind::kTelnyx;
  event.event_id = id;
  event.call_id = call_id;
  event.kind = kind;
  event.outcome = outcome;
  if (kind == CallEventKind::kEnded) {
    event.detail = "normal_clearing";
    event.duration_seconds = 7;
  }
  if (kind == CallEventKind::kMachineDetection) event.answered_by = AnsweredBy::kHuman;
  return event;
}

class CallsTest : public storage::test::BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_TRUE(storage::Migrate(*db_, clock_).ok());
    auto box = CredentialBox::FromKeyText(std::string(64, 'a'));
    ASSERT_TRUE(box.ok());
    telephony_ = std::make_unique<Telephony>(
        *db_, audit_, clock_, random_, *box, ProviderAccountSettings{}, nullptr,
        [this](const ProviderAccount&, const std::string&) { return Result<std::shared_ptr<Provider>>(provider_); });
    telephony_->SetPublicBaseUrl("https://clozit.example.com");
    tenant_ = TenantId::New(clock_, random_).str();
    ASSERT_TRUE(db_->Write([&](storage::Tx& tx) -> Result<void> {
                     CLOZIT_TRY(
                         tx.Exec("INSERT INTO tenants (id, name, status, created_at, updated_at) VALUES ($1, "
                                 "'T', 'active', 0, 0)",
                                 {tenant_}));
                     return Ok();
                   })
                    .ok());
    ProviderAccountInput input;
    input.provider = ProviderKind::kTelnyx;
    input.name = "platform";
    input.connection_id = "conn";
    input.public_key = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
    input.secret = "KEY-platform-0123456789";
    auto account = telephony_->accounts.Create("", input, privacy::Actor{});
    ASSERT_TRUE(account.ok()) << account.error().message;
    account_ = *account;
  }
  void TearDown() override {
    telephony_.reset();
    BackendTest::TearDown();
  }

  PlaceCallInput Input() {
    PlaceCallInput input;
    input.from = "+15550009999";
    input.to = "+15550001001";
    return input;
  }

  Call Reload(const Call& call) {
    auto detail = telephony_->calls.Get(tenant_, call.id.str());
    EXPECT_TRUE(detail.ok());
    return detail.ok() ? detail->call : call;
  }

  ManualClock clock_{FromUnixMillis(1'800'000'000'000)};
  SeededRandom random_{7};
  privacy::AuditLog audit_{clock_, random_};
  std::shared_ptr<ScriptedProvider> provider_ = std::make_shared<ScriptedProvider>();
  std::unique_ptr<Telephony> telephony_;
  std::string tenant_;
  ProviderAccount account_;
};

TEST_P(CallsTest, CallsStreamTheirMediaToThePlatformWithATokenForTheirId) {
  auto without = telephony_->calls.Place(tenant_, Input());
  ASSERT_TRUE(without.ok()) << without.error().message;
  EXPECT_EQ(provider_->last_request.media_stream_url, "");  // no issuer yet: no stream
  EXPECT_EQ(provider_->last_request.media_stream_token, "");

  telephony_->SetMediaTokenIssuer([](const std::string& call_id) { return "token-for-" + call_id; });
  auto call = telephony_->calls.Place(tenant_, Input());
  ASSERT_TRUE(call.ok()) << call.error().message;
  EXPECT_EQ(provider_->last_request.media_stream_url, "wss://clozit.example.com/v1/media/telnyx");
  EXPECT_EQ(provider_->last_request.media_stream_token, "token-for-" + call->id.str());

  PlaceCallInput named = Input();
  named.media_stream_url = "wss://voice.example.com/stream";
  ASSERT_TRUE(telephony_->calls.Place(tenant_, named).ok());
  EXPECT_EQ(provider_->last_request.media_stream_url, "wss://voice.example.com/stream");
  EXPECT_TRUE(provider_->last_request.media_stream_token.starts_with("token-for-cal_"));
}

TEST_P(CallsTest, EveryFailedPlacementLeavesATerminalCall) {
  for (int n = 1; n <= 4; ++n) {
    SCOPED_TRACE("placement " + std::to_string(n) + " fails");
    provider_->placed = 0;
    provider_->fail_at = n;
    for (int i = 1; i <= 4; ++i) {
      auto placed = telephony_->calls.Place(tenant_, Input());
      EXPECT_EQ(placed.ok(), i != n);
      if (!placed.ok()) {
        EXPECT_EQ(placed.error().code, ErrorCode::kUnavailable);
      }
    }
  }
  auto rows = db_->Query(
      "SELECT COUNT(*) FROM telephony_calls WHERE status IN ('queued') OR (status = 'failed' AND error_code <> "
      "'unavailable')");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ((*rows)[0].Int(0), 0);
  auto failed = db_->Query("SELECT COUNT(*) FROM telephony_calls WHERE status = 'failed' AND provider_call_id IS NULL");
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ((*failed)[0].Int(0), 4);
}

TEST_P(CallsTest, EveryOrderOfEventsWithDuplicatesEndsInTheSameState) {
  std::vector<int> order = {0, 1, 2, 3, 4};
  int permutation = 0;
  do {
    SCOPED_TRACE("permutation " + std::to_string(permutation));
    auto call = telephony_->calls.Place(tenant_, Input());
    ASSERT_TRUE(call.ok()) << call.error().message;
    const std::string id = call->provider_call_id;
    const std::vector<CallEvent> events = {
        Event(id, id + ":init", CallEventKind::kInitiated), Event(id, id + ":ring", CallEventKind::kRinging),
        Event(id, id + ":answer", CallEventKind::kAnswered), Event(id, id + ":amd", CallEventKind::kMachineDetection),
        Event(id, id + ":hangup", CallEventKind::kEnded, CallOutcome::kCompleted)};
    for (int index : order) {
      for (int copy = 0; copy < (index % 2 == 0 ? 2 : 1); ++copy) {  // some delivered twice
        auto effect = telephony_->calls.Record(account_, events[static_cast<size_t>(index)], {"u", "b"});
        ASSERT_TRUE(effect.ok()) << effect.error().message;
        if (copy == 1) {
          EXPECT_EQ(*effect, EventEffect::kDuplicate);
        }
      }
    }
    Call final = Reload(*call);
    EXPECT_EQ(final.status, "completed");
    EXPECT_EQ(final.answered_by, "human");
    EXPECT_EQ(final.hangup_cause, "normal_clearing");
    EXPECT_EQ(final.duration_seconds, 7);
    EXPECT_TRUE(final.answered_at.has_value());
    EXPECT_TRUE(final.ended_at.has_value());
    ++permutation;
  } while (std::next_permutation(order.begin(), order.end()) && permutation < 40);
}

TEST_P(CallsTest, EventsThatBeatTheRestAnswerAreAppliedWhenTheCallIdIsAttached) {
  provider_->before_answer = [this](const std::string& id) {
    ASSERT_EQ(*telephony_->calls.Record(account_, Event(id, id + ":answer", CallEventKind::kAnswered), {"u", "b"}),
              EventEffect::kPending);
  };
  auto call = telephony_->calls.Place(tenant_, Input());
  ASSERT_TRUE(call.ok()) << call.error().message;
  EXPECT_EQ(call->status, "in_progress");
  auto detail = telephony_->calls.Get(tenant_, call->id.str());
  ASSERT_TRUE(detail.ok());
  ASSERT_EQ(detail->events.size(), 1u);
  EXPECT_EQ(detail->events[0].effect, "applied");
}

TEST_P(CallsTest, ACallReportedNotPlacedAdoptsTheCarrierCallItsEventsNameAndHangsItUp) {
  provider_->fail_at = 1;
  ASSERT_FALSE(telephony_->calls.Place(tenant_, Input()).ok());
  const std::string url = provider_->last_request.status_callback_url;
  ASSERT_NE(url.find("?call=cal_"), std::string::npos);
  auto calls = telephony_->calls.List(tenant_, {}, {});
  ASSERT_TRUE(calls.ok());
  ASSERT_EQ(calls->items.size(), 1u);
  const Call reported = calls->items[0];

  // The carrier dialled it anyway (its answer was lost): its events name the call.
  auto effect = telephony_->calls.Record(account_, Event("v3:lost", "e1", CallEventKind::kInitiated), {url, "b"});
  ASSERT_TRUE(effect.ok()) << effect.error().message;
  EXPECT_EQ(*effect, EventEffect::kStale);
  EXPECT_EQ(provider_->hung_up, std::vector<std::string>{"v3:lost"});
  Call adopted = Reload(reported);
  EXPECT_EQ(adopted.provider_call_id, "v3:lost");
  EXPECT_EQ(adopted.status, "failed");
  EXPECT_EQ(adopted.hangup_cause, "orphan_hung_up");

  // Its hang-up is stale, and no other call can be claimed through a URL: only `not_placed` ones are adopted.
  EXPECT_EQ(*telephony_->calls.Record(account_, Event("v3:lost", "e2", CallEventKind::kEnded, CallOutcome::kCanceled),
                                      {url, "b"}),
            EventEffect::kStale);
  EXPECT_EQ(*telephony_->calls.Record(account_, Event("v3:other", "e3", CallEventKind::kInitiated), {url, "b"}),
            EventEffect::kPending);
  EXPECT_EQ(provider_->hung_up.size(), 1u);
}

TEST_P(CallsTest, ReconcileEndsQuietCallsTheCarrierReportsOverOnce) {
  auto live = telephony_->calls.Place(tenant_, Input());
  auto over = telephony_->calls.Place(tenant_, Input());
  auto unknown = telephony_->calls.Place(tenant_, Input());
  ASSERT_TRUE(live.ok() && over.ok() && unknown.ok());
  ASSERT_TRUE(
      telephony_->calls.Record(account_, Event(over->provider_call_id, "a", CallEventKind::kAnswered), {"u", "b"})
          .ok());
  provider_->states[live->provider_call_id] = ProviderCallState{true, CallOutcome::kNone, std::nullopt};
  provider_->states[over->provider_call_id] = ProviderCallState{false, CallOutcome::kNone, std::nullopt};

  auto early = telephony_->calls.Reconcile(std::chrono::minutes(2));
  ASSERT_TRUE(early.ok()) << early.error().message;
  EXPECT_EQ(*early, 0);
  EXPECT_EQ(provider_->asked, 0);  // nobody has been quiet for two minutes yet

  clock_.Advance(std::chrono::minutes(3));
  auto ended = telephony_->calls.Reconcile(std::chrono::minutes(2), 1);  // a page per call: the live one first
  ASSERT_TRUE(ended.ok()) << ended.error().message;
  EXPECT_EQ(*ended, 2);
  EXPECT_EQ(Reload(*live).status, "initiated");
  Call answered = Reload(*over);
  EXPECT_EQ(answered.status, "completed");  // Telnyx does not say how: it was answered
  EXPECT_EQ(answered.hangup_cause, "reconciled");
  EXPECT_EQ(Reload(*unknown).status, "failed");  // the carrier does not know it: over, never answered

  clock_.Advance(std::chrono::minutes(3));
  EXPECT_EQ(*telephony_->calls.Reconcile(std::chrono::minutes(2)), 0);
  EXPECT_EQ(provider_->asked, 4);  // only the live call is asked again
}

TEST_P(CallsTest, AnotherTenantsCallIsNotFound) {
  auto call = telephony_->calls.Place(tenant_, Input());
  ASSERT_TRUE(call.ok());
  auto other = telephony_->calls.Get(TenantId::New(clock_, random_).str(), call->id.str());
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().code, ErrorCode::kNotFound);
}

CLOZIT_INSTANTIATE_BACKENDS(CallsTest);

TEST(CredentialBox, SealsAndOpensOnlyWithItsKey) {
  SeededRandom random(1);
  auto hex = CredentialBox::FromKeyText(std::string(64, 'b'));
  ASSERT_TRUE(hex.ok());
  auto base64 = CredentialBox::FromKeyText("u7u7u7u7u7u7u7u7u7u7u7u7u7u7u7u7u7u7u7u7u7s=");
  ASSERT_TRUE(base64.ok());
  const std::string sealed = hex->Seal("auth-token-123", random);
  EXPECT_EQ(sealed.find("auth-token"), std::string::npos);
  EXPECT_NE(hex->Seal("auth-token-123", random), sealed) << "a fresh nonce each time";
  EXPECT_EQ(*hex->Open(sealed), "auth-token-123");
  EXPECT_EQ(*base64->Open(sealed), "auth-token-123") << "0xbb.. as hex and as base64 is the same key";
  auto other = CredentialBox::FromKeyText(std::string(64, 'c'));
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->Open(sealed).ok());
  std::string tampered = sealed;
  tampered[30] = tampered[30] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(hex->Open(tampered).ok());
  auto short_key = CredentialBox::FromKeyText("abcd");
  ASSERT_FALSE(short_key.ok());
  EXPECT_EQ(short_key.error().field, "telephony.credentials_key");
  EXPECT_EQ(MaskedHint("auth-token-1234"), "••••1234");
  EXPECT_EQ(MaskedHint("short"), "••••");
}

}  // namespace
}  // namespace clozit::telephony
