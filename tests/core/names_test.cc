// The public names of the core's reasons: close reasons, error codes,
// per-client limits, drop reasons, traffic types and llm outcomes. They are
// a contract (/stats, /metrics labels, the protocol's error codes, docs), so
// each is pinned here exactly and in order; the static_asserts beside each
// table only prove the table is whole. Includes no relay_core.h and links no
// relay_core: traffic.h is tested before the core switches to it.
#include <cctype>
#include <cstddef>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/close_reason.h"
#include "server/core/delivery.h"
#include "server/core/error_code.h"
#include "server/core/limit.h"
#include "server/core/session_end.h"
#include "server/core/traffic.h"

namespace relay::core {
namespace {

using ::testing::ElementsAreArray;

template <typename Enum, typename NameFn>
std::vector<std::string> AllNames(std::size_t count, NameFn name) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < count; ++i) out.emplace_back(name(static_cast<Enum>(i)));
  return out;
}

// Stable names are snake_case identifiers, each once.
void ExpectSnakeCaseAndUnique(const std::vector<std::string>& names) {
  std::set<std::string> seen;
  for (const std::string& name : names) {
    EXPECT_FALSE(name.empty());
    for (char c : name) {
      EXPECT_TRUE(std::islower(static_cast<unsigned char>(c)) || c == '_') << name;
    }
    EXPECT_TRUE(seen.insert(name).second) << name << " twice";
  }
}

TEST(NamesTest, CloseReasons) {
  const auto names = AllNames<CloseReason>(kCloseReasonCount, CloseReasonName);
  EXPECT_THAT(names, ElementsAreArray({"client_closed", "replaced", "server_shutdown",
                                       "registration_timeout", "message_too_big", "invalid_frame",
                                       "keepalive_timeout", "transport_error", "slow_consumer",
                                       "rate_limited", "auth_failed", "kicked", "mesh_closed",
                                       "service_restart", "resumed", "resume_overflow"}));
  ExpectSnakeCaseAndUnique(names);
}

TEST(NamesTest, ErrorCodes) {
  const auto names = AllNames<ErrorCode>(kErrorCodeCount, ErrorCodeName);
  EXPECT_THAT(names, ElementsAreArray({"bad_json", "bad_message", "unknown_type", "not_registered",
                                       "already_registered", "node_id_in_use", "unknown_target",
                                       "no_llm_peer", "llm_peer_left", "too_many_requests",
                                       "auth_failed", "rate_limited", "mesh_full", "kicked",
                                       "mesh_closed", "auth_unavailable", "cluster_unavailable",
                                       "seq_required"}));
  ExpectSnakeCaseAndUnique(names);
}

TEST(NamesTest, AllErrorCodesListsEachCodeOnceInOrder) {
  ASSERT_EQ(kAllErrorCodes.size(), kErrorCodeCount);
  for (std::size_t i = 0; i < kAllErrorCodes.size(); ++i) {
    EXPECT_EQ(static_cast<std::size_t>(kAllErrorCodes[i]), i);
  }
}

TEST(NamesTest, Limits) {
  const auto names = AllNames<Limit>(kLimitCount, LimitName);
  EXPECT_THAT(names, ElementsAreArray({"message_rate", "byte_rate", "request_id_bytes",
                                       "pending_llm_requests", "pending_llm_bytes",
                                       "events_while_registering", "peers_per_mesh", "nonce_bytes",
                                       "token_lifetime", "nonces_per_mesh", "founders_per_mesh",
                                       "auth_records", "auth_records_per_ip", "resume_sessions",
                                       "resume_memory"}));
  ExpectSnakeCaseAndUnique(names);
}

TEST(NamesTest, DropReasons) {
  const auto names = AllNames<DropReason>(kDropReasonCount, DropReasonName);
  EXPECT_THAT(names, ElementsAreArray({"closing", "slow_consumer", "unreachable", "resume_overflow"}));
  ExpectSnakeCaseAndUnique(names);
}

TEST(NamesTest, SessionEnds) {
  const auto names = AllNames<SessionEnd>(kSessionEndCount, SessionEndName);
  EXPECT_THAT(names, ElementsAreArray({"expired", "overflow", "closed", "replaced"}));
  ExpectSnakeCaseAndUnique(names);
}

TEST(NamesTest, TrafficTypes) {
  const auto names = AllNames<TrafficType>(kTrafficTypeCount, TrafficTypeName);
  EXPECT_THAT(names, ElementsAreArray({"broadcast", "direct", "llm_request", "llm_response"}));
  ExpectSnakeCaseAndUnique(names);
}

TEST(NamesTest, UnroutedTypes) {
  const auto names = AllNames<UnroutedType>(kUnroutedTypeCount, UnroutedTypeName);
  EXPECT_THAT(names, ElementsAreArray({"gossip", "intent", "route_request", "route_response"}));
  ExpectSnakeCaseAndUnique(names);
}

TEST(NamesTest, LlmOutcomes) {
  const auto names = AllNames<LlmOutcome>(kLlmOutcomeCount, LlmOutcomeName);
  EXPECT_THAT(names, ElementsAreArray({"answered", "no_llm_peer", "too_many_requests", "peer_left",
                                       "requester_left", "cluster_unavailable"}));
  ExpectSnakeCaseAndUnique(names);
}

TEST(NamesTest, TrafficCountersHaveASlotPerName) {
  TrafficCounters counters;
  EXPECT_EQ(counters.deliveries.size(), kTrafficTypeCount);
  EXPECT_EQ(counters.payload_bytes.size(), kTrafficTypeCount);
  EXPECT_EQ(counters.llm_outcomes.size(), kLlmOutcomeCount);
  EXPECT_EQ(counters.deliveries[0] + counters.payload_bytes[0] + counters.llm_outcomes[0], 0u);
}

}  // namespace
}  // namespace relay::core
