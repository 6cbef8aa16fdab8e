// Tests for gateway/admission/refusal.h: the stable names (/stats keys,
// metrics labels, HTTP error codes) and counts added from several threads
// (WebSocket on the event loop, gRPC on its own threads).
#include "gateway/admission/refusal.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace relay::gateway {
namespace {

TEST(RefusalTest, NamesAreStable) {
  EXPECT_EQ(RefusalName(Refusal::kTooManyConnections), "too_many_connections");
  EXPECT_EQ(RefusalName(Refusal::kDraining), "draining");
  EXPECT_EQ(RefusalName(Refusal::kTooManyHandshakes), "too_many_handshakes");
}

TEST(RefusalCountsTest, AddReturnsTheCountWithThisOne) {
  RefusalCounts counts;
  EXPECT_EQ(counts.Get(Refusal::kDraining), 0u);

  EXPECT_EQ(counts.Add(Refusal::kDraining), 1u);
  EXPECT_EQ(counts.Add(Refusal::kDraining), 2u);

  EXPECT_EQ(counts.Get(Refusal::kDraining), 2u);
  EXPECT_EQ(counts.Get(Refusal::kTooManyConnections), 0u);
}

TEST(RefusalCountsTest, CountsFromManyThreadsAllAddUp) {
  RefusalCounts counts;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&counts] {
      for (int i = 0; i < 1000; ++i) counts.Add(Refusal::kTooManyConnections);
    });
  }
  for (std::thread& thread : threads) thread.join();

  EXPECT_EQ(counts.Get(Refusal::kTooManyConnections), 4000u);
}

}  // namespace
}  // namespace relay::gateway
