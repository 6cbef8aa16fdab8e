// Regression tests from fuzzing: every input that once made a harness report
// a violated invariant (tests/fuzz/*_harness.h) stays here as a unit test,
// and every seed of corpus/<target>/ is replayed through the same harness, so
// the normal and sanitizer builds check them without libFuzzer.
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "openssl/evp.h"
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
  core::SendResult Send(const core::ServerEventPtr& event) override {
    events.push_back(event);
    return core::SendResult::Queued();
  }
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
  const core::ConnectionId a = core.Connect({"10.0.0.1:1", "ws", "10.0.0.1"}, holder);
  core.Handle(a, Register("m", "phone", "secret"));
  core.CloseAll(core::CloseReason::kServerShutdown);
  const core::ConnectionId b = core.Connect({"10.0.0.2:2", "ws", "10.0.0.2"}, newcomer);

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
  const core::ConnectionId a = core.Connect({"10.0.0.1:1", "ws", "10.0.0.1"}, old_socket);
  core.Handle(a, Register("family", "phone", "secret"));
  const core::ConnectionId b = core.Connect({"10.0.0.1:2", "ws", "10.0.0.1"}, new_socket);
  core.Handle(b, Register("family", "phone", "secret"));  // the phone reconnects
  core.Disconnect(a, core::CloseReason::kClientClosed);
  clock.now += absl::Seconds(11);
  core.ExpireUnregistered();

  const core::ConnectionId c = core.Connect({"10.0.0.9:9", "ws", "10.0.0.9"}, stranger);
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
// counted as expired. Then (absl::Seconds saturates) such a token was valid,
// and pinned its nonce until 2096 or forever; since issue 10 a token may be
// valid for at most max_join_token_lifetime (30 days), from now and from its
// issued_at, so it is refused auth_failed, still without undefined behaviour
// (the sanitizer build runs this too). Script: connect x2; conn 0
// register_mesh m1 as alpha (proof by key K); conn 1 joins m1 as beta with a
// token bound to it, signed by K, expiring at 1e13 s (year 318857); then the
// same with 1e300, with exactly 30 days (valid), with 30 days and a second,
// and with a lifetime from issued_at of 30 days and a second.
TEST(CoreRegressionTest, FuzzScriptFarFutureSignedTokenIsRefusedForItsLifetime) {
  const std::string year_318857{
      0,  0,                  // connect x2
      13, 0, 0, 0, 0, 0,      // register_mesh(0, m1, alpha), valid
      2,  1, 0, 1, 0, 0, 12,  // register(1, m1, beta) with a signed token:
      0,  1, 2, 0, 0,         //   for m1, bound to beta, expiring 1e13, nonce n1, by K
  };
  EXPECT_EQ(CoreEventsProblem(year_318857), "");
  for (char expiry : {3, 5, 6, 8, 12}) {  // 1e300, 30 d, 30 d + 1 s, from issue, both 1e300
    std::string script = year_318857;
    script[script.size() - 3] = expiry;
    EXPECT_EQ(CoreEventsProblem(script), "") << "expiry choice " << int{expiry};
  }
}

// Ed25519 from a fixed seed (OpenSSL, not the code under test).
class FixedKey {
 public:
  FixedKey() {
    unsigned char seed[32];
    for (int i = 0; i < 32; ++i) seed[i] = static_cast<unsigned char>(7 * i + 1);
    key_ = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed, sizeof(seed));
  }
  ~FixedKey() { EVP_PKEY_free(key_); }
  FixedKey(const FixedKey&) = delete;
  FixedKey& operator=(const FixedKey&) = delete;

  std::string PublicB64() const {
    unsigned char raw[32];
    std::size_t len = sizeof(raw);
    EVP_PKEY_get_raw_public_key(key_, raw, &len);
    return absl::Base64Escape(absl::string_view(reinterpret_cast<char*>(raw), len));
  }
  std::string SignB64(absl::string_view message) const {
    unsigned char signature[64];
    std::size_t len = sizeof(signature);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, key_);
    EVP_DigestSign(ctx, signature, &len, reinterpret_cast<const unsigned char*>(message.data()),
                   message.size());
    EVP_MD_CTX_free(ctx);
    return absl::Base64Escape(absl::string_view(reinterpret_cast<char*>(signature), len));
  }

 private:
  EVP_PKEY* key_ = nullptr;
};

// The same rule on the core directly: a validly signed, node-bound token
// is refused (auth_failed, then closed) when it is valid for longer than 30
// days, from now or from its issued_at; exactly 30 days is admitted.
TEST(CoreRegressionTest, FarFutureSignedTokenIsRefusedForItsLifetime) {
  TestClock clock;
  core::RelayCore core(core::CoreConfig{}, &clock);
  const FixedKey key;
  auto founder = std::make_shared<Sink>();
  relay::v1::ClientEvent founding;
  founding.mutable_register_mesh()->set_mesh_id("family");
  founding.mutable_register_mesh()->set_mesh_public_key_b64(key.PublicB64());
  founding.mutable_register_mesh()->set_founder_proof_b64(key.SignB64("family"));
  *founding.mutable_register_mesh()->mutable_peer() = Register("family", "mum", "").register_();
  core.Handle(core.Connect({"10.0.0.1:1", "ws", "10.0.0.1"}, founder), founding);
  ASSERT_FALSE(founder->events.empty());
  ASSERT_TRUE(founder->events[0]->has_mesh_registered());

  const double now = absl::ToDoubleSeconds(clock.now - absl::UnixEpoch());
  const double days30 = 30 * 86400.0;
  struct Case {
    double expires_at;
    std::optional<double> issued_at;
    bool admitted;
  };
  const Case cases[] = {
      {1e13, std::nullopt, false},               // year 318857
      {1e300, std::nullopt, false},              //
      {1e300, 1e300, false},                     // no lifetime from issue, forever from now
      {now + days30 + 1, std::nullopt, false},   // a second over, from now
      {now + 3600, now + 3599 - days30, false},  // a second over, from issue
      {now + days30, std::nullopt, true},        // exactly the bound
  };
  int n = 0;
  for (const Case& c : cases) {
    ++n;
    auto sink = std::make_shared<Sink>();
    relay::v1::ClientEvent join = Register("family", absl::StrCat("phone-", n), "");
    relay::v1::SignedJoinToken* token = join.mutable_register_()->mutable_signed_token();
    token->set_present(true);
    token->set_mesh_id("family");
    token->set_node_id(join.register_().node_id());
    token->set_nonce(absl::StrCat("nonce-", n));
    token->set_issuer_id("mum");
    token->set_expires_at(c.expires_at);
    if (c.issued_at) token->set_issued_at(*c.issued_at);
    token->set_canonical(absl::StrCat("token ", n));
    token->set_signature_b64(key.SignB64(token->canonical()));
    core.Handle(core.Connect({"10.0.0.2:2", "ws", "10.0.0.2"}, sink), join);

    ASSERT_FALSE(sink->events.empty()) << "case " << n;
    if (c.admitted) {
      EXPECT_TRUE(sink->events[0]->has_joined()) << "case " << n;
      EXPECT_TRUE(sink->closes.empty()) << "case " << n;
    } else {
      EXPECT_EQ(sink->events[0]->error().code(), "auth_failed") << "case " << n;
      EXPECT_THAT(sink->closes, ElementsAre(core::CloseReason::kAuthFailed)) << "case " << n;
    }
  }
}

// core_events_fuzz (a harness bug, found once the model held a claimant's
// events): when a takeover probe ends, the claimant's held llm requests are
// all dispatched in that one step, but the model matched every request to
// the first llm_request the sinks saw, so it blamed the core for sending the
// second (same request_id, now the least loaded peer's) elsewhere. Script:
// connect x4; alpha, beta and gamma join m1 with llm; conn 3 claims beta
// (probe); conn 3 sends llm_request "b" twice (held); beta disconnects.
TEST(CoreRegressionTest, FuzzScriptHeldLlmRequestsEachGoToTheLeastLoaded) {
  const std::string script{
      0, 0, 0, 0,              // connect x4
      2, 0, 0, 0, 0, 1, 0,     // register(0, m1, alpha, caps llm)
      2, 1, 0, 1, 0, 1, 0,     // register(1, m1, beta, caps llm)
      2, 2, 0, 2, 0, 1, 0,     // register(2, m1, gamma, caps llm)
      2, 3, 0, 1, 0, 0, 0,     // register(3, m1, beta): probes conn 1
      5, 3, 2, 0, 5, 3, 2, 0,  // llm_request(3, "b") twice: held
      1, 1, 0,                 // disconnect(1): conn 3 joins, then both requests go out
  };
  EXPECT_EQ(CoreEventsProblem(script), "");
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
