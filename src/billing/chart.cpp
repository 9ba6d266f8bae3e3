#include "billing/chart.hpp"

#include <cstdint>

namespace clozit::billing {
namespace {

AccountSpec Platform(std::string code, int shard, uint32_t flags) {
  std::string suffix = (shard < 10 ? "/0" : "/") + std::to_string(shard);
  AccountSpec spec;
  spec.id = "platform/" + code + suffix;
  spec.code = std::move(code);
  spec.flags = flags;
  return spec;
}

}  // namespace

std::string_view UsageCategoryName(UsageCategory category) {
  switch (category) {
    case UsageCategory::kCallMinutes:
      return "call_minutes";
    case UsageCategory::kAiProcessing:
      return "ai_processing";
    case UsageCategory::kVoiceGeneration:
      return "voice_generation";
    case UsageCategory::kCampaignExecution:
      return "campaign_execution";
  }
  return "unknown";
}

std::optional<UsageCategory> ParseUsageCategory(std::string_view text) {
  for (UsageCategory category : kUsageCategories) {
    if (UsageCategoryName(category) == text) return category;
  }
  return std::nullopt;
}

int PlatformShard(std::string_view tenant_id) {
  uint64_t hash = 14695981039346656037ull;
  for (char c : tenant_id) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ull;
  }
  return static_cast<int>(hash % kPlatformShards);
}

AccountSpec TenantCreditsAccount(std::string_view tenant_id) {
  AccountSpec spec;
  spec.id = std::string(tenant_id) + "/credits";
  spec.tenant_id = std::string(tenant_id);
  spec.code = std::string(kTenantCreditsCode);
  spec.flags = AccountFlags::kDebitsMustNotExceedCredits | AccountFlags::kLots;
  return spec;
}

AccountSpec IssuanceAccount(LotKind kind, int shard) {
  return Platform("platform.issuance." + std::string(LotKindName(kind)), shard, 0);
}

// Every post into holds is routed to revenue in the same batch, so holds never run negative.
AccountSpec HoldsAccount(int shard) {
  return Platform(std::string(kHoldsCode), shard, AccountFlags::kDebitsMustNotExceedCredits);
}

AccountSpec RevenueAccount(UsageCategory category, int shard) {
  return Platform("platform.revenue." + std::string(UsageCategoryName(category)), shard, 0);
}

AccountSpec FeeRevenueAccount(std::string_view fee_code, int shard) {
  return Platform("platform.revenue." + std::string(fee_code), shard, 0);
}

AccountSpec ExpiredAccount(int shard) { return Platform(std::string(kExpiredCode), shard, 0); }

AccountSpec RefundsAccount(int shard) { return Platform(std::string(kRefundsCode), shard, 0); }

}  // namespace clozit::billing
