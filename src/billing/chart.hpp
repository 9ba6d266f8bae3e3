// billing/chart: the chart of accounts — which ledger accounts exist and how
// their ids are formed.
//
// A tenant has one credit account, "<tenant id>/credits", flagged kLots and
// kDebitsMustNotExceedCredits. Platform accounts are sharded by a stable hash
// of the tenant they serve ("platform/<code>/<shard>"), so no single balance
// row is written by every tenant's transfers (a hot row serialises PostgreSQL
// writers); a platform total is the sum over its shards:
//   platform.issuance.<lot kind>  where granted credits come from (runs negative)
//   platform.holds                reservations in flight (posted in, routed out at once)
//   platform.revenue.<category>   what usage earned, by category
//   platform.revenue.<fee code>   what fees earned (fee.phone_number.monthly, ...)
//   platform.expired              credits of lots that expired unused
//   platform.refunds              unused purchased credits returned for money (refunds)
// Pure functions; thread-safe.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "billing/ledger.hpp"

namespace clozit::billing {

inline constexpr int kPlatformShards = 16;

/// What usage is charged for (policy P1).
enum class UsageCategory { kCallMinutes, kAiProcessing, kVoiceGeneration, kCampaignExecution };
inline constexpr std::array<UsageCategory, 4> kUsageCategories = {
    UsageCategory::kCallMinutes, UsageCategory::kAiProcessing, UsageCategory::kVoiceGeneration,
    UsageCategory::kCampaignExecution};
/// "call_minutes", "ai_processing", "voice_generation", "campaign_execution".
std::string_view UsageCategoryName(UsageCategory category);
std::optional<UsageCategory> ParseUsageCategory(std::string_view text);

inline constexpr std::string_view kTenantCreditsCode = "tenant.credits";
inline constexpr std::string_view kHoldsCode = "platform.holds";
inline constexpr std::string_view kExpiredCode = "platform.expired";
inline constexpr std::string_view kRefundsCode = "platform.refunds";

/// The platform shard that serves `tenant_id` (FNV-1a, stable across builds and hosts).
int PlatformShard(std::string_view tenant_id);

AccountSpec TenantCreditsAccount(std::string_view tenant_id);
AccountSpec IssuanceAccount(LotKind kind, int shard);
AccountSpec HoldsAccount(int shard);
AccountSpec RevenueAccount(UsageCategory category, int shard);
/// Revenue of a fee, by its transfer code (e.g. "fee.phone_number.monthly").
AccountSpec FeeRevenueAccount(std::string_view fee_code, int shard);
AccountSpec ExpiredAccount(int shard);
AccountSpec RefundsAccount(int shard);

}  // namespace clozit::billing
