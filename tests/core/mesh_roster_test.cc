// Tests for server/core/mesh_roster.h: join order across instances, local
// and remote counts, llm load from other instances.
#include "server/core/mesh_roster.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace relay::core {
namespace {

using ::testing::ElementsAre;

// Stands for a connection this instance holds.
struct TestConnection : LocalConnection {};
TestConnection held;

Member Make(const std::string& node, std::uint64_t seq, const std::string& instance,
            bool local = false) {
  Member m;
  m.node_id = node;
  m.key = JoinKey{seq, instance};
  m.connection = local ? &held : nullptr;
  return m;
}

std::vector<std::string> Order(const MeshRoster& roster) {
  std::vector<std::string> out;
  for (const auto& [key, m] : roster.in_join_order()) out.push_back(m->node_id);
  return out;
}

TEST(MeshRosterTest, JoinOrderIsBySequenceThenInstanceWhereverMembersAre) {
  MeshRoster roster;
  roster.Add(Make("late", 3, "a", /*local=*/true));
  roster.Add(Make("tie-b", 2, "b"));
  roster.Add(Make("tie-a", 2, "a", /*local=*/true));
  roster.Add(Make("first", 1, "c"));
  EXPECT_THAT(Order(roster), ElementsAre("first", "tie-a", "tie-b", "late"));
  EXPECT_EQ(roster.size(), 4u);
  EXPECT_EQ(roster.local_members(), 2u);
  EXPECT_EQ(roster.remote_instances().at("b"), 1u);
  EXPECT_EQ(roster.remote_instances().at("c"), 1u);
}

TEST(MeshRosterTest, RemovingTheLastMemberOfAnInstanceForgetsTheInstance) {
  MeshRoster roster;
  roster.Add(Make("x", 1, "b"));
  roster.Add(Make("y", 2, "b"));
  roster.Add(Make("me", 3, "a", /*local=*/true));
  roster.Remove("x");
  EXPECT_EQ(roster.remote_instances().at("b"), 1u);
  roster.Remove("y");
  EXPECT_TRUE(roster.remote_instances().empty());
  roster.Remove("me");
  EXPECT_TRUE(roster.empty());
  EXPECT_EQ(roster.local_members(), 0u);
  roster.Remove("never-there");  // ignored
  EXPECT_EQ(roster.Find("x"), nullptr);
}

TEST(MeshRosterTest, LlmLoadElsewhereIsSummedPerInstanceAndReplacedNotAdded) {
  MeshRoster roster;
  Member& m = roster.Add(Make("gpu", 1, "a", /*local=*/true));
  roster.SetLlmHeldElsewhere(m, "b", 2);
  roster.SetLlmHeldElsewhere(m, "c", 3);
  EXPECT_EQ(m.llm_held_elsewhere_total, 5u);
  roster.SetLlmHeldElsewhere(m, "b", 1);  // b's newest count replaces its old one
  EXPECT_EQ(m.llm_held_elsewhere_total, 4u);
  roster.SetLlmHeldElsewhere(m, "c", 0);
  EXPECT_EQ(m.llm_held_elsewhere_total, 1u);
  EXPECT_EQ(m.llm_held_elsewhere.count("c"), 0u);
}

}  // namespace
}  // namespace relay::core
