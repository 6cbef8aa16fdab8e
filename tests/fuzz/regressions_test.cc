// Regression tests from fuzzing: every input that once made a harness report
// a violated invariant (tests/fuzz/*_harness.h) stays here as a unit test,
// and every seed of corpus/<target>/ is replayed through the same harness, so
// the normal and sanitizer builds check them without libFuzzer.
#include <filesystem>
#include <fstream>
#include <memory>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "relay/v1/relay.pb.h"
#include "server/core/clock.h"
#include "server/core/close_reason.h"
#include "server/core/core_config.h"
#include "server/core/peer_sink.h"
#include "server/core/relay_core.h"
#include "tests/fuzz/codec_harness.h"
#include "tests/fuzz/core_harness.h"
#include "tests/fuzz/json_reference.h"

namespace relay::core {
// gtest prints close reasons by name.
void PrintTo(CloseReason reason, std::ostream* os) { *os << CloseReasonName(reason); }
}  // namespace relay::core

namespace relay::fuzz {
namespace {

using ::testing::ElementsAre;

class TestClock final : public core::Clock {
 public:
  absl::Time Now() const override { return now; }
  absl::Time now = absl::FromUnixSeconds(1'700'000'000);
};

// Keeps what the core asked of one connection.
class Sink final : public core::PeerSink {
 public:
  void Send(const core::ServerEventPtr& event) override { events.push_back(event); }
  void Close(core::CloseReason reason) override { closes.push_back(reason); }
  std::vector<core::ServerEventPtr> events;
  std::vector<core::CloseReason> closes;
};

relay::v1::ClientEvent Register(const std::string& mesh, const std::string& node,
                                const std::string& token) {
  relay::v1::ClientEvent event;
  event.mutable_register_()->set_mesh_id(mesh);
  event.mutable_register_()->set_node_id(node);
  event.mutable_register_()->set_token(token);
  return event;
}

// core_events_fuzz: CloseAll, then the same node_id and token registered on
// a new connection. The takeover asks the holder's sink to Close a second
// time, although CloseAll already did (every other Close path checks
// `closing` first). WsPeerSink would then get invalid_state from
// websocketpp's close() and terminate the TCP connection instead of
// finishing the 1001 close. Latent today: the gateway closes connections
// opened during shutdown itself and websocketpp drops their frames, so only
// another transport (gRPC Attach) or a reordered shutdown could reach it.
TEST(CoreRegressionTest, TakeoverOfAClosingHolderDoesNotCloseItAgain) {
  TestClock clock;
  core::RelayCore core(core::CoreConfig{}, &clock);
  auto holder = std::make_shared<Sink>();
  auto newcomer = std::make_shared<Sink>();
  const core::ConnectionId a = core.Connect({"10.0.0.1:1", "ws"}, holder);
  core.Handle(a, Register("m", "phone", "secret"));
  core.CloseAll(core::CloseReason::kServerShutdown);
  const core::ConnectionId b = core.Connect({"10.0.0.2:2", "ws"}, newcomer);

  core.Handle(b, Register("m", "phone", "secret"));

  EXPECT_THAT(holder->closes, ElementsAre(core::CloseReason::kServerShutdown));
}

// The fuzzer's script for the same bug: connect; register conn 0 as alpha
// in m1 with token "secret"; CloseAll; connect; register conn 1 likewise.
TEST(CoreRegressionTest, FuzzScriptTakeoverAfterCloseAll) {
  const std::string script{0,  2, 0, 0, 0, 1, 0, 0,   // connect, register(0, m1, alpha, secret)
                           10, 1,                     // CloseAll(server_shutdown)
                           0,  2, 1, 0, 0, 1, 0, 0};  // connect, register(1, m1, alpha, secret)
  EXPECT_EQ(CoreEventsProblem(script), "");
}

// core_events_fuzz model (docs/security.md: a token binding "lasts while the
// mesh has peers and for MESH_BINDING_GRACE_SECONDS after the last one
// left"). When the sole peer of a token-bound mesh reconnects before its old
// socket is noticed dead (a takeover), LeaveMesh empties the mesh for a
// moment and MeshAuth::MeshEmptied starts the grace; nothing stops it when
// Join re-creates the mesh. After the grace the binding is dropped while the
// mesh lives, and anyone, with any token or none, joins it as an open mesh.
TEST(CoreRegressionTest, TokenBindingOutlivesATakeoverOfTheSolePeer) {
  TestClock clock;
  core::CoreConfig config;
  config.mesh_binding_grace = absl::Seconds(10);
  core::RelayCore core(config, &clock);
  auto old_socket = std::make_shared<Sink>();
  auto new_socket = std::make_shared<Sink>();
  auto stranger = std::make_shared<Sink>();
  const core::ConnectionId a = core.Connect({"10.0.0.1:1", "ws"}, old_socket);
  core.Handle(a, Register("family", "phone", "secret"));
  const core::ConnectionId b = core.Connect({"10.0.0.1:2", "ws"}, new_socket);
  core.Handle(b, Register("family", "phone", "secret"));  // the phone reconnects
  core.Disconnect(a, core::CloseReason::kClientClosed);
  clock.now += absl::Seconds(11);
  core.ExpireUnregistered();

  const core::ConnectionId c = core.Connect({"10.0.0.9:9", "ws"}, stranger);
  core.Handle(c, Register("family", "stranger", ""));

  ASSERT_FALSE(stranger->events.empty());
  EXPECT_EQ(stranger->events[0]->error().code(), "auth_failed");
  EXPECT_THAT(stranger->closes, ElementsAre(core::CloseReason::kAuthFailed));
}

// The same as a fuzz script: connect x2; register conn 0 and conn 1 as alpha
// in m1 with token "secret"; disconnect conn 0; advance 60 s twice (the
// harness's grace is 100 s); connect; register conn 2 as beta in m1, no token.
TEST(CoreRegressionTest, FuzzScriptTokenBindingAfterSolePeerTakeover) {
  const std::string script{
      0, 0,                      // connect x2
      2, 0,  0, 0,  1, 0, 0,     // register(0, m1, alpha, secret)
      2, 1,  0, 0,  1, 0, 0,     // register(1, m1, alpha, secret)
      1, 0,  0,                  // disconnect(0)
      9, 60, 9, 60,              // advance 60 s, twice
      0, 2,  2, 0,  1, 0, 0, 0,  // connect, register(2, m1, beta, no token)
  };
  EXPECT_EQ(CoreEventsProblem(script), "");
}

// core_events_fuzz (UBSan float-cast-overflow in mesh_auth.cc): a signed
// join token's expiry was `static_cast<int64_t>(expires_at * 1e6)`, undefined
// past year 294247 or for a number like 1e300, which any client can send to a
// signed mesh it registered itself. On x86 it gives INT64_MIN: the token
// counts as expired. Script: connect x2; conn 0 register_mesh m1 as alpha
// (proof by key K); conn 1 joins m1 as beta with a token bound to it, signed
// by K, expiring at 1e13 s (year 318857); then the same with 1e300.
TEST(CoreRegressionTest, FuzzScriptFarFutureSignedTokenIsValid) {
  const std::string year_318857{
      0,  0,                  // connect x2
      13, 0, 0, 0, 0, 0,      // register_mesh(0, m1, alpha), valid
      2,  1, 0, 1, 0, 0, 12,  // register(1, m1, beta) with a signed token:
      0,  1, 2, 0, 0,         //   for m1, bound to beta, expiring 1e13, nonce n1, by K
  };
  EXPECT_EQ(CoreEventsProblem(year_318857), "");
  std::string huge = year_318857;
  huge[huge.size() - 3] = 3;  // expiring 1e300
  EXPECT_EQ(CoreEventsProblem(huge), "");
}

// json_codec_fuzz: RapidJSON, the reference, accepts duplicate names and any
// number of members; once the relay refused both (issue 10) the differential
// check needed the reference to refuse them too. Both sides must agree on
// each rule, nested and escaped, and on what is still fine.
TEST(CodecRegressionTest, ReferenceAndParserAgreeOnDuplicatesAndMembersPerObject) {
  constexpr std::size_t kLimit = 1024;
  const auto members = [](std::size_t n) {
    std::string out;
    for (std::size_t i = 0; i < n; ++i) {
      if (i > 0) out += ",";
      out += "\"m" + std::to_string(i) + "\":0";
    }
    return out;
  };
  const std::vector<std::string> refused = {
      R"({"type":"llm_request","request_id":"1","prompt":"A","prompt":"B"})",
      R"({"type":"broadcast","payload":{"a":1,"\u0061":2}})",
      R"([{"k":1,"k":2}])",
      "{\"type\":\"broadcast\",\"payload\":{" + members(900) + ",\"\\u006d899\":1}}",
      "{\"type\":\"broadcast\"," + members(kLimit) + "}",
      "{\"type\":\"broadcast\",\"payload\":[{" + members(kLimit + 1) + "}]}",
  };
  const std::vector<std::string> accepted = {
      R"({"type":"broadcast","payload":{"a":1,"ab":2,"\u0062":3,"A":4,"a\u0000":5}})",
      R"({"type":"ping","k":{"k":{"k":1}},"x":[{"k":1},{"k":2}]})",
      "{\"type\":\"broadcast\"," + members(kLimit - 1) + "}",
      "{\"type\":\"broadcast\",\"payload\":[{" + members(kLimit) + "}]}",
  };
  for (const std::string& text : refused) {
    EXPECT_NE(ReferenceJsonVerdict(text, kLimit), JsonVerdict::kValid) << text.substr(0, 80);
    EXPECT_EQ(CodecProblem(text), "") << text.substr(0, 80);
  }
  for (const std::string& text : accepted) {
    EXPECT_NE(ReferenceJsonVerdict(text, kLimit), JsonVerdict::kInvalid) << text.substr(0, 80);
    EXPECT_EQ(CodecProblem(text), "") << text.substr(0, 80);
  }
}

std::vector<std::filesystem::path> Seeds(const std::string& target) {
  std::vector<std::filesystem::path> out;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::filesystem::path(RELAY_FUZZ_CORPUS_DIR) / target)) {
    if (entry.is_regular_file()) out.push_back(entry.path());
  }
  return out;
}

std::string Contents(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream data;
  data << in.rdbuf();
  return data.str();
}

TEST(FuzzCorpusTest, EveryJsonCodecSeedKeepsTheInvariants) {
  const std::vector<std::filesystem::path> seeds = Seeds("json_codec_fuzz");
  EXPECT_GE(seeds.size(), 12u);
  for (const auto& seed : seeds) {
    EXPECT_EQ(CodecProblem(Contents(seed)), "") << seed;
  }
}

TEST(FuzzCorpusTest, EveryCoreEventsSeedKeepsTheInvariants) {
  const std::vector<std::filesystem::path> seeds = Seeds("core_events_fuzz");
  EXPECT_GE(seeds.size(), 12u);
  for (const auto& seed : seeds) {
    EXPECT_EQ(CoreEventsProblem(Contents(seed)), "") << seed;
  }
}

}  // namespace
}  // namespace relay::fuzz
