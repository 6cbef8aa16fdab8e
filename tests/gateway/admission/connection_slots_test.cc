// Tests for gateway/admission/connection_slots.cc: the total and per-IP
// bounds, slots given back exactly once (release, destruction, move), and
// slots taken from many threads at once never exceeding the bound.
#include "gateway/admission/connection_slots.h"

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace relay::gateway {
namespace {

using ::testing::HasSubstr;

ConnectionSlot Take(ConnectionSlots& slots, const std::string& ip) {
  absl::StatusOr<ConnectionSlot> slot = slots.Acquire(ip);
  EXPECT_TRUE(slot.ok()) << ip << ": " << slot.status();
  return slot.ok() ? *std::move(slot) : ConnectionSlot();
}

TEST(ConnectionSlotsTest, RefusesPastTheTotalWhateverTheIp) {
  ConnectionSlots slots(/*max_total=*/3, /*max_per_ip=*/0);
  ConnectionSlot a = Take(slots, "192.0.2.1");
  ConnectionSlot b = Take(slots, "192.0.2.2");
  ConnectionSlot c = Take(slots, "2001:db8::1");

  absl::StatusOr<ConnectionSlot> refused = slots.Acquire("192.0.2.9");

  EXPECT_TRUE(absl::IsResourceExhausted(refused.status())) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("connection limit"));
  EXPECT_EQ(slots.open(), 3u);
  EXPECT_EQ(slots.open_from("192.0.2.9"), 0u);
}

TEST(ConnectionSlotsTest, RefusesPastThePerIpBoundWhileOtherIpsGetIn) {
  ConnectionSlots slots(/*max_total=*/10, /*max_per_ip=*/2);
  ConnectionSlot a = Take(slots, "192.0.2.1");
  ConnectionSlot b = Take(slots, "192.0.2.1");

  absl::StatusOr<ConnectionSlot> refused = slots.Acquire("192.0.2.1");
  absl::StatusOr<ConnectionSlot> other = slots.Acquire("192.0.2.2");

  EXPECT_TRUE(absl::IsResourceExhausted(refused.status())) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("this IP address"));
  EXPECT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(slots.open_from("192.0.2.1"), 2u);
  EXPECT_EQ(slots.open_from("192.0.2.2"), 1u);
  EXPECT_EQ(slots.open(), 3u);
}

TEST(ConnectionSlotsTest, TotalIsCheckedBeforeThePerIpBound) {
  ConnectionSlots slots(/*max_total=*/1, /*max_per_ip=*/1);
  ConnectionSlot a = Take(slots, "192.0.2.1");

  // Both bounds are full for this IP: the client is told the relay is full.
  absl::StatusOr<ConnectionSlot> refused = slots.Acquire("192.0.2.1");

  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("connection limit"));
}

TEST(ConnectionSlotsTest, ZeroPerIpMeansNoPerIpBound) {
  ConnectionSlots slots(/*max_total=*/5, /*max_per_ip=*/0);
  std::vector<ConnectionSlot> held;
  for (int i = 0; i < 5; ++i) held.push_back(Take(slots, "192.0.2.1"));

  EXPECT_EQ(slots.open_from("192.0.2.1"), 5u);
  EXPECT_FALSE(slots.Acquire("192.0.2.1").ok());
}

TEST(ConnectionSlotsTest, ReleaseGivesTheSlotBackOnceAndItCanBeTakenAgain) {
  ConnectionSlots slots(/*max_total=*/1, /*max_per_ip=*/1);
  ConnectionSlot a = Take(slots, "192.0.2.1");
  ASSERT_TRUE(a.held());
  ASSERT_FALSE(slots.Acquire("192.0.2.2").ok());

  a.Release();
  a.Release();  // idempotent: must not free a slot someone else holds

  EXPECT_FALSE(a.held());
  EXPECT_EQ(slots.open(), 0u);
  EXPECT_EQ(slots.open_from("192.0.2.1"), 0u);
  ConnectionSlot b = Take(slots, "192.0.2.2");
  a.Release();
  EXPECT_EQ(slots.open(), 1u);
  EXPECT_FALSE(slots.Acquire("192.0.2.3").ok());
}

TEST(ConnectionSlotsTest, DestroyingTheHandleGivesTheSlotBack) {
  ConnectionSlots slots(/*max_total=*/1, /*max_per_ip=*/0);
  { ConnectionSlot a = Take(slots, "192.0.2.1"); }

  EXPECT_EQ(slots.open(), 0u);
  EXPECT_TRUE(slots.Acquire("192.0.2.1").ok());
}

TEST(ConnectionSlotsTest, AMovedSlotIsGivenBackByItsNewOwnerOnly) {
  ConnectionSlots slots(/*max_total=*/2, /*max_per_ip=*/0);
  ConnectionSlot a = Take(slots, "192.0.2.1");

  ConnectionSlot b = std::move(a);
  a.Release();  // moved from: holds nothing
  EXPECT_FALSE(a.held());
  EXPECT_TRUE(b.held());
  EXPECT_EQ(slots.open(), 1u);

  // Assigning over a held slot gives the old one back.
  ConnectionSlot c = Take(slots, "192.0.2.2");
  EXPECT_EQ(slots.open(), 2u);
  c = std::move(b);
  EXPECT_EQ(slots.open(), 1u);
  EXPECT_EQ(slots.open_from("192.0.2.2"), 0u);
  EXPECT_EQ(slots.open_from("192.0.2.1"), 1u);
  c.Release();
  EXPECT_EQ(slots.open(), 0u);
}

TEST(ConnectionSlotsTest, ASlotThatOutlivesItsKeeperIsSafeToRelease) {
  ConnectionSlot survivor;
  {
    ConnectionSlots slots(/*max_total=*/1, /*max_per_ip=*/1);
    survivor = Take(slots, "192.0.2.1");
  }
  survivor.Release();
  EXPECT_FALSE(survivor.held());
}

// The gRPC transport takes slots on gRPC's threads while WebSocket takes them
// on the event loop: however they interleave, no more than the bounds are
// ever handed out, and every slot given back is counted back.
TEST(ConnectionSlotsTest, ThreadsRacingForSlotsNeverGetMoreThanTheBounds) {
  constexpr std::size_t kTotal = 50;
  constexpr std::size_t kPerIp = 20;
  constexpr int kThreads = 8;
  constexpr int kAttemptsPerThread = 40;
  ConnectionSlots slots(kTotal, kPerIp);
  std::atomic<bool> go{false};
  std::vector<std::vector<ConnectionSlot>> held(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load()) {
      }
      // Two threads per IP: 4 IPs x 20 = 80 wanted, 50 to share.
      const std::string ip = "192.0.2." + std::to_string(t / 2);
      for (int i = 0; i < kAttemptsPerThread; ++i) {
        absl::StatusOr<ConnectionSlot> slot = slots.Acquire(ip);
        if (slot.ok()) held[t].push_back(*std::move(slot));
      }
    });
  }
  go.store(true);
  for (std::thread& thread : threads) thread.join();

  std::size_t granted = 0;
  for (int t = 0; t < kThreads; ++t) granted += held[t].size();
  EXPECT_EQ(granted, kTotal);
  EXPECT_EQ(slots.open(), kTotal);
  for (int ip = 0; ip < kThreads / 2; ++ip) {
    const std::string key = "192.0.2." + std::to_string(ip);
    EXPECT_EQ(slots.open_from(key), held[2 * ip].size() + held[2 * ip + 1].size()) << key;
    EXPECT_LE(slots.open_from(key), kPerIp) << key;
  }

  // Given back from many threads at once, while others take and give back.
  threads.clear();
  go.store(false);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load()) {
      }
      for (ConnectionSlot& slot : held[t]) slot.Release();
      for (int i = 0; i < kAttemptsPerThread; ++i) {
        absl::StatusOr<ConnectionSlot> slot = slots.Acquire("198.51.100.1");
        // Given back at once (destroyed at the end of the iteration).
      }
    });
  }
  go.store(true);
  for (std::thread& thread : threads) thread.join();

  EXPECT_EQ(slots.open(), 0u);
  for (int ip = 0; ip < kThreads / 2; ++ip) {
    EXPECT_EQ(slots.open_from("192.0.2." + std::to_string(ip)), 0u);
  }
  EXPECT_EQ(slots.open_from("198.51.100.1"), 0u);
}

}  // namespace
}  // namespace relay::gateway
