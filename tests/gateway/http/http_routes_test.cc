// Tests for gateway/http/http_routes.cc over a real RelayCore: GET /,
// /health, /ready and /stats bodies, the /metrics families the gateway adds,
// and the 404 / 405 / 426 answers.
#include "gateway/http/http_routes.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "gateway/json/json_object.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/clock.h"
#include "server/core/peer_sink.h"

namespace relay::gateway {
namespace {

using ::testing::HasSubstr;

class StepClock final : public core::Clock {
 public:
  absl::Time Now() const override { return now; }
  absl::Time now = absl::FromUnixSeconds(1'700'000'000);
};

class NullSink final : public core::PeerSink {
 public:
  core::SendResult Send(const core::ServerEventPtr&) override { return core::SendResult::Queued(); }
  void Close(core::CloseReason) override {}
};

// Queues, or drops for `drop` once it is set (after the peer registered).
class DroppingSink final : public core::PeerSink {
 public:
  core::SendResult Send(const core::ServerEventPtr&) override {
    return drop ? core::SendResult::Dropped(*drop) : core::SendResult::Queued();
  }
  void Close(core::CloseReason) override {}
  std::optional<core::DropReason> drop;
};

json::Object Parse(const std::string& body) {
  json::Object obj;
  json::ParseError error;
  EXPECT_TRUE(json::ParseObject(body, 64, 1024, &obj, &error)) << body << ": " << error.message;
  return obj;
}

std::string Raw(const json::Object& obj, const std::string& key) {
  const json::Member* m = obj.Find(key);
  return m == nullptr ? "<missing>" : std::string(m->raw_value);
}

class HttpRoutesTest : public ::testing::Test {
 protected:
  core::ConnectionId Join(const std::string& mesh, const std::string& node,
                          std::shared_ptr<core::PeerSink> sink = std::make_shared<NullSink>()) {
    core::ConnectionId id = core_.Connect(core::ConnectionInfo{"127.0.0.1:1", "ws"}, sink);
    relay::v1::ClientEvent event;
    event.mutable_register_()->set_mesh_id(mesh);
    event.mutable_register_()->set_node_id(node);
    core_.Handle(id, event);
    return id;
  }

  StepClock clock_;
  core::RelayCore core_{core::CoreConfig{}, &clock_};
};

TEST_F(HttpRoutesTest, RootDescribesTheService) {
  const HttpResponse response = RouteHttp("GET", "/", core_);

  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, std::string("{\"service\":\"atmosphere-relay\",\"version\":\"") +
                               RELAY_VERSION +
                               "\",\"status\":\"running\",\"endpoints\":{\"health\":\"/health\","
                               "\"ready\":\"/ready\",\"stats\":\"/stats\",\"metrics\":\"/metrics\","
                               "\"relay\":\"/relay/{mesh_id}\"}}");
  Parse(response.body);
}

TEST_F(HttpRoutesTest, HealthCountsMeshesAndRegisteredPeers) {
  EXPECT_EQ(RouteHttp("GET", "/health", core_).body,
            R"({"status":"ok","meshes":0,"connections":0})");
  Join("a", "1");
  Join("a", "2");
  Join("b", "1");
  core_.Connect(core::ConnectionInfo{"127.0.0.1:2", "ws"}, std::make_shared<NullSink>());

  const HttpResponse response = RouteHttp("GET", "/health", core_);

  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, R"({"status":"ok","meshes":2,"connections":3})");
}

TEST_F(HttpRoutesTest, QueryStringIsIgnored) {
  EXPECT_EQ(RouteHttp("GET", "/health?verbose=1", core_).status, 200);
  EXPECT_EQ(RouteHttp("GET", "/?x", core_).status, 200);
}

TEST_F(HttpRoutesTest, StatsHasEveryFieldInOrder) {
  core::ConnectionId alice = Join("lobby", "alice");
  Join("lobby", "bob");
  core_.Connect(core::ConnectionInfo{"127.0.0.1:2", "ws"}, std::make_shared<NullSink>());
  relay::v1::ClientEvent broadcast;
  broadcast.mutable_broadcast()->set_payload("1");
  core_.Handle(alice, broadcast);
  core_.RejectUndecodable(alice, core::ErrorCode::kBadJson, "x");
  clock_.now += absl::Seconds(12);

  const HttpResponse response = RouteHttp("GET", "/stats", core_);

  EXPECT_EQ(response.status, 200);
  const json::Object obj = Parse(response.body);
  // The spec's fields, in the spec's order (later additions may sit between).
  std::vector<std::string> keys;
  for (const json::Member& m : obj.members) keys.push_back(m.key);
  std::size_t next = 0;
  for (const char* key :
       {"uptime_seconds", "version", "active_meshes", "active_connections", "open_sockets",
        "total_connections", "total_messages_received", "total_messages_relayed",
        "total_llm_requests", "errors", "closes", "refused", "limits", "drops", "auth_records"}) {
    auto it = std::find(keys.begin() + next, keys.end(), key);
    ASSERT_NE(it, keys.end()) << key << " missing or out of order in " << response.body;
    next = static_cast<std::size_t>(it - keys.begin()) + 1;
  }
  EXPECT_EQ(Raw(obj, "uptime_seconds"), "12.000000");
  EXPECT_EQ(Raw(obj, "version"), std::string("\"") + RELAY_VERSION + "\"");
  EXPECT_EQ(Raw(obj, "active_meshes"), "1");
  EXPECT_EQ(Raw(obj, "active_connections"), "2");
  EXPECT_EQ(Raw(obj, "open_sockets"), "3");
  EXPECT_EQ(Raw(obj, "total_connections"), "3");
  EXPECT_EQ(Raw(obj, "total_messages_received"), "4");
  EXPECT_EQ(Raw(obj, "total_messages_relayed"), "1");
  EXPECT_EQ(Raw(obj, "total_llm_requests"), "0");
  // Every per-client bound by its name, also at 0.
  const std::string limits_text = Raw(obj, "limits");  // the parsed spans point into it
  const json::Object limits = Parse(limits_text);
  ASSERT_EQ(limits.members.size(), core::kLimitCount);
  for (std::size_t i = 0; i < core::kLimitCount; ++i) {
    EXPECT_EQ(limits.members[i].key, core::kLimitNames[i]);
    EXPECT_EQ(limits.members[i].raw_value, "0");
  }
  EXPECT_EQ(Raw(obj, "auth_records"), "0");
  // Every drop reason by its name, also at 0.
  const std::string drops_text = Raw(obj, "drops");
  const json::Object drops = Parse(drops_text);
  ASSERT_EQ(drops.members.size(), core::kDropReasonCount);
  for (std::size_t i = 0; i < core::kDropReasonCount; ++i) {
    EXPECT_EQ(drops.members[i].key, core::kDropReasonNames[i]);
    EXPECT_EQ(drops.members[i].raw_value, "0");
  }
  const std::string errors_text = Raw(obj, "errors");
  const json::Object errors = Parse(errors_text);
  EXPECT_EQ(Raw(errors, "bad_json"), "1");
  for (const char* code : {"bad_message", "unknown_type", "not_registered", "already_registered",
                           "node_id_in_use", "unknown_target", "no_llm_peer", "llm_peer_left",
                           "too_many_requests", "kicked", "mesh_closed"}) {
    EXPECT_EQ(Raw(errors, code), "0") << code;
  }
}

// /stats is public: an open mesh is as private as its id, so no mesh id, node
// id or per-mesh figure may appear in it (the Admin API keeps the list).
TEST_F(HttpRoutesTest, StatsNamesNoMeshAndNoPeer) {
  Join("family-secret-mesh", "phone-1");
  Join("family-secret-mesh", "mac-1");
  Join("other-mesh", "alice");

  const HttpResponse response = RouteHttp("GET", "/stats", core_);

  EXPECT_EQ(response.status, 200);
  const json::Object obj = Parse(response.body);
  EXPECT_EQ(obj.Find("meshes"), nullptr) << response.body;
  EXPECT_EQ(Raw(obj, "active_meshes"), "2");
  EXPECT_EQ(Raw(obj, "active_connections"), "3");
  // "mesh_id" as a JSON string (a key or a value), not as a part of one: the
  // refusal counter "bad_mesh_id" names no mesh.
  for (const char* secret : {"family-secret-mesh", "other-mesh", "phone-1", "mac-1", "alice",
                             "peer_count", "created_at", "\"mesh_id\""}) {
    EXPECT_THAT(response.body, ::testing::Not(HasSubstr(secret))) << secret;
  }
}

TEST_F(HttpRoutesTest, StatsCountsDroppedDeliveriesByReason) {
  core::ConnectionId alice = Join("lobby", "alice");
  auto slow = std::make_shared<DroppingSink>();
  auto leaving = std::make_shared<DroppingSink>();
  Join("lobby", "slow", slow);
  Join("lobby", "leaving", leaving);
  slow->drop = core::DropReason::kSlowConsumer;
  leaving->drop = core::DropReason::kClosing;
  relay::v1::ClientEvent broadcast;
  broadcast.mutable_broadcast()->set_payload("1");

  core_.Handle(alice, broadcast);
  core_.Handle(alice, broadcast);

  const HttpResponse response = RouteHttp("GET", "/stats", core_);
  const json::Object obj = Parse(response.body);
  const std::string drops_text = Raw(obj, "drops");
  EXPECT_EQ(drops_text, R"({"closing":2,"slow_consumer":2,"unreachable":0,"resume_overflow":0})");
  // Dropped deliveries are not relayed ones.
  EXPECT_EQ(Raw(obj, "total_messages_relayed"), "0");
}

TEST_F(HttpRoutesTest, MetricsCountDroppedDeliveriesByReason) {
  core::ConnectionId alice = Join("lobby", "alice");
  auto slow = std::make_shared<DroppingSink>();
  Join("lobby", "slow", slow);
  slow->drop = core::DropReason::kSlowConsumer;
  relay::v1::ClientEvent broadcast;
  broadcast.mutable_broadcast()->set_payload("1");
  core_.Handle(alice, broadcast);
  RelayMetrics metrics;

  const HttpResponse response = RouteHttp("GET", "/metrics", core_, {}, &metrics);

  ASSERT_EQ(response.status, 200);
  EXPECT_THAT(response.body, HasSubstr("# TYPE relay_deliveries_dropped_total counter\n"));
  EXPECT_THAT(response.body, HasSubstr("# HELP relay_deliveries_dropped_total "));
  EXPECT_THAT(response.body,
              HasSubstr("relay_deliveries_dropped_total{reason=\"slow_consumer\"} 1\n"));
  // Every reason is listed, also at 0, so that a rate() has a series to read.
  EXPECT_THAT(response.body, HasSubstr("relay_deliveries_dropped_total{reason=\"closing\"} 0\n"));
  EXPECT_THAT(response.body,
              HasSubstr("relay_deliveries_dropped_total{reason=\"unreachable\"} 0\n"));
}

TEST_F(HttpRoutesTest, StatsAndMetricsShowTheRefusalsOfEveryTransport) {
  RefusalCounts refused;
  refused.Add(Refusal::kTooManyConnections);
  refused.Add(Refusal::kTooManyConnections);
  refused.Add(Refusal::kDraining);
  RelayMetrics metrics;

  const HttpResponse stats = RouteHttp("GET", "/stats", core_, refused);
  const HttpResponse exposition = RouteHttp("GET", "/metrics", core_, refused, &metrics);

  const json::Object obj = Parse(stats.body);
  EXPECT_EQ(Raw(obj, "refused"),
            R"({"too_many_connections":2,"draining":1,"too_many_handshakes":0,"bad_mesh_id":0,)"
            R"("not_found":0,"unsupported_websocket_version":0,"bad_request":0,)"
            R"("origin_not_allowed":0})");
  EXPECT_THAT(exposition.body,
              HasSubstr("relay_upgrades_refused_total{reason=\"too_many_connections\"} 2\n"));
  EXPECT_THAT(exposition.body, HasSubstr("relay_upgrades_refused_total{reason=\"draining\"} 1\n"));
}

TEST_F(HttpRoutesTest, StatsOfAnIdleRelayListsEveryErrorCode) {
  const HttpResponse response = RouteHttp("GET", "/stats", core_);

  const json::Object obj = Parse(response.body);
  EXPECT_EQ(Raw(obj, "active_meshes"), "0");
  for (const char* code : {"bad_json", "bad_message", "unknown_type", "not_registered",
                           "already_registered", "node_id_in_use", "unknown_target", "no_llm_peer",
                           "llm_peer_left", "too_many_requests", "kicked", "mesh_closed"}) {
    EXPECT_THAT(Raw(obj, "errors"), HasSubstr(std::string("\"") + code + "\":0")) << code;
  }
}

TEST_F(HttpRoutesTest, UnknownPathIsNotFound) {
  for (const char* path : {"/nope", "/healthz", "/stats/", "/relay", ""}) {
    const HttpResponse response = RouteHttp("GET", path, core_);
    EXPECT_EQ(response.status, 404) << path;
    const json::Object obj = Parse(response.body);
    EXPECT_EQ(Raw(obj, "error"), "\"not_found\"") << path;
    EXPECT_NE(obj.Find("message"), nullptr);
  }
}

std::string Header(const HttpResponse& response, const std::string& name) {
  std::string value = "<none>";
  int seen = 0;
  for (const auto& [n, v] : response.headers) {
    if (n == name) {
      value = v;
      ++seen;
    }
  }
  EXPECT_LE(seen, 1) << name << " sent twice";
  return value;
}

TEST_F(HttpRoutesTest, NonGetIsMethodNotAllowedNamingTheMethodsAllowed) {
  RelayMetrics metrics;
  for (const char* method : {"POST", "PUT", "DELETE", "PATCH", "TRACE"}) {
    for (const char* path : {"/", "/health", "/ready", "/stats"}) {
      const HttpResponse response = RouteHttp(method, path, core_);
      EXPECT_EQ(response.status, 405) << method << " " << path;
      EXPECT_EQ(Header(response, "Allow"), "GET, HEAD, OPTIONS") << method << " " << path;
      Parse(response.body);
    }
  }
  // /metrics answers no preflight, so OPTIONS is not allowed there.
  for (const char* method : {"POST", "OPTIONS"}) {
    const HttpResponse response = RouteHttp(method, "/metrics", core_, {}, &metrics);
    EXPECT_EQ(response.status, 405) << method;
    EXPECT_EQ(Header(response, "Allow"), "GET, HEAD") << method;
  }
}

// --- CORS (ALLOWED_ORIGINS) ---------------------------------------------------

net::OriginPolicy Origins(absl::string_view list) {
  absl::StatusOr<net::OriginPolicy> policy = net::OriginPolicy::Parse(list);
  EXPECT_TRUE(policy.ok()) << policy.status();
  return policy.ok() ? *policy : net::OriginPolicy();
}

TEST_F(HttpRoutesTest, AnyOriginPolicyAnswersStarWithoutVary) {
  for (const char* path : {"/", "/health", "/ready", "/stats", "/stats?x=1"}) {
    for (const char* origin : {"https://anywhere.test", ""}) {
      const HttpResponse response =
          RouteHttp("GET", path, core_, {}, nullptr, nullptr, nullptr, origin);
      EXPECT_EQ(Header(response, "Access-Control-Allow-Origin"), "*") << path << " " << origin;
      EXPECT_EQ(Header(response, "Vary"), "<none>") << path;
    }
  }
}

TEST_F(HttpRoutesTest, OriginListEchoesAnAllowedOriginWithVaryAndNothingForOthers) {
  const net::OriginPolicy origins = Origins("https://status.example.com,http://localhost:3000");
  for (const char* path : {"/", "/health", "/ready", "/stats"}) {
    const HttpResponse allowed =
        RouteHttp("GET", path, core_, {}, nullptr, nullptr, &origins, "http://localhost:3000");
    EXPECT_EQ(Header(allowed, "Access-Control-Allow-Origin"), "http://localhost:3000") << path;
    EXPECT_EQ(Header(allowed, "Vary"), "Origin") << path;
    for (const char* other : {"https://evil.test", "https://STATUS.example.com",
                              "https://status.example.com/", "null", "*", ""}) {
      const HttpResponse refused =
          RouteHttp("GET", path, core_, {}, nullptr, nullptr, &origins, other);
      EXPECT_EQ(refused.status, 200)
          << path << ": the data is public; only the browser's read is refused";
      EXPECT_EQ(Header(refused, "Access-Control-Allow-Origin"), "<none>") << path << " " << other;
      EXPECT_EQ(Header(refused, "Vary"), "Origin") << path << " " << other;
    }
  }
}

TEST_F(HttpRoutesTest, ReadyWhileDrainingStillCarriesCors) {
  const net::OriginPolicy origins = Origins("https://status.example.com");
  core_.Drain(absl::Seconds(20));
  const HttpResponse ready = RouteHttp("GET", "/ready", core_, {}, nullptr, nullptr, &origins,
                                       "https://status.example.com");
  EXPECT_EQ(ready.status, 503);
  EXPECT_EQ(Header(ready, "Access-Control-Allow-Origin"), "https://status.example.com");
}

TEST_F(HttpRoutesTest, PreflightIs204WithMethodsHeadersAndMaxAge) {
  const net::OriginPolicy origins = Origins("https://status.example.com");
  for (const net::OriginPolicy* policy :
       {static_cast<const net::OriginPolicy*>(nullptr), &origins}) {
    for (const char* path : {"/", "/health", "/ready", "/stats"}) {
      const HttpResponse response = RouteHttp("OPTIONS", path, core_, {}, nullptr, nullptr, policy,
                                              "https://status.example.com");
      EXPECT_EQ(response.status, 204) << path;
      EXPECT_EQ(response.body, "") << path;
      EXPECT_EQ(response.content_type, "") << path;
      EXPECT_EQ(Header(response, "Access-Control-Allow-Origin"),
                policy == nullptr ? "*" : "https://status.example.com")
          << path;
      EXPECT_EQ(Header(response, "Access-Control-Allow-Methods"), "GET, HEAD") << path;
      EXPECT_THAT(Header(response, "Access-Control-Allow-Headers"), HasSubstr("Content-Type"));
      EXPECT_EQ(Header(response, "Access-Control-Max-Age"), "7200") << path;
      EXPECT_EQ(Header(response, "Allow"), "GET, HEAD, OPTIONS") << path;
    }
  }
  // A preflight from an origin not listed: no permission at all.
  const HttpResponse refused =
      RouteHttp("OPTIONS", "/health", core_, {}, nullptr, nullptr, &origins, "https://evil.test");
  EXPECT_EQ(refused.status, 204);
  EXPECT_EQ(Header(refused, "Access-Control-Allow-Origin"), "<none>");
  EXPECT_EQ(Header(refused, "Access-Control-Allow-Methods"), "<none>");
  EXPECT_EQ(Header(refused, "Vary"), "Origin");
}

TEST_F(HttpRoutesTest, MetricsAndOtherPathsNeverCarryCors) {
  RelayMetrics metrics;
  for (const char* path : {"/metrics", "/nope", "/relay/x"}) {
    for (const char* method : {"GET", "HEAD"}) {
      const HttpResponse response =
          RouteHttp(method, path, core_, {}, &metrics, nullptr, nullptr, "https://anywhere.test");
      EXPECT_EQ(Header(response, "Access-Control-Allow-Origin"), "<none>") << method << " " << path;
    }
  }
}

TEST_F(HttpRoutesTest, RelayPathWithoutUpgradeIsUpgradeRequired) {
  const HttpResponse response = RouteHttp("GET", "/relay/x", core_);

  EXPECT_EQ(response.status, 426);
  const json::Object obj = Parse(response.body);
  EXPECT_NE(obj.Find("error"), nullptr);
  EXPECT_NE(obj.Find("message"), nullptr);
}

// HEAD is GET without the body, on every route and every error: the body is
// computed (its length is the Content-Length) but not sent.
TEST_F(HttpRoutesTest, HeadIsGetWithoutTheBodyOnEveryRoute) {
  RelayMetrics metrics;
  for (const char* path :
       {"/", "/health", "/ready", "/stats", "/metrics", "/nope", "/relay/x", "/health?x=1"}) {
    const HttpResponse get = RouteHttp("GET", path, core_, {}, &metrics);
    const HttpResponse head = RouteHttp("HEAD", path, core_, {}, &metrics);
    EXPECT_TRUE(get.send_body) << path;
    EXPECT_FALSE(head.send_body) << path;
    EXPECT_EQ(head.status, get.status) << path;
    EXPECT_EQ(head.content_type, get.content_type) << path;
    if (std::string(path) != "/stats" && std::string(path) != "/metrics") {  // uptime moves
      EXPECT_EQ(head.body.size(), get.body.size()) << path;
    }
  }
  EXPECT_TRUE(RouteHttp("POST", "/health", core_).send_body);
  EXPECT_EQ(RouteHttp("POST", "/health", core_).status, 405);
}

TEST_F(HttpRoutesTest, HttpErrorBodyEscapesItsStrings) {
  EXPECT_EQ(HttpErrorBody("bad_mesh_id", "mesh \"x\"\n"),
            R"({"error":"bad_mesh_id","message":"mesh \"x\"\n"})");
}

// --- readiness --------------------------------------------------------------

TEST_F(HttpRoutesTest, ReadyIsOkUntilTheCoreDrains) {
  Join("lobby", "alice");

  const HttpResponse before = RouteHttp("GET", "/ready", core_);
  core_.Drain(absl::Seconds(20));
  const HttpResponse after = RouteHttp("GET", "/ready", core_);

  EXPECT_EQ(before.status, 200);
  EXPECT_EQ(before.body, R"({"status":"ready"})");
  EXPECT_EQ(after.status, 503);
  EXPECT_EQ(after.body, R"({"status":"draining"})");
  Parse(before.body);
  Parse(after.body);
}

TEST_F(HttpRoutesTest, ReadyOfAnIdleRelayIsOk) {
  // Ready needs no peer: a fresh relay takes clients.
  EXPECT_EQ(RouteHttp("GET", "/ready", core_).status, 200);
  EXPECT_EQ(RouteHttp("GET", "/ready?probe=lb", core_).status, 200);
}

TEST_F(HttpRoutesTest, HeadAnswersReadyAndDrainingLikeGet) {
  EXPECT_EQ(RouteHttp("HEAD", "/ready", core_).status, 200);
  core_.Drain(absl::Seconds(1));
  EXPECT_EQ(RouteHttp("HEAD", "/ready", core_).status, 503);
  EXPECT_EQ(RouteHttp("GET", "/ready?x=1", core_).status, 503);
}

TEST_F(HttpRoutesTest, HealthStaysOkWhileDraining) {
  // Liveness is not readiness: a draining relay must not be restarted.
  core_.Drain(absl::Seconds(20));

  const HttpResponse health = RouteHttp("GET", "/health", core_);

  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(Raw(Parse(health.body), "status"), "\"ok\"");
}

TEST_F(HttpRoutesTest, NonGetOnReadyIsMethodNotAllowed) {
  for (const char* method : {"POST", "PUT", "DELETE"}) {
    EXPECT_EQ(RouteHttp(method, "/ready", core_).status, 405) << method;
  }
}

TEST_F(HttpRoutesTest, ReadyIsMatchedExactly) {
  for (const char* path : {"/ready/", "/readyz", "/Ready"}) {
    EXPECT_EQ(RouteHttp("GET", path, core_).status, 404) << path;
  }
}

TEST_F(HttpRoutesTest, RootListsTheReadyAndMetricsEndpoints) {
  const HttpResponse response = RouteHttp("GET", "/", core_);
  const json::Object root = Parse(response.body);  // views into response.body
  const std::string endpoints_text = Raw(root, "endpoints");
  const json::Object endpoints = Parse(endpoints_text);

  EXPECT_EQ(Raw(endpoints, "ready"), "\"/ready\"");
  EXPECT_EQ(Raw(endpoints, "metrics"), "\"/metrics\"");
  EXPECT_EQ(Raw(endpoints, "health"), "\"/health\"");
  EXPECT_EQ(Raw(endpoints, "stats"), "\"/stats\"");
}

}  // namespace
}  // namespace relay::gateway
