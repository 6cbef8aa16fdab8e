// RelayCore against a model (see core_harness.h). Start at CoreEventsProblem().
//
// Each step performs one operation on the real core, then replays it on the
// model, which predicts every delivery and close from the pre-step state and
// then updates itself. The model is the protocol's rules (docs/protocol.md,
// docs/security.md) written as plainly as possible (vectors and linear
// scans), not a copy of the code: where the two differ, the model says what
// the documents promise. Only the choice among equally loaded llm peers is
// taken from what the core did, after checking it is a valid choice, so
// fairness tweaks do not break the harness.
//
// Mesh authentication is modelled for string tokens (open and token-bound
// meshes) and for signed meshes with two fixed Ed25519 keys: the mesh key K,
// which signs proofs and join tokens, and another key K2.
//
// The core's auth store is a ScriptedAuthStore: it answers inline, as the
// relay without a data dir does, until kStoreHold makes its conditional
// operations wait; kStoreAnswer then answers (or fails) one of them, in any
// order, and the model says which registrations wait for it
// (docs/security.md, "Admission and the auth store") and how each ends.
//
// Sinks made by kConnect can probe: the core's Probe() callback waits in
// open_probes_ until the script answers it (kProbeAnswered, kProbeTimedOut);
// kConnectUnprobed's sinks keep PeerSink's default (cannot check). Every
// bound of CoreConfig is set small (see Config()) so that scripts reach it.
#include "tests/fuzz/core_harness.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "openssl/evp.h"
#include "relay/v1/relay.pb.h"
#include "server/core/clock.h"
#include "server/core/close_reason.h"
#include "server/core/core_config.h"
#include "server/core/error_code.h"
#include "server/core/llm_dispatch.h"
#include "server/core/peer_sink.h"
#include "server/core/relay_core.h"
#include "server/core/traffic.h"
#include "server/core/unrouted_wire.h"
#include "tests/fuzz/codec_harness.h"
#include "tests/store/manual_executor.h"
#include "tests/store/scripted_auth_store.h"

namespace relay::fuzz {
namespace {

using core::CloseReason;
using core::ConnectionId;
using core::ErrorCode;
using core::SendResult;
using core::ServerEventPtr;
using relay::v1::ClientEvent;
using relay::v1::ServerEvent;

// ---------------------------------------------------------------------------
// The vocabulary scripts choose from: small, so that collisions (same node
// id, same request id) are frequent; with quotes, backslashes and
// multi-byte UTF-8, so that the encoder's escaping is exercised.
// ---------------------------------------------------------------------------

const char* const kMeshes[] = {"m1", "m2", "mesh \xc3\xbc/3"};
const char* const kNodes[] = {"alpha", "beta", "gamma-node-long",
                              "\xce\xb4\xce\xad\xce\xbb\xcf\x84\xce\xb1-\xc3\xbc-nine", "q\"\\/x"};
const char* const kTokens[] = {"", "secret", "other"};
const char* const kCaps[] = {"llm", "chat", "x\"y"};
const char* const kPayloads[] = {"null",     "{\"a\":1}", "[1,2,3]",
                                 "\"text\"", "1e400",     "{\"k\":\"\\ud800\"}"};
const char* const kRequestIds[] = {"1", "\"a\"", "\"b\"", "42"};
const CloseReason kReasons[] = {CloseReason::kClientClosed, CloseReason::kServerShutdown,
                                CloseReason::kKeepaliveTimeout, CloseReason::kTransportError};
const ErrorCode kUndecodable[] = {ErrorCode::kBadJson, ErrorCode::kBadMessage,
                                  ErrorCode::kUnknownType};

// Strings that may not read as what they are (docs: node_id and capability
// text rules), and a few that may, for node_id, name and capability.
const std::string kOddTexts[] = {
    "\xe2\x80\xae"
    "evil",  // U+202E right-to-left override
    "a\xe2\x80\x8b"
    "b",                                             // U+200B zero-width space
    std::string("a\0b", 3),                          // NUL
    "\t",                                            // a tab: control (and space)
    " ",                                             // only space
    "phone ",                                        // trailing space
    "\xc2\xa0phone",                                 // leading U+00A0 no-break space
    "a b",                                           // inner space: fine everywhere
    "x\xc2\x85y",                                    // U+0085, a C1 control
    "\xe2\x81\xa6x",                                 // U+2066 left-to-right isolate
    "\xef\xbb\xbfx",                                 // U+FEFF byte order mark
    "\xd8\x9cx",                                     // U+061C Arabic letter mark
    "\xe3\x80\x80x",                                 // leading U+3000 ideographic space
    "\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9",  // man ZWJ woman: a name, not an id
    "\xc3\xa9t\xc3\xa9",                             // fine everywhere
    "\xff",                                          // not UTF-8
    "x\xe2\x80\x8e",                                 // U+200E left-to-right mark
    "\x7f",                                          // DEL
    "x\xe1\xa0\x8e",                                 // U+180E Mongolian vowel separator
    "\xe2\x80\xa8x",  // leading U+2028 line separator: space, not a control
    "\xe2\x80\x8fx",  // U+200F right-to-left mark
    "x\xe2\x81\xa2",  // U+2062 invisible times
};

// The wire size of a connection's messages (kWireBytes), against the byte
// bucket (kRateBurstBytes) and the bytes a waiting registration may hold.
const std::size_t kWireSizes[] = {0, 1, 100, 700, 1000, 1001, 2000, 5000};
// request_id lengths in bytes (a JSON string of that many bytes): the limit,
// one over, within it, far over.
const std::size_t kLongIdBytes[] = {256, 257, 200, 4096};

constexpr double kThirtyDays = 30 * 86400.0;

// Signed join tokens: expiry relative to now, or absolute (extremes), and
// an issued_at (relative or absolute) when `issued` is set.
struct Expiry {
  double seconds;
  bool relative;
  bool issued = false;
  double issued_seconds = 0;
  bool issued_relative = false;
};
const Expiry kExpiries[] = {
    {3600, true},
    {-10, true},
    {1e13, false},  // year 318857: valid for longer than the lifetime bound
    {1e300, false},
    {-1e300, false},
    {kThirtyDays, true},                           // exactly the bound: valid
    {kThirtyDays + 1, true},                       // a second over it, from now
    {3600, true, true, 3600 - kThirtyDays, true},  // exactly the bound from issue
    {3600, true, true, 3599 - kThirtyDays, true},  // a second over it, from issue
    {3600, true, true, 0, false},                  // issued in 1970
    {3600, true, true, 7200, true},                // issued after it expires
    {3600, true, true, -1e300, false},             // issued before time
    {1e300, false, true, 1e300, false},            // no lifetime from issue, ages from now
    {60, true, true, 0, true},                     // a minute: its nonce expires soon
};
const std::string kNonces[] = {"n1", "n2", std::string(128, 'N'), std::string(129, 'N'),
                               "n3", "n4"};

// kAdvanceLong.
const absl::Duration kLongAdvances[] = {absl::Minutes(10), absl::Hours(1), absl::Hours(24),
                                        absl::Hours(24 * 30), absl::Hours(24 * 90)};

constexpr std::size_t kMaxConnections = 12;
constexpr std::size_t kMaxSteps = 400;
// CoreConfig, small enough that scripts reach every limit.
constexpr std::size_t kLlmLimit = 3;  // max_outstanding_llm_requests_per_peer
constexpr absl::Duration kRegistrationTimeout = absl::Seconds(30);
constexpr std::size_t kMaxPeersPerMesh = 4;
constexpr absl::Duration kBindingGrace = absl::Seconds(100);
constexpr double kRatePerSecond = 2;
constexpr std::size_t kRateBurst = 12;
constexpr double kRateBytesPerSecond = 200;
constexpr std::size_t kRateBurstBytes = 2000;
constexpr absl::Duration kProbeTimeout = absl::Seconds(2);
constexpr std::size_t kMaxHeldEvents = 3;         // max_events_while_registering
constexpr std::size_t kMaxHeldBytes = 1500;       // max_bytes_while_registering
constexpr std::size_t kMaxPendingLlmBytes = 500;  // two 200-byte ids do not fit
constexpr std::size_t kMaxFoundersPerMesh = 2;
constexpr std::size_t kMaxNoncesPerMesh = 3;
constexpr std::size_t kMaxAuthRecords = 5;
constexpr std::size_t kAuthRecordsPerIpPerMinute = 2;
// Defaults, restated: the documented bounds.
constexpr std::size_t kMaxIdBytes = 256;
constexpr std::size_t kMaxNonceBytes = 128;
constexpr absl::Duration kMaxTokenLifetime = absl::Hours(24 * 30);
constexpr absl::Duration kSignedMeshTtl = absl::Hours(24 * 90);
constexpr absl::Duration kCreationWindow = absl::Minutes(1);

template <typename T, std::size_t N>
const T& Pick(const T (&items)[N], std::uint8_t b) {
  return items[b % N];
}

// The operations, one per value of the operation byte (mod kOpCount).
// Arguments follow as bytes, in the order listed.
enum Op : std::uint8_t {
  kConnect = 0,         // - (its sink can probe; see kProbeAnswered)
  kDisconnect,          // conn, reason
  kRegister,            // conn, mesh, node, token, caps bits, variant
  kBroadcast,           // conn, payload
  kDirect,              // conn, target node (one more value: "nobody"), payload
  kLlmRequest,          // conn, request id, kind (odd: chat)
  kLlmResponse,         // conn, target node, request id (one more value: none)
  kPing,                // conn
  kCapabilitiesUpdate,  // conn, caps bits, variant (0: valid, 1: too many, 2: too long)
  kAdvanceAndExpire,    // seconds (mod 64), then ExpireUnregistered
  kCloseAll,            // reason
  kRejectUndecodable,   // conn, code, request id (one more value: none)
  kEmptyEvent,          // conn
  kRegisterMesh,        // conn, mesh, node, caps bits, variant (see RegisterMeshVariant)
  kConnectUnprobed,     // -: a sink that cannot probe (PeerSink's default Probe)
  kProbeAnswered,       // -: the oldest open takeover probe: its holder answered
  kProbeTimedOut,       // -: the oldest open takeover probe: no answer in time
  kWireBytes,           // conn, size (kWireSizes): the wire bytes of its later messages
  kLlmRequestLongId,    // conn, length (kLongIdBytes), letter (2), kind (odd: chat)
  kLlmResponseLongId,   // conn, target node, length (kLongIdBytes)
  kRejectLongId,        // conn, code, length (kLongIdBytes)
  kAdvanceLong,         // duration (kLongAdvances), then ExpireUnregistered
  kStoreHold,           // on (odd): the auth store's conditional operations wait from now on
  kStoreAnswer,         // which waiting operation (mod their count), fail (3 mod 4) or answer
  kUnrouted,            // conn, type (0: unspecified, 1-4: gossip...), request id (one more: none)
  kOpCount,
};

// Register variants: 0-4 valid (name absent, set, join, unicode name, name
// with quote); the rest break one limit each, or vary the text rules.
enum RegisterVariant : std::uint8_t {
  kNameAbsent = 0,
  kNameSet,
  kViaJoin,
  kNameUnicode,
  kNameQuoted,
  kEmptyNode,
  kLongNode,
  kLongName,
  kTooManyCaps,
  kLongCap,
  kEmptyMesh,
  kLongMesh,
  // A signed join token instead of the string token; five more bytes: the
  // token's mesh, node (0: none, 1: the registrant's, 2: another), expiry
  // (kExpiries), nonce (kNonces), signature (0: by K, 1: garbage, 2: by K2).
  kSignedToken,
  kSignedTokenMalformed,
  // One more byte each: a kOddTexts entry as the node_id, the name, or one
  // more capability.
  kOddNode,
  kOddName,
  kOddCap,
  kEmptyCap,  // one more capability, ""
  // A length byte (mod 13), then that many script bytes as the node_id or
  // the name: the text rules on any bytes, the model's against the core's.
  kRawNode,
  kRawName,
  kRegisterVariantCount,
};

enum RegisterMeshVariant : std::uint8_t {
  kMeshValid = 0,  // mesh key K, proof by K
  kMeshOtherId,    // names another mesh than the peer's (the URL's)
  kMeshBadKey,     // not a base64 Ed25519 key
  kMeshOtherKey,   // mesh key K2, proof by K2
  kMeshBadProof,   // mesh key K, proof garbage
  kRegisterMeshVariantCount,
};

// ---------------------------------------------------------------------------
// Ed25519 from fixed seeds (OpenSSL), to build valid proofs and tokens.
// ---------------------------------------------------------------------------

struct KeyPair {
  EVP_PKEY* key = nullptr;
  std::string public_key;  // 32 raw bytes
};

const KeyPair& Key(int which) {
  static const KeyPair* keys = [] {
    auto* pairs = new KeyPair[2];
    for (int k = 0; k < 2; ++k) {
      unsigned char seed[32];
      for (int i = 0; i < 32; ++i) seed[i] = static_cast<unsigned char>(k * 101 + i);
      pairs[k].key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed, sizeof(seed));
      unsigned char pub[32];
      std::size_t len = sizeof(pub);
      EVP_PKEY_get_raw_public_key(pairs[k].key, pub, &len);
      pairs[k].public_key.assign(reinterpret_cast<char*>(pub), len);
    }
    return pairs;
  }();
  return keys[which];
}

std::string Sign(int which, absl::string_view message) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned char signature[64];
  std::size_t len = sizeof(signature);
  EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, Key(which).key);
  EVP_DigestSign(ctx, signature, &len, reinterpret_cast<const unsigned char*>(message.data()),
                 message.size());
  EVP_MD_CTX_free(ctx);
  return std::string(reinterpret_cast<char*>(signature), len);
}

bool Verifies(int which, absl::string_view message, absl::string_view signature) {
  return signature == Sign(which, message);  // Ed25519 signatures are deterministic
}

class ByteReader {
 public:
  explicit ByteReader(absl::string_view in) : in_(in) {}
  bool done() const { return pos_ >= in_.size(); }
  std::uint8_t Next() { return pos_ < in_.size() ? static_cast<std::uint8_t>(in_[pos_++]) : 0; }

 private:
  absl::string_view in_;
  std::size_t pos_ = 0;
};

class FakeClock final : public core::Clock {
 public:
  absl::Time Now() const override { return now_; }
  void Advance(absl::Duration d) { now_ += d; }

 private:
  absl::Time now_ = absl::FromUnixMillis(1'700'000'000'250);
};

// One thing a sink saw: an event, a Close(), or a Probe() (of a sink that
// can probe: an open probe the script answers later).
struct Seen {
  int conn = -1;
  bool close = false;
  bool probe = false;
  ServerEventPtr event;  // when !close && !probe
  CloseReason reason = CloseReason::kClientClosed;
};

class Harness;

// A connection's sink. `can_probe`: Probe() keeps `done` for the script to
// call (kProbeAnswered, kProbeTimedOut) and returns true; otherwise the
// sink keeps PeerSink's default Probe (cannot check: presumed alive).
class FuzzSink : public core::PeerSink {
 public:
  FuzzSink(Harness* harness, int conn) : harness_(harness), conn_(conn) {}
  core::SendResult Send(const ServerEventPtr& event) override;
  void Close(CloseReason reason) override;

 protected:
  Harness* const harness_;
  const int conn_;
};

class ProbingFuzzSink final : public FuzzSink {
 public:
  using FuzzSink::FuzzSink;
  bool Probe(absl::Duration timeout, std::function<void(bool)> done) override;
};

// --- the text rules, restated (node_id and capabilities: no controls, no
// bidi controls or marks, no zero-width or invisible characters, no white
// space at either end; names: no controls, no bidi controls) ---------------

// Code points of well-formed UTF-8, or nullopt.
std::optional<std::vector<std::uint32_t>> CodePoints(absl::string_view s) {
  std::vector<std::uint32_t> out;
  for (std::size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    int extra = b < 0x80                ? 0
                : b >= 0xC2 && b < 0xE0 ? 1
                : b >= 0xE0 && b < 0xF0 ? 2
                : b >= 0xF0 && b < 0xF5 ? 3
                                        : -1;
    if (extra < 0) return std::nullopt;
    std::uint32_t cp = extra == 0 ? b : b & (0x3F >> extra);
    for (int k = 1; k <= extra; ++k) {
      if (i + k >= s.size()) return std::nullopt;
      const auto next = static_cast<unsigned char>(s[i + k]);
      if ((next & 0xC0) != 0x80) return std::nullopt;
      cp = cp << 6 | (next & 0x3F);
    }
    const std::uint32_t shortest[] = {0, 0x80, 0x800, 0x10000};
    if (cp < shortest[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return std::nullopt;
    }
    out.push_back(cp);
    i += extra + 1;
  }
  return out;
}

bool In(std::uint32_t c, std::initializer_list<std::pair<std::uint32_t, std::uint32_t>> ranges) {
  for (const auto& [lo, hi] : ranges) {
    if (c >= lo && c <= hi) return true;
  }
  return false;
}
bool ControlChar(std::uint32_t c) { return In(c, {{0x00, 0x1F}, {0x7F, 0x9F}}); }
bool BidiChar(std::uint32_t c) {
  return In(c, {{0x061C, 0x061C}, {0x200E, 0x200F}, {0x202A, 0x202E}, {0x2066, 0x2069}});
}
bool InvisibleChar(std::uint32_t c) {
  return In(c, {{0x180E, 0x180E}, {0x200B, 0x200D}, {0x2060, 0x2064}, {0xFEFF, 0xFEFF}});
}
bool SpaceChar(std::uint32_t c) {
  return In(c, {{0x09, 0x0D},
                {0x20, 0x20},
                {0x85, 0x85},
                {0xA0, 0xA0},
                {0x1680, 0x1680},
                {0x2000, 0x200A},
                {0x2028, 0x2029},
                {0x202F, 0x202F},
                {0x205F, 0x205F},
                {0x3000, 0x3000}});
}

bool IdentifierTextOk(absl::string_view id) {
  const std::optional<std::vector<std::uint32_t>> cps = CodePoints(id);
  if (!cps) return false;
  for (std::uint32_t c : *cps) {
    if (ControlChar(c) || BidiChar(c) || InvisibleChar(c)) return false;
  }
  return cps->empty() || (!SpaceChar(cps->front()) && !SpaceChar(cps->back()));
}

bool NameTextOk(absl::string_view name) {
  const std::optional<std::vector<std::uint32_t>> cps = CodePoints(name);
  if (!cps) return false;
  for (std::uint32_t c : *cps) {
    if (ControlChar(c) || BidiChar(c)) return false;
  }
  return true;
}

// The first `n` UTF-8 characters of `s`: the default name of a peer.
std::string FirstChars(absl::string_view s, std::size_t n) {
  std::size_t i = 0;
  for (std::size_t chars = 0; i < s.size() && chars < n; ++chars) {
    ++i;
    while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) ++i;
  }
  return std::string(s.substr(0, i));
}

// Cheap: the harness names every step, and text-format protos are slow.
std::string ClientEventName(const ClientEvent& event) {
  switch (event.event_case()) {
    case ClientEvent::kRegister:
      return "register";
    case ClientEvent::kBroadcast:
      return absl::StrCat("broadcast ", event.broadcast().payload());
    case ClientEvent::kDirect:
      return absl::StrCat("direct to ", absl::CHexEscape(event.direct().target()));
    case ClientEvent::kLlmRequest:
      return absl::StrCat("llm_request ", event.llm_request().request_id());
    case ClientEvent::kLlmResponse:
      return absl::StrCat("llm_response to ", absl::CHexEscape(event.llm_response().target()),
                          " for ", event.llm_response().request_id());
    case ClientEvent::kPing:
      return "ping";
    case ClientEvent::kCapabilitiesUpdate:
      return absl::StrCat("capabilities_update (", event.capabilities_update().capabilities_size(),
                          ")");
    case ClientEvent::kRegisterMesh:
      return "register_mesh";
    case ClientEvent::kUnrouted:
      return absl::StrCat("unrouted ", relay::v1::UnroutedType_Name(event.unrouted().type()), " ",
                          event.unrouted().request_id());
    case ClientEvent::kAck:
      return absl::StrCat("ack ", event.ack().seq());
    case ClientEvent::EVENT_NOT_SET:
      return "an empty event";
  }
  return "?";
}

std::string Show(absl::string_view s) { return absl::StrCat("\"", absl::CHexEscape(s), "\""); }

std::string Describe(const Seen& s) {
  if (s.close)
    return absl::StrCat("conn ", s.conn, " Close(", core::CloseReasonName(s.reason), ")");
  if (s.probe) return absl::StrCat("conn ", s.conn, " Probe()");
  return absl::StrCat("conn ", s.conn, " Send(", s.event->ShortDebugString(), ")");
}

// RELAY_FUZZ_TRACE=1 prints every step and what the sinks saw (to read a
// crash input: docs/testing.md).
bool Tracing() {
  static const bool tracing = [] {
    const char* env = std::getenv("RELAY_FUZZ_TRACE");
    return env != nullptr && env[0] != '\0' && env[0] != '0';
  }();
  return tracing;
}

// A request_id that is a JSON string of exactly `bytes` bytes.
std::string LongRequestId(std::size_t bytes, char letter) {
  return absl::StrCat("\"", std::string(bytes - 2, letter), "\"");
}

class Harness {
 public:
  Harness() : core_(Config(), &clock_, &store_, &executor_), started_at_(clock_.Now()) {}

  std::string Run(absl::string_view input) {
    ByteReader in(input);
    for (std::size_t step = 0; step < kMaxSteps && !in.done(); ++step) {
      seen_.clear();
      llm_seen_ = 0;
      std::string op = Step(in);
      if (Tracing()) {
        std::fprintf(stderr, "step %zu: %s\n", step, op.c_str());
        for (const Seen& s : seen_) std::fprintf(stderr, "    %s\n", Describe(s).c_str());
      }
      if (problem_.empty()) CompareDeliveries();
      if (problem_.empty()) CheckViews();
      if (!problem_.empty()) return absl::StrCat("step ", step, " (", op, "): ", problem_);
    }
    return "";
  }

  // --- the sinks report here ---------------------------------------------
  void OnSend(int conn, const ServerEventPtr& event) {
    const Conn& c = conns_[conn];
    if (c.sink_closed || c.sink_disconnected) {
      Fail(absl::StrCat("event delivered to conn ", conn, " after ",
                        c.sink_disconnected ? "Disconnect" : "Close", ": ",
                        event->ShortDebugString()));
    }
    if (std::string p = ServerFrameProblem(*event); !p.empty()) Fail(p);
    seen_.push_back(Seen{conn, false, false, event, CloseReason::kClientClosed});
  }
  void OnClose(int conn, CloseReason reason) {
    Conn& c = conns_[conn];
    if (c.sink_closed) Fail(absl::StrCat("conn ", conn, " asked to Close twice"));
    if (c.sink_disconnected) Fail(absl::StrCat("conn ", conn, " asked to Close after Disconnect"));
    c.sink_closed = true;
    seen_.push_back(Seen{conn, true, false, nullptr, reason});
  }
  // The core asks whether `conn`'s peer is alive: the probe stays open
  // until the script answers it.
  void OnProbe(int conn, absl::Duration timeout, std::function<void(bool)> done) {
    const Conn& c = conns_[conn];
    if (c.sink_closed || c.sink_disconnected) {
      Fail(absl::StrCat("conn ", conn, " probed after ",
                        c.sink_disconnected ? "Disconnect" : "Close"));
    }
    if (timeout != kProbeTimeout) {
      Fail(absl::StrCat("conn ", conn, " probed with timeout ", absl::FormatDuration(timeout),
                        ", configured ", absl::FormatDuration(kProbeTimeout)));
    }
    if (!done) Fail(absl::StrCat("conn ", conn, " probed without a callback"));
    seen_.push_back(Seen{conn, false, true, nullptr, CloseReason::kClientClosed});
    open_probes_.push_back(std::move(done));
  }

 private:
  // What a claimant sent while its registration waited for a probe.
  struct Held {
    ClientEvent event;
    std::size_t wire_bytes = 0;
    std::optional<ErrorCode> undecodable;  // RejectUndecodable: the code to answer
    std::string request_id;
  };

  // Model of one connection.
  struct Conn {
    ConnectionId id = 0;
    std::shared_ptr<FuzzSink> sink;
    bool can_probe = true;
    std::string client_ip;
    std::string remote;
    absl::Time opened_at;
    bool open = true;      // not Disconnect()ed
    bool closing = false;  // Close() asked or Disconnect()ed: no more deliveries
    // What the sink saw, independent of the model.
    bool sink_closed = false;
    bool sink_disconnected = false;
    std::size_t wire_bytes = 0;  // of each message it sends (kWireBytes)

    std::string mesh;  // empty: not registered
    std::string node, name;
    std::string credential;    // who may take the node_id over: same credential
    bool proves_node = false;  // false in an open mesh: a takeover probes first
    std::vector<std::string> caps;
    absl::Time joined_at;
    std::uint64_t messages_in = 0;
    std::uint64_t messages_out = 0;

    // Rate limits: token buckets on messages and on wire bytes, full at the
    // start.
    double rate_tokens = kRateBurst;
    double byte_tokens = kRateBurstBytes;
    absl::Time rate_refilled_at;
    std::size_t refusals_in_row = 0;

    // Open-mesh takeover: this connection's registration waits for the
    // probe of `awaiting_holder`, holding what it sends; a holder being
    // probed names its `claimant`; `probed_holder` may be taken over
    // unprobed by the re-run registration.
    int awaiting_holder = -1;
    relay::v1::Register pending_register;
    std::deque<Held> held;
    std::size_t held_bytes = 0;
    int claimant = -1;
    int probed_holder = -1;
    // The auth store decides its registration: what it sends is held, as
    // for a claimant.
    bool admitting = false;

    bool registered() const { return !mesh.empty(); }
    bool waiting() const { return awaiting_holder >= 0 || admitting; }
    // The default LLM_CAPABILITIES, said the reference relay's way: "llm" or
    // "chat", or a name containing "llamafarm" (docs/protocol.md).
    bool HasLlm() const {
      return std::any_of(caps.begin(), caps.end(), [](const std::string& cap) {
        return cap == "llm" || cap == "chat" || cap.find("llamafarm") != std::string::npos;
      });
    }
  };
  struct Mesh {
    std::vector<int> peers;  // join order
    absl::Time created_at;
    std::uint64_t relayed = 0;
  };
  struct Pending {
    int requester;
    std::string request_id;
    int responder;
    std::uint64_t order;
  };
  // A token-bound mesh's token; its grace runs only while the mesh is empty.
  struct Binding {
    std::string token;
    std::optional<absl::Time> expires_at;
    // Made or revived by an admission the store answered later: its
    // registrant may have left, so at this time it goes unless its mesh is
    // live (then it waits for the mesh to empty).
    std::optional<absl::Time> watch_at;
  };
  struct SignedMesh {
    int key = 0;  // 0: K, 1: K2
    std::vector<std::string> founders;
    absl::Time last_used;  // registered, proved again, joined, emptied
  };
  struct UsedNonce {
    std::string node;
    absl::Time expires_at;
  };
  // Authentication records one client IP created in the minute that began
  // with the first of them.
  struct CreationWindow {
    absl::Time started;
    std::size_t created = 0;
  };
  // The model's side of an open probe (open_probes_ holds the core's).
  struct Probe {
    int holder;
    int claimant;
  };
  // How an admission ends.
  struct Admission {
    enum Kind { kAdmitted, kAuthFailed, kAuthUnavailable, kRateLimited } kind = kAdmitted;
    std::string credential;
    bool proves_node = true;
  };
  static Admission Refused(Admission::Kind kind) { return Admission{kind, "", false}; }
  // A registration the auth store decides: what it asked and what the store
  // answered already. Decisions are as of the registration (`now`).
  struct Attempt {
    int conn = -1;
    bool founding = false;            // register_mesh (request), else register (reg)
    relay::v1::Register reg;          // the register, or register_mesh's peer
    relay::v1::RegisterMesh request;  // register_mesh only
    bool mesh_live = false;           // when it asked (or found live open since)
    bool looked_up = false;
    bool late = false;  // a store answer came in a later step
    absl::Time now;
  };
  // A store operation on its way, named as ScriptedAuthStore names it.
  struct StoreOp {
    enum Kind { kLookup, kBind, kSign, kNonce } kind = kLookup;
    std::shared_ptr<Attempt> attempt;
    std::string mesh;
    std::string token;        // kBind
    std::string nonce, node;  // kNonce
    absl::Time nonce_expires_at;
    int key = 0;          // kSign: the mesh key
    std::string founder;  // kSign
    bool founds = false;  // kSign: a new mesh, a new record
    // kBind, kSign: the mesh's open admissions when it was sent.
    std::uint64_t open_grants = 0;

    std::string What() const {
      switch (kind) {
        case kLookup:
          return absl::StrCat("lookup ", mesh);
        case kBind:
          return absl::StrCat("bind ", mesh);
        case kSign:
          return absl::StrCat("sign ", mesh);
        case kNonce:
          return absl::StrCat("nonce ", mesh, "/", nonce);
      }
      return "?";
    }
  };
  // Claims of one mesh on their way.
  struct Inflight {
    std::size_t claims = 0;        // bind, sign
    std::size_t nonce_claims = 0;  // first uses of nonces
    std::uint64_t open_grants = 0;
  };

  static core::CoreConfig Config() {
    core::CoreConfig config;
    config.registration_timeout = kRegistrationTimeout;
    config.max_outstanding_llm_requests_per_peer = kLlmLimit;
    config.max_peers_per_mesh = kMaxPeersPerMesh;
    config.mesh_binding_grace = kBindingGrace;
    config.rate_limit_per_second = kRatePerSecond;
    config.rate_limit_burst = kRateBurst;
    config.rate_limit_bytes_per_second = kRateBytesPerSecond;
    config.rate_limit_burst_bytes = kRateBurstBytes;
    config.takeover_probe_timeout = kProbeTimeout;
    config.max_events_while_registering = kMaxHeldEvents;
    config.max_bytes_while_registering = kMaxHeldBytes;
    config.max_pending_llm_bytes_per_peer = kMaxPendingLlmBytes;
    config.max_founders_per_mesh = kMaxFoundersPerMesh;
    config.max_nonces_per_mesh = kMaxNoncesPerMesh;
    config.max_auth_records = kMaxAuthRecords;
    config.auth_records_per_ip_per_minute = kAuthRecordsPerIpPerMinute;
    config.max_id_bytes = kMaxIdBytes;
    config.max_nonce_bytes = kMaxNonceBytes;
    config.max_join_token_lifetime = kMaxTokenLifetime;
    config.signed_mesh_ttl = kSignedMeshTtl;
    return config;
  }

  void Fail(std::string what) {
    if (problem_.empty()) problem_ = std::move(what);
  }

  // --- one step -------------------------------------------------------------

  // Performs one operation on the core and on the model; returns its name.
  std::string Step(ByteReader& in) {
    const Op op = static_cast<Op>(in.Next() % kOpCount);
    if (op == kConnect) return Connect(/*can_probe=*/true);
    if (op == kConnectUnprobed) return Connect(/*can_probe=*/false);
    if (op == kAdvanceAndExpire) return AdvanceAndExpire(absl::Seconds(in.Next() % 64));
    if (op == kAdvanceLong) return AdvanceAndExpire(Pick(kLongAdvances, in.Next()));
    if (op == kCloseAll) return CloseAll(Pick(kReasons, in.Next()));
    if (op == kProbeAnswered) return AnswerProbe(/*answered=*/true);
    if (op == kProbeTimedOut) return AnswerProbe(/*answered=*/false);
    if (op == kStoreHold) {
      store_holds_ = in.Next() % 2 == 1;
      store_.hold(store_holds_);
      return store_holds_ ? "the auth store holds its answers" : "the auth store answers inline";
    }
    if (op == kStoreAnswer) {
      const std::uint8_t which = in.Next();
      return AnswerStore(which, /*fail=*/in.Next() % 4 == 3);
    }
    if (conns_.empty()) return "no connection yet";
    const int c = in.Next() % static_cast<int>(conns_.size());
    switch (op) {
      case kDisconnect:
        return Disconnect(c, Pick(kReasons, in.Next()));
      case kRegister: {
        const std::string mesh = Pick(kMeshes, in.Next());
        const std::string node = Pick(kNodes, in.Next());
        const std::string token = Pick(kTokens, in.Next());
        const std::uint8_t caps = in.Next();
        return Register(c, mesh, node, token, caps, in.Next() % kRegisterVariantCount, in);
      }
      case kRegisterMesh: {
        const std::string mesh = Pick(kMeshes, in.Next());
        const std::string node = Pick(kNodes, in.Next());
        const std::uint8_t caps = in.Next();
        return RegisterMesh(c, mesh, node, caps, in.Next() % kRegisterMeshVariantCount);
      }
      case kBroadcast: {
        ClientEvent event;
        event.mutable_broadcast()->set_payload(Pick(kPayloads, in.Next()));
        return Handle(c, event);
      }
      case kDirect: {
        ClientEvent event;
        const std::uint8_t t = in.Next() % (std::size(kNodes) + 1);
        event.mutable_direct()->set_target(t < std::size(kNodes) ? kNodes[t] : "nobody");
        event.mutable_direct()->set_payload(Pick(kPayloads, in.Next()));
        return Handle(c, event);
      }
      case kLlmRequest: {
        const std::string request_id = Pick(kRequestIds, in.Next());
        return LlmRequest(c, request_id, in.Next());
      }
      case kLlmRequestLongId: {
        const std::size_t bytes = Pick(kLongIdBytes, in.Next());
        const std::string request_id = LongRequestId(bytes, in.Next() % 2 == 0 ? 'r' : 's');
        return LlmRequest(c, request_id, in.Next());
      }
      case kLlmResponse: {
        const std::string target = Pick(kNodes, in.Next());
        const std::uint8_t r = in.Next() % (std::size(kRequestIds) + 1);
        return LlmResponse(c, target, r < std::size(kRequestIds) ? kRequestIds[r] : nullptr);
      }
      case kLlmResponseLongId: {
        const std::string target = Pick(kNodes, in.Next());
        const std::string request_id = LongRequestId(Pick(kLongIdBytes, in.Next()), 'r');
        return LlmResponse(c, target, request_id.c_str());
      }
      case kPing: {
        ClientEvent event;
        event.mutable_ping();
        return Handle(c, event);
      }
      case kCapabilitiesUpdate: {
        ClientEvent event;
        auto* update = event.mutable_capabilities_update();
        const std::uint8_t bits = in.Next();
        for (std::size_t i = 0; i < std::size(kCaps); ++i) {
          if (bits & (1u << i)) update->add_capabilities(kCaps[i]);
        }
        switch (in.Next() % 3) {
          case 1:
            for (int i = 0; i < 65; ++i) update->add_capabilities("c");
            break;
          case 2:
            update->add_capabilities(std::string(129, 'c'));
            break;
          default:
            break;
        }
        return Handle(c, event);
      }
      case kRejectUndecodable: {
        const ErrorCode code = Pick(kUndecodable, in.Next());
        const std::uint8_t r = in.Next() % (std::size(kRequestIds) + 1);
        const std::string request_id = r < std::size(kRequestIds) ? kRequestIds[r] : "";
        return RejectUndecodable(c, code, request_id);
      }
      case kRejectLongId: {
        const ErrorCode code = Pick(kUndecodable, in.Next());
        return RejectUndecodable(c, code, LongRequestId(Pick(kLongIdBytes, in.Next()), 'r'));
      }
      case kEmptyEvent:
        return Handle(c, ClientEvent());
      case kUnrouted: {
        ClientEvent event;
        event.mutable_unrouted()->set_type(static_cast<relay::v1::UnroutedType>(in.Next() % 5));
        const std::uint8_t r = in.Next() % (std::size(kRequestIds) + 1);
        if (r < std::size(kRequestIds)) event.mutable_unrouted()->set_request_id(kRequestIds[r]);
        return Handle(c, event);
      }
      case kWireBytes:
        conns_[c].wire_bytes = Pick(kWireSizes, in.Next());
        return absl::StrCat("conn ", c, " messages are ", conns_[c].wire_bytes, " wire bytes");
      default:
        return "unreachable";
    }
  }

  std::string LlmRequest(int c, const std::string& request_id, std::uint8_t kind) {
    ClientEvent event;
    auto* req = event.mutable_llm_request();
    req->set_request_id(request_id);
    req->set_kind(kind % 2 == 1 ? relay::v1::LLM_REQUEST_KIND_CHAT
                                : relay::v1::LLM_REQUEST_KIND_LLM);
    req->set_members("\"prompt\":\"hi\"");
    req->set_add_messages(true);
    req->set_prompt_for_messages("hi");
    return Handle(c, event);
  }

  std::string LlmResponse(int c, const std::string& target, const char* request_id) {
    ClientEvent event;
    auto* resp = event.mutable_llm_response();
    resp->set_target(target);
    if (request_id != nullptr) resp->set_request_id(request_id);
    resp->set_members("\"response\":\"ok\"");
    return Handle(c, event);
  }

  std::string Connect(bool can_probe) {
    if (conns_.size() >= kMaxConnections) return "connect (at the limit: none)";
    const int index = static_cast<int>(conns_.size());
    Conn c;
    c.can_probe = can_probe;
    c.sink = can_probe ? std::make_shared<ProbingFuzzSink>(this, index)
                       : std::make_shared<FuzzSink>(this, index);
    // Three client IPs, so that connections share per-IP budgets.
    c.client_ip = absl::StrCat("10.0.0.", index % 3 + 1);
    c.remote = absl::StrCat(c.client_ip, ":", 40000 + index);
    c.opened_at = clock_.Now();
    c.rate_refilled_at = c.opened_at;
    conns_.push_back(c);
    const ConnectionId id =
        core_.Connect(core::ConnectionInfo{c.remote, "ws", c.client_ip}, c.sink);
    conns_[index].id = id;
    for (int i = 0; i < index; ++i) {
      if (conns_[i].id == id) Fail(absl::StrCat("connection id ", id, " reused"));
    }
    ++total_connections_;
    return absl::StrCat("connect -> conn ", index, can_probe ? "" : " (cannot probe)");
  }

  std::string Disconnect(int c, CloseReason reason) {
    Conn& conn = conns_[c];
    const bool was_open = conn.open;
    conn.sink_disconnected = true;  // nothing may reach it from now on
    core_.Disconnect(conn.id, reason);
    if (was_open) {
      conn.open = false;
      conn.closing = true;
      ++closes_[static_cast<std::size_t>(reason)];
      if (conn.registered()) LeaveMesh(c, /*announce=*/true);
      // A claim it waited on ends with it; a claim on it goes on, as if
      // its probe went unanswered.
      if (conn.awaiting_holder >= 0 && conns_[conn.awaiting_holder].claimant == c) {
        conns_[conn.awaiting_holder].claimant = -1;
      }
      conn.awaiting_holder = -1;
      conn.admitting = false;  // the store's answer finds nobody
      conn.held.clear();
      conn.held_bytes = 0;
      const int claimant = conn.claimant;
      conn.claimant = -1;
      if (claimant >= 0) ModelProbeAnswered(c, claimant, /*answered=*/false);
    }
    return absl::StrCat("disconnect conn ", c, was_open ? "" : " (again)");
  }

  // The script answers the oldest open probe, on the core and on the model.
  std::string AnswerProbe(bool answered) {
    if (open_probes_.empty()) return "no open probe";
    std::function<void(bool)> done = std::move(open_probes_.front());
    open_probes_.pop_front();
    const Probe probe = model_probes_.front();
    model_probes_.pop_front();
    done(answered);
    ModelProbeAnswered(probe.holder, probe.claimant, answered);
    return absl::StrCat("probe of conn ", probe.holder, " for conn ", probe.claimant, ": ",
                        answered ? "answered" : "no answer");
  }

  std::string AdvanceAndExpire(absl::Duration by) {
    clock_.Advance(by);
    core_.ExpireUnregistered();
    const absl::Time now = clock_.Now();
    // A binding in its grace holds through its expires_at, as a join token
    // is valid through its expiry (and as the core did before fa59e75).
    for (auto it = bindings_.begin(); it != bindings_.end();) {
      Binding& b = it->second;
      if (b.expires_at) {
        it = *b.expires_at < now ? bindings_.erase(it) : std::next(it);
        continue;
      }
      // Watched (answered late): gone unless its mesh is live; a live one
      // waits for the mesh to empty.
      if (b.watch_at && *b.watch_at < now) {
        if (meshes_.count(it->first) == 0) {
          it = bindings_.erase(it);
          continue;
        }
        b.watch_at.reset();
      }
      ++it;
    }
    // A signed mesh nobody used for longer than the TTL is forgotten with its
    // nonces (a live mesh is in use); like every record, it holds through
    // its expiry instant.
    for (auto it = signed_.begin(); it != signed_.end();) {
      if (meshes_.count(it->first) == 0 && now - it->second.last_used > kSignedMeshTtl) {
        for (auto n = nonces_.begin(); n != nonces_.end();) {
          n = n->first.first == it->first ? nonces_.erase(n) : ++n;
        }
        it = signed_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto it = nonces_.begin(); it != nonces_.end();) {
      it = it->second.expires_at < now ? nonces_.erase(it) : ++it;
    }
    const absl::Time deadline = now - kRegistrationTimeout;
    for (int i = 0; i < static_cast<int>(conns_.size()); ++i) {
      Conn& conn = conns_[i];
      if (conn.open && !conn.closing && !conn.registered() && conn.opened_at <= deadline) {
        conn.closing = true;
        ExpectClose(i, CloseReason::kRegistrationTimeout);
      }
    }
    closes_in_any_order_ = true;  // the core walks a hash map
    return absl::StrCat("advance ", absl::FormatDuration(by), " + ExpireUnregistered");
  }

  std::string CloseAll(CloseReason reason) {
    core_.CloseAll(reason);
    for (int i = 0; i < static_cast<int>(conns_.size()); ++i) {
      Conn& conn = conns_[i];
      if (conn.open && !conn.closing) {
        conn.closing = true;
        ExpectClose(i, reason);
      }
    }
    closes_in_any_order_ = true;
    return absl::StrCat("CloseAll(", core::CloseReasonName(reason), ")");
  }

  std::string RejectUndecodable(int c, ErrorCode code, const std::string& request_id) {
    Conn& conn = conns_[c];
    core_.RejectUndecodable(conn.id, code, "undecodable", request_id, conn.wire_bytes);
    const std::string name = absl::StrCat("reject conn ", c, " ", core::ErrorCodeName(code),
                                          " request_id of ", request_id.size(), " bytes");
    if (!conn.open || conn.closing) return name;
    ++messages_received_;
    ++conn.messages_in;
    if (!AdmitByRate(c)) return name;
    if (conn.waiting()) {
      Held held;
      held.wire_bytes = conn.wire_bytes;
      held.undecodable = code;
      held.request_id = request_id;
      Hold(c, std::move(held));
      return absl::StrCat(name, " (waits for its registration)");
    }
    SendError(c, code, request_id);
    return name;
  }

  std::string Register(int c, const std::string& mesh_id, const std::string& node,
                       const std::string& token, std::uint8_t cap_bits, int variant,
                       ByteReader& in) {
    ClientEvent event;
    relay::v1::Register* reg = event.mutable_register_();
    reg->set_mesh_id(mesh_id);
    reg->set_node_id(node);
    reg->set_token(token);
    for (std::size_t i = 0; i < std::size(kCaps); ++i) {
      if (cap_bits & (1u << i)) reg->add_capabilities(kCaps[i]);
    }
    switch (variant) {
      case kNameSet:
        reg->set_name("Custom name");
        break;
      case kViaJoin:
        reg->set_via_join(true);
        break;
      case kNameUnicode:
        reg->set_name("\xe5\x90\x8d\xe5\x89\x8d");
        break;
      case kNameQuoted:
        reg->set_name("say \"hi\" \\o/");
        break;
      case kEmptyNode:
        reg->set_node_id("");
        break;
      case kLongNode:
        reg->set_node_id(std::string(257, 'n'));
        break;
      case kLongName:
        reg->set_name(std::string(257, 'n'));
        break;
      case kTooManyCaps:
        for (int i = 0; i < 65; ++i) reg->add_capabilities("c");
        break;
      case kLongCap:
        reg->add_capabilities(std::string(129, 'c'));
        break;
      case kEmptyMesh:
        reg->set_mesh_id("");
        break;
      case kLongMesh:
        reg->set_mesh_id(std::string(257, 'm'));
        break;
      case kSignedToken:
        SetSignedToken(reg, in);
        break;
      case kSignedTokenMalformed:
        reg->mutable_signed_token()->set_present(true);
        reg->mutable_signed_token()->set_malformed("the token is not a JSON object");
        break;
      case kOddNode:
        reg->set_node_id(Pick(kOddTexts, in.Next()));
        break;
      case kOddName:
        reg->set_name(Pick(kOddTexts, in.Next()));
        break;
      case kOddCap:
        reg->add_capabilities(Pick(kOddTexts, in.Next()));
        break;
      case kEmptyCap:
        reg->add_capabilities("");
        break;
      case kRawNode:
        reg->set_node_id(RawText(in));
        break;
      case kRawName:
        reg->set_name(RawText(in));
        break;
      default:
        break;
    }
    std::string name = Handle(c, event);
    return absl::StrCat(name, " as ", Show(reg->node_id()), " in ",
                        Show(reg->mesh_id().substr(0, 16)), " token ", Show(token), " variant ",
                        variant);
  }

  static std::string RawText(ByteReader& in) {
    std::string raw(in.Next() % 13, '\0');
    for (char& ch : raw) ch = static_cast<char>(in.Next());
    return raw;
  }

  // A signed join token as the gateway's decoder fills it in; `canonical`
  // stands for the bytes the signature covers.
  void SetSignedToken(relay::v1::Register* reg, ByteReader& in) {
    relay::v1::SignedJoinToken* token = reg->mutable_signed_token();
    token->set_present(true);
    token->set_mesh_id(Pick(kMeshes, in.Next()));
    switch (in.Next() % 3) {
      case 1:
        token->set_node_id(reg->node_id());
        break;
      case 2:
        token->set_node_id(reg->node_id() == kNodes[0] ? kNodes[1] : kNodes[0]);
        break;
      default:
        break;  // unbound
    }
    const Expiry& expiry = Pick(kExpiries, in.Next());
    const double now = Epoch(clock_.Now());
    token->set_expires_at(expiry.relative ? now + expiry.seconds : expiry.seconds);
    if (expiry.issued) {
      token->set_issued_at(expiry.issued_relative ? now + expiry.issued_seconds
                                                  : expiry.issued_seconds);
    }
    token->set_issuer_id("issuer");
    token->set_nonce(Pick(kNonces, in.Next()));
    token->set_canonical(absl::StrCat(
        "{\"mesh_id\":", token->mesh_id(), ",\"node_id\":", token->node_id(),
        ",\"nonce\":", token->nonce(), ",\"expires_at\":", token->expires_at(),
        token->has_issued_at() ? absl::StrCat(",\"issued_at\":", token->issued_at()) : "", "}"));
    switch (in.Next() % 3) {
      case 0:
        token->set_signature_b64(absl::Base64Escape(Sign(0, token->canonical())));
        break;
      case 1:
        token->set_signature_b64("AAAA");
        break;
      default:
        token->set_signature_b64(absl::Base64Escape(Sign(1, token->canonical())));
        break;
    }
  }

  std::string RegisterMesh(int c, const std::string& mesh_id, const std::string& node,
                           std::uint8_t cap_bits, int variant) {
    ClientEvent event;
    relay::v1::RegisterMesh* request = event.mutable_register_mesh();
    relay::v1::Register* peer = request->mutable_peer();
    peer->set_mesh_id(mesh_id);
    peer->set_node_id(node);
    for (std::size_t i = 0; i < std::size(kCaps); ++i) {
      if (cap_bits & (1u << i)) peer->add_capabilities(kCaps[i]);
    }
    request->set_mesh_id(variant == kMeshOtherId ? "another mesh" : mesh_id);
    const int key = variant == kMeshOtherKey ? 1 : 0;
    request->set_mesh_public_key_b64(
        variant == kMeshBadKey ? "not a key" : absl::Base64Escape(Key(key).public_key));
    request->set_founder_proof_b64(
        variant == kMeshBadProof ? "AAAA" : absl::Base64Escape(Sign(key, mesh_id)));
    std::string name = Handle(c, event);
    return absl::StrCat(name, " for ", Show(mesh_id), " as ", Show(node), " variant ", variant);
  }

  // Any ClientEvent: the core, then the model.
  std::string Handle(int c, const ClientEvent& event) {
    core_.Handle(conns_[c].id, event, conns_[c].wire_bytes);
    std::string name = absl::StrCat("conn ", c, " sends ", ClientEventName(event));
    Conn& conn = conns_[c];
    if (!conn.open || conn.closing) return absl::StrCat(name, " (ignored: closing)");
    ++messages_received_;
    ++conn.messages_in;
    if (!AdmitByRate(c)) return absl::StrCat(name, " (over the rate)");
    if (conn.waiting()) {
      Held held;
      held.event = event;
      held.wire_bytes = conn.wire_bytes;
      Hold(c, std::move(held));
      return absl::StrCat(name, " (waits for its registration)");
    }
    Dispatch(c, event);
    return name;
  }

  // An admitted event (rate, not waiting for a probe) on the model.
  void Dispatch(int c, const ClientEvent& event) {
    Conn& conn = conns_[c];
    if (event.has_register_()) return ModelRegister(c, event.register_());
    if (event.has_register_mesh()) return ModelRegisterMesh(c, event.register_mesh());
    if (!conn.registered()) {
      std::string request_id;
      if (event.has_llm_request()) request_id = event.llm_request().request_id();
      if (event.has_llm_response()) request_id = event.llm_response().request_id();
      if (event.has_unrouted()) request_id = event.unrouted().request_id();
      return SendError(c, ErrorCode::kNotRegistered, request_id);
    }
    switch (event.event_case()) {
      case ClientEvent::kBroadcast: {
        ServerEvent out;
        out.mutable_message()->set_from(conn.node);
        out.mutable_message()->set_payload(event.broadcast().payload());
        out.mutable_message()->set_broadcast(true);
        Fanout(conn.mesh, c, out);
        break;
      }
      case ClientEvent::kDirect: {
        const int target = FindNode(conn.mesh, event.direct().target());
        if (target < 0) {
          SendError(c, ErrorCode::kUnknownTarget, "");
          break;
        }
        ServerEvent out;
        out.mutable_message()->set_from(conn.node);
        out.mutable_message()->set_payload(event.direct().payload());
        Deliver(target, out);
        break;
      }
      case ClientEvent::kLlmRequest:
        ModelLlmRequest(c, event.llm_request());
        break;
      case ClientEvent::kLlmResponse:
        ModelLlmResponse(c, event.llm_response());
        break;
      case ClientEvent::kPing: {
        ServerEvent out;
        out.mutable_pong()->set_timestamp(Epoch(clock_.Now()));
        Deliver(c, out);
        break;
      }
      case ClientEvent::kCapabilitiesUpdate: {
        const auto& caps = event.capabilities_update().capabilities();
        if (!CapsValid(caps)) {
          SendError(c, ErrorCode::kBadMessage, "");
          break;
        }
        conn.caps.assign(caps.begin(), caps.end());
        ServerEvent out;
        out.mutable_peer_updated()->set_node_id(conn.node);
        *out.mutable_peer_updated()->mutable_capabilities() = caps;
        Fanout(conn.mesh, c, out);
        break;
      }
      case ClientEvent::kUnrouted: {
        // Dropped; answered unknown_type only when the sender waits (request_id).
        const relay::v1::Unrouted& unrouted = event.unrouted();
        if (unrouted.type() == relay::v1::UNROUTED_TYPE_UNSPECIFIED) {
          SendError(c, ErrorCode::kUnknownType, unrouted.request_id());
          break;
        }
        ++unrouted_[static_cast<std::size_t>(*core::UnroutedTypeFromWire(unrouted.type()))];
        if (!unrouted.request_id().empty()) {
          SendError(c, ErrorCode::kUnknownType, unrouted.request_id());
        }
        break;
      }
      default:
        SendError(c, ErrorCode::kBadMessage, "");
        break;
    }
  }

  // A claimant's message while its registration waits: kept, in order, up
  // to kMaxHeldEvents and kMaxHeldBytes (the first always fits), else
  // refused not_registered (no request_id: it was not read).
  void Hold(int c, Held held) {
    Conn& conn = conns_[c];
    const bool fits = conn.held.empty() || (conn.held.size() < kMaxHeldEvents &&
                                            conn.held_bytes + held.wire_bytes <= kMaxHeldBytes);
    if (!fits) return SendError(c, ErrorCode::kNotRegistered, "");
    conn.held_bytes += held.wire_bytes;
    conn.held.push_back(std::move(held));
  }

  // After its probe: what the claimant held, in order, until it waits again
  // or is closing.
  void ReplayHeld(int c) {
    Conn& conn = conns_[c];
    while (!conn.waiting() && !conn.closing && !conn.held.empty()) {
      Held held = std::move(conn.held.front());
      conn.held.pop_front();
      conn.held_bytes -= held.wire_bytes;
      if (held.undecodable) {
        SendError(c, *held.undecodable, held.request_id);
      } else {
        Dispatch(c, held.event);
      }
    }
    if (conn.closing) {
      conn.held.clear();
      conn.held_bytes = 0;
    }
  }

  // The probe of `holder` for `claimant` ended (answered, not answered, or
  // the holder disconnected). An answer from a holder still registered and
  // not closing refuses the claim; otherwise the claimant's registration
  // runs again from scratch and may take the id over.
  void ModelProbeAnswered(int holder, int claimant, bool answered) {
    Conn& h = conns_[holder];
    if (h.open && h.claimant == claimant) h.claimant = -1;
    Conn& conn = conns_[claimant];
    if (!conn.open || conn.awaiting_holder != holder) return;  // settled already
    conn.awaiting_holder = -1;
    const relay::v1::Register reg = conn.pending_register;
    conn.pending_register.Clear();
    if (conn.closing) return;
    if (answered && h.open && h.registered() && !h.closing) {
      SendError(claimant, ErrorCode::kNodeIdInUse, "");
    } else {
      conn.probed_holder = holder;
      ModelRegister(claimant, reg);
      // Waiting for the store: its answer joins it (still unprobed) and
      // replays what it held.
      if (conns_[claimant].admitting) return;
      conns_[claimant].probed_holder = -1;
    }
    ReplayHeld(claimant);
  }

  // --- the model's rules ----------------------------------------------------

  static bool CapsValid(const google::protobuf::RepeatedPtrField<std::string>& caps) {
    if (caps.size() > 64) return false;
    for (const std::string& cap : caps) {
      if (cap.empty() || cap.size() > 128 || !IdentifierTextOk(cap)) return false;
    }
    return true;
  }

  static bool RegisterValid(const relay::v1::Register& reg) {
    return !reg.mesh_id().empty() && reg.mesh_id().size() <= kMaxIdBytes &&
           !reg.node_id().empty() && reg.node_id().size() <= kMaxIdBytes &&
           IdentifierTextOk(reg.node_id()) && reg.name().size() <= 256 && NameTextOk(reg.name()) &&
           CapsValid(reg.capabilities());
  }

  void ModelRegister(int c, const relay::v1::Register& reg) {
    if (conns_[c].registered()) {
      SendError(c, ErrorCode::kAlreadyRegistered, "");
      return;
    }
    if (!RegisterValid(reg)) {
      SendError(c, ErrorCode::kBadMessage, "");
      return;
    }
    auto attempt = std::make_shared<Attempt>();
    attempt->conn = c;
    attempt->reg = reg;
    attempt->mesh_live = meshes_.count(reg.mesh_id()) > 0;
    attempt->now = clock_.Now();
    conns_[c].admitting = true;
    if (std::optional<Admission> admission = DecideRegister(attempt)) {
      Complete(*attempt, *admission, /*later=*/false);
    }
  }

  void ModelRegisterMesh(int c, const relay::v1::RegisterMesh& request) {
    if (conns_[c].registered()) {
      SendError(c, ErrorCode::kAlreadyRegistered, "");
      return;
    }
    if (!RegisterValid(request.peer())) {
      SendError(c, ErrorCode::kBadMessage, "");
      return;
    }
    auto attempt = std::make_shared<Attempt>();
    attempt->conn = c;
    attempt->founding = true;
    attempt->reg = request.peer();
    attempt->request = request;
    attempt->mesh_live = meshes_.count(request.peer().mesh_id()) > 0;
    attempt->now = clock_.Now();
    conns_[c].admitting = true;
    if (std::optional<Admission> admission = DecideRegisterMesh(attempt)) {
      Complete(*attempt, *admission, /*later=*/false);
    }
  }

  // The registration is decided: refused, or joined (after mesh_registered
  // for a founder). One the store answered in a later step then replays
  // what its connection held; a connection gone meanwhile is forgotten.
  void Complete(const Attempt& attempt, const Admission& admission, bool later) {
    const int c = attempt.conn;
    Conn& conn = conns_[c];
    if (!conn.open) return;
    conn.admitting = false;
    if (!conn.closing) {
      if (admission.kind != Admission::kAdmitted) {
        Refuse(c, admission.kind);
      } else {
        if (attempt.founding) {
          ServerEvent registered;
          registered.mutable_mesh_registered()->set_mesh_id(attempt.reg.mesh_id());
          Deliver(c, registered);
        }
        Join(c, attempt.reg, admission);
      }
    }
    if (later) {
      conns_[c].probed_holder = -1;
      ReplayHeld(c);
    }
  }

  // Sends `op` to the store: answered at once unless the store holds it.
  std::optional<Admission> Ask(StoreOp op) {
    if (!store_holds_) return Resolve(std::move(op), /*fail=*/false);
    model_ops_.push_back(std::move(op));
    return std::nullopt;
  }

  // The script answers a waiting store operation, on the core and on the model.
  std::string AnswerStore(std::uint8_t which, bool fail) {
    if (model_ops_.empty()) return "no auth store operation waiting";
    const std::size_t i = which % model_ops_.size();
    StoreOp op = model_ops_[i];
    model_ops_.erase(model_ops_.begin() + static_cast<std::ptrdiff_t>(i));
    const std::string name = absl::StrCat(fail ? "fail" : "answer", " store operation ", i, " (",
                                          op.What(), ") of conn ", op.attempt->conn);
    if (i >= store_.waiting()) {
      Fail(absl::StrCat("the store has ", store_.waiting(), " operations waiting"));
      return name;
    }
    if (fail) {
      store_.Fail(i);
    } else {
      store_.Answer(i);
    }
    executor_.RunAll();  // what the answer posted to the core thread
    op.attempt->late = true;
    std::shared_ptr<Attempt> attempt = op.attempt;
    if (std::optional<Admission> admission = Resolve(std::move(op), fail)) {
      Complete(*attempt, *admission, /*later=*/true);
    }
    return name;
  }

  void ReleaseInflight(const std::string& mesh) {
    auto it = inflight_.find(mesh);
    if (it != inflight_.end() && it->second.claims == 0 && it->second.nonce_claims == 0) {
      inflight_.erase(it);
    }
  }

  // The store's answer to `op`: a failure refuses (auth_unavailable);
  // otherwise the store decides it against what it holds now (the model's
  // records: one relay, one store) and the registration is decided again.
  // A bind or sign claim sent before an open registrant of its mesh was
  // admitted finds the mesh live and open, and leaves nothing behind.
  std::optional<Admission> Resolve(StoreOp op, bool fail) {
    Attempt& a = *op.attempt;
    const std::string& mesh = op.mesh;
    bool went_open = false;
    if (op.kind == StoreOp::kBind || op.kind == StoreOp::kSign) {
      if (op.kind == StoreOp::kBind || op.founds) --creations_in_flight_;
      Inflight& inflight = inflight_[mesh];
      --inflight.claims;
      went_open = inflight.open_grants != op.open_grants;
      ReleaseInflight(mesh);
    } else if (op.kind == StoreOp::kNonce) {
      --creations_in_flight_;
      --inflight_[mesh].nonce_claims;
      ReleaseInflight(mesh);
    }
    if (fail) return Refused(Admission::kAuthUnavailable);
    if (went_open) {
      a.mesh_live = true;
    } else if (op.kind == StoreOp::kBind && signed_.count(mesh) == 0) {
      // The first binding wins; one past its grace is free.
      auto b = bindings_.find(mesh);
      if (b == bindings_.end() || (b->second.expires_at && *b->second.expires_at < a.now)) {
        bindings_[mesh] = Binding{op.token, std::nullopt, std::nullopt};
      }
    } else if (op.kind == StoreOp::kSign) {
      auto b = bindings_.find(mesh);
      const bool bound =
          b != bindings_.end() && (!b->second.expires_at || *b->second.expires_at >= a.now);
      if (!bound) {
        if (b != bindings_.end()) bindings_.erase(b);
        auto existing = signed_.find(mesh);
        if (existing == signed_.end()) {
          for (auto n = nonces_.begin(); n != nonces_.end();) {
            n = n->first.first == mesh ? nonces_.erase(n) : std::next(n);
          }
          signed_[mesh] = SignedMesh{op.key, {op.founder}, a.now};
        } else if (existing->second.key == op.key) {
          std::vector<std::string>& founders = existing->second.founders;
          const bool listed =
              std::find(founders.begin(), founders.end(), op.founder) != founders.end();
          if (listed || founders.size() < kMaxFoundersPerMesh) {
            if (!listed) founders.push_back(op.founder);
            existing->second.last_used = a.now;
          }
        }
      }
    } else if (op.kind == StoreOp::kNonce && signed_.count(mesh) > 0) {
      // A nonce is one node's until its token expires. (A mesh forgotten
      // meanwhile keeps none: deciding again refuses the join.)
      const auto key = std::make_pair(mesh, op.nonce);
      auto n = nonces_.find(key);
      if (n == nonces_.end() || n->second.expires_at < a.now) {
        nonces_[key] = UsedNonce{op.node, op.nonce_expires_at};
      }
    }
    return a.founding ? DecideRegisterMesh(op.attempt) : DecideRegister(op.attempt);
  }

  // docs/security.md, "Mesh authentication levels": what a register_mesh
  // comes to, or nullopt while the store decides.
  std::optional<Admission> DecideRegisterMesh(const std::shared_ptr<Attempt>& a) {
    const relay::v1::RegisterMesh& request = a->request;
    const relay::v1::Register& reg = a->reg;
    const int c = a->conn;
    // Only K or K2 prove a mesh here: the harness never sends a node_public_key.
    const std::string& mesh_id = reg.mesh_id();
    const bool key_is_k = request.mesh_public_key_b64() == absl::Base64Escape(Key(0).public_key);
    const bool key_is_k2 = request.mesh_public_key_b64() == absl::Base64Escape(Key(1).public_key);
    const int key = key_is_k ? 0 : 1;
    std::string proof;
    const bool proven = (key_is_k || key_is_k2) &&
                        absl::Base64Unescape(request.founder_proof_b64(), &proof) &&
                        Verifies(key, mesh_id, proof);
    auto signed_mesh = signed_.find(mesh_id);
    // A live mesh that is not signed (open, or bound to a token) stays so.
    const bool live_unsigned = signed_mesh == signed_.end() && a->mesh_live;
    if (request.mesh_id() != mesh_id || bindings_.count(mesh_id) > 0 || live_unsigned || !proven ||
        (signed_mesh != signed_.end() && signed_mesh->second.key != key)) {
      return Refused(Admission::kAuthFailed);
    }
    StoreOp op;
    op.kind = StoreOp::kSign;
    op.attempt = a;
    op.mesh = mesh_id;
    op.key = key;
    op.founder = reg.node_id();
    if (signed_mesh != signed_.end()) {
      std::vector<std::string>& founders = signed_mesh->second.founders;
      if (std::find(founders.begin(), founders.end(), reg.node_id()) != founders.end()) {
        signed_mesh->second.last_used = a->now;  // proving it again creates nothing
        return Admission{Admission::kAdmitted, absl::StrCat("node:", reg.node_id()), true};
      }
      if (founders.size() >= kMaxFoundersPerMesh) return Refused(Admission::kAuthFailed);
    } else {
      if (const Admission::Kind room = RoomForRecord(c, a->now); room != Admission::kAdmitted) {
        return Refused(room);
      }
      ChargeRecord(c, a->now);
      ++creations_in_flight_;
      op.founds = true;
    }
    Inflight& inflight = inflight_[mesh_id];
    ++inflight.claims;
    op.open_grants = inflight.open_grants;
    return Ask(std::move(op));
  }

  std::size_t AuthRecords() const { return bindings_.size() + signed_.size() + nonces_.size(); }

  // May `c` create one more authentication record now? kAuthUnavailable
  // when the relay holds kMaxAuthRecords (counting those on their way to
  // the store), kRateLimited when its IP created kAuthRecordsPerIpPerMinute
  // in the current minute.
  Admission::Kind RoomForRecord(int c, absl::Time now) const {
    if (AuthRecords() + creations_in_flight_ >= kMaxAuthRecords) return Admission::kAuthUnavailable;
    auto window = creations_.find(conns_[c].client_ip);
    if (window != creations_.end() && now - window->second.started < kCreationWindow &&
        window->second.created >= kAuthRecordsPerIpPerMinute) {
      return Admission::kRateLimited;
    }
    return Admission::kAdmitted;
  }

  // A record is charged to its IP when it is asked of the store.
  void ChargeRecord(int c, absl::Time now) {
    CreationWindow& window = creations_[conns_[c].client_ip];
    if (window.created == 0 || now - window.started >= kCreationWindow) {
      window = CreationWindow{now, 0};
    }
    ++window.created;
  }

  // Open mesh: its tokens prove nothing. Counted, so that claims of the
  // same mesh on their way find it went live open first.
  Admission OpenAdmission(const std::string& mesh_id, const std::string& token) {
    if (auto it = inflight_.find(mesh_id); it != inflight_.end()) ++it->second.open_grants;
    return Admission{Admission::kAdmitted, absl::StrCat("open:", token), false};
  }

  // docs/security.md, "Mesh authentication levels": what admits a register,
  // or nullopt while the store decides. Memory decides what it holds; what
  // creates or consumes a record, and a mesh it holds nothing of, waits.
  std::optional<Admission> DecideRegister(const std::shared_ptr<Attempt>& a) {
    const relay::v1::Register& reg = a->reg;
    const std::string& mesh_id = reg.mesh_id();
    const int c = a->conn;
    if (reg.signed_token().present()) return DecideSignedJoin(a);
    if (signed_.count(mesh_id) > 0) return Refused(Admission::kAuthFailed);
    if (auto binding = bindings_.find(mesh_id); binding != bindings_.end()) {
      if (reg.token().empty() || reg.token() != binding->second.token) {
        return Refused(Admission::kAuthFailed);
      }
      if (!a->mesh_live && binding->second.expires_at) {  // the mesh lives again
        binding->second.expires_at.reset();
        binding->second.watch_at.reset();
      }
      if (a->late && !binding->second.expires_at) {
        binding->second.watch_at = a->now + kBindingGrace;
      }
      return Admission{Admission::kAdmitted, "token", true};
    }
    // An open mesh stays open while it lives; its tokens prove nothing.
    if (a->mesh_live) return OpenAdmission(mesh_id, reg.token());
    if (reg.token().empty()) {
      if (a->looked_up) return OpenAdmission(mesh_id, reg.token());
      a->looked_up = true;
      StoreOp op;
      op.kind = StoreOp::kLookup;
      op.attempt = a;
      op.mesh = mesh_id;
      return Ask(std::move(op));
    }
    if (const Admission::Kind room = RoomForRecord(c, a->now); room != Admission::kAdmitted) {
      return Refused(room);
    }
    ChargeRecord(c, a->now);
    ++creations_in_flight_;
    Inflight& inflight = inflight_[mesh_id];
    ++inflight.claims;
    StoreOp op;
    op.kind = StoreOp::kBind;
    op.attempt = a;
    op.mesh = mesh_id;
    op.token = reg.token();
    op.open_grants = inflight.open_grants;
    return Ask(std::move(op));
  }

  std::optional<Admission> DecideSignedJoin(const std::shared_ptr<Attempt>& a) {
    const relay::v1::Register& reg = a->reg;
    const relay::v1::SignedJoinToken& token = reg.signed_token();
    const int c = a->conn;
    if (!token.malformed().empty()) return Refused(Admission::kAuthFailed);
    auto signed_mesh = signed_.find(reg.mesh_id());
    if (signed_mesh == signed_.end()) {
      // An empty mesh the relay holds nothing of: the store may know it.
      if (a->mesh_live || a->looked_up) return Refused(Admission::kAuthFailed);
      a->looked_up = true;
      StoreOp op;
      op.kind = StoreOp::kLookup;
      op.attempt = a;
      op.mesh = reg.mesh_id();
      return Ask(std::move(op));
    }
    if (token.mesh_id() != reg.mesh_id() || token.nonce().size() > kMaxNonceBytes) {
      return Refused(Admission::kAuthFailed);
    }
    // Any expiry is a time (absl::Seconds saturates): far-future is not
    // undefined behaviour, it is too long.
    const absl::Time now = a->now;
    const absl::Time expires_at = absl::UnixEpoch() + absl::Seconds(token.expires_at());
    if (expires_at < now) return Refused(Admission::kAuthFailed);
    const double lifetime = absl::ToDoubleSeconds(kMaxTokenLifetime);
    if ((token.has_issued_at() && token.expires_at() - token.issued_at() > lifetime) ||
        expires_at - now > kMaxTokenLifetime) {
      return Refused(Admission::kAuthFailed);
    }
    if (!token.node_id().empty() && token.node_id() != reg.node_id()) {
      return Refused(Admission::kAuthFailed);
    }
    std::string signature;
    if (!absl::Base64Unescape(token.signature_b64(), &signature) ||
        !Verifies(signed_mesh->second.key, token.canonical(), signature)) {
      return Refused(Admission::kAuthFailed);
    }
    const auto key = std::make_pair(reg.mesh_id(), token.nonce());
    auto used = nonces_.find(key);
    if (used != nonces_.end() && used->second.node != reg.node_id()) {
      return Refused(Admission::kAuthFailed);
    }
    if (used == nonces_.end()) {
      // A first use: it counts against the bounds while the store decides.
      std::size_t in_mesh = 0;
      for (const auto& [k, nonce] : nonces_) in_mesh += k.first == reg.mesh_id() ? 1 : 0;
      if (auto inflight = inflight_.find(reg.mesh_id()); inflight != inflight_.end()) {
        in_mesh += inflight->second.nonce_claims;
      }
      if (in_mesh >= kMaxNoncesPerMesh) return Refused(Admission::kAuthFailed);
      if (const Admission::Kind room = RoomForRecord(c, now); room != Admission::kAdmitted) {
        return Refused(room);
      }
      ChargeRecord(c, now);
      ++creations_in_flight_;
      ++inflight_[reg.mesh_id()].nonce_claims;
      StoreOp op;
      op.kind = StoreOp::kNonce;
      op.attempt = a;
      op.mesh = reg.mesh_id();
      op.nonce = token.nonce();
      op.node = reg.node_id();
      op.nonce_expires_at = expires_at;
      return Ask(std::move(op));
    }
    signed_mesh->second.last_used = now;
    // A node-bound token proves the node; an unbound one only membership, so
    // it never takes a node_id over.
    if (token.node_id().empty()) {
      return Admission{Admission::kAdmitted, absl::StrCat("unbound:", ++unbound_joins_), true};
    }
    return Admission{Admission::kAdmitted, absl::StrCat("node:", reg.node_id()), true};
  }

  // auth_failed closes; the relay's own bounds (auth_unavailable, per-IP
  // rate_limited) leave the connection open to retry.
  void Refuse(int c, Admission::Kind kind) {
    switch (kind) {
      case Admission::kAuthUnavailable:
        return SendError(c, ErrorCode::kAuthUnavailable, "");
      case Admission::kRateLimited:
        return SendError(c, ErrorCode::kRateLimited, "");
      default:
        SendError(c, ErrorCode::kAuthFailed, "");
        conns_[c].closing = true;
        ExpectClose(c, CloseReason::kAuthFailed);
    }
  }

  // An admitted registrant joins: takes its node_id over from a holder with
  // the same credential (after a probe when the credential proves nothing),
  // or is refused node_id_in_use / mesh_full.
  void Join(int c, const relay::v1::Register& reg, const Admission& admission) {
    if (meshes_.count(reg.mesh_id()) > 0) {
      const int holder = FindNode(reg.mesh_id(), reg.node_id());
      if (holder >= 0) {
        Conn& h = conns_[holder];
        if (h.credential != admission.credential) {
          SendError(c, ErrorCode::kNodeIdInUse, "");
          return;
        }
        // Equal credentials that prove nothing: the id moves only once its
        // holder is found gone (closing already, or silent to a probe).
        if (!admission.proves_node && !h.closing && holder != conns_[c].probed_holder) {
          if (h.claimant >= 0 || !h.can_probe) {
            SendError(c, ErrorCode::kNodeIdInUse, "");
            return;
          }
          ExpectProbe(holder);
          h.claimant = c;
          conns_[c].awaiting_holder = holder;
          conns_[c].pending_register = reg;
          model_probes_.push_back(Probe{holder, c});
          return;
        }
        // The newcomer takes the name over, silently.
        LeaveMesh(holder, /*announce=*/false);
        if (!h.closing) ExpectClose(holder, CloseReason::kReplaced);
        h.closing = true;
      } else if (meshes_[reg.mesh_id()].peers.size() >= kMaxPeersPerMesh) {
        SendError(c, ErrorCode::kMeshFull, "");
        return;
      }
    }
    Conn& conn = conns_[c];
    auto [it, created] = meshes_.try_emplace(reg.mesh_id());
    Mesh& mesh = it->second;
    if (created) mesh.created_at = clock_.Now();
    // The mesh has a peer again: a token binding holds, whatever grace began.
    if (auto binding = bindings_.find(reg.mesh_id()); binding != bindings_.end()) {
      binding->second.expires_at.reset();
    }
    conn.mesh = reg.mesh_id();
    conn.node = reg.node_id();
    conn.name = reg.name().empty() ? FirstChars(reg.node_id(), 8) : reg.name();
    conn.caps.assign(reg.capabilities().begin(), reg.capabilities().end());
    conn.credential = admission.credential;
    conn.proves_node = admission.proves_node;
    conn.joined_at = clock_.Now();
    mesh.peers.push_back(c);

    ServerEvent joined;
    joined.mutable_joined()->set_mesh_id(conn.mesh);
    joined.mutable_joined()->set_node_count(static_cast<std::uint32_t>(mesh.peers.size()));
    Deliver(c, joined);
    ServerEvent peers;
    for (int p : mesh.peers) {
      if (p != c) *peers.mutable_peers()->add_peers() = PeerInfo(p);
    }
    peers.mutable_peers();
    Deliver(c, peers);
    ServerEvent announce;
    *announce.mutable_peer_joined()->mutable_peer() = PeerInfo(c);
    Fanout(conn.mesh, c, announce);
  }

  // The per-connection token buckets: one message, and its wire bytes (0
  // counts nothing; a message larger than the burst needs a full bucket).
  // False when the message is refused (rate_limited, or a close after
  // kRateBurst refusals in a row).
  bool AdmitByRate(int c) {
    Conn& conn = conns_[c];
    const absl::Time now = clock_.Now();
    const double elapsed = absl::ToDoubleSeconds(now - conn.rate_refilled_at);
    conn.rate_refilled_at = now;
    conn.rate_tokens =
        std::min(static_cast<double>(kRateBurst), conn.rate_tokens + elapsed * kRatePerSecond);
    conn.byte_tokens = std::min(static_cast<double>(kRateBurstBytes),
                                conn.byte_tokens + elapsed * kRateBytesPerSecond);
    const double bytes = static_cast<double>(std::min(conn.wire_bytes, kRateBurstBytes));
    if (conn.rate_tokens >= 1 && (conn.wire_bytes == 0 || conn.byte_tokens >= bytes)) {
      conn.rate_tokens -= 1;
      if (conn.wire_bytes > 0) conn.byte_tokens -= bytes;
      conn.refusals_in_row = 0;
      return true;
    }
    if (++conn.refusals_in_row >= std::min<std::size_t>(kRateBurst, 100)) {
      conn.closing = true;
      ExpectClose(c, CloseReason::kRateLimited);
      return false;
    }
    SendError(c, ErrorCode::kRateLimited, "");
    return false;
  }

  // Bytes of `c`'s waiting llm requests: each its request_id and the
  // dispatcher's bookkeeping.
  std::size_t PendingLlmBytes(int c) const {
    std::size_t bytes = 0;
    for (const Pending& p : pending_) {
      if (p.requester == c) bytes += p.request_id.size() + core::LlmDispatch::kPendingOverheadBytes;
    }
    return bytes;
  }

  void ModelLlmRequest(int c, const relay::v1::LlmRequest& req) {
    ++llm_requests_;
    Conn& conn = conns_[c];
    if (req.request_id().size() > kMaxIdBytes) {
      SendError(c, ErrorCode::kBadMessage, "");
      return;
    }
    std::size_t outstanding = 0;
    for (const Pending& p : pending_) outstanding += p.requester == c ? 1 : 0;
    if (outstanding >= kLlmLimit ||
        PendingLlmBytes(c) + req.request_id().size() + core::LlmDispatch::kPendingOverheadBytes >
            kMaxPendingLlmBytes) {
      SendError(c, ErrorCode::kTooManyRequests, req.request_id());
      return;
    }
    std::vector<int> candidates;
    for (int p : meshes_[conn.mesh].peers) {
      if (p != c && !conns_[p].closing && conns_[p].HasLlm()) candidates.push_back(p);
    }
    if (candidates.empty()) {
      SendError(c, ErrorCode::kNoLlmPeer, req.request_id());
      return;
    }
    // Which candidate the core picked: it must hold the fewest requests.
    // One step may dispatch several (a claimant's held requests): each
    // takes the next llm_request the sinks saw.
    int chosen = -1;
    for (; llm_seen_ < seen_.size(); ++llm_seen_) {
      const Seen& s = seen_[llm_seen_];
      if (s.event != nullptr && s.event->has_llm_request()) {
        chosen = s.conn;
        ++llm_seen_;
        break;
      }
    }
    if (std::find(candidates.begin(), candidates.end(), chosen) == candidates.end()) {
      Fail(absl::StrCat("llm_request not delivered to a capable peer (went to conn ", chosen, ")"));
      return;
    }
    std::size_t fewest = SIZE_MAX;
    for (int p : candidates) fewest = std::min(fewest, HeldBy(p));
    if (HeldBy(chosen) != fewest) {
      Fail(absl::StrCat("llm_request went to conn ", chosen, " holding ", HeldBy(chosen),
                        " requests; another capable peer holds ", fewest));
      return;
    }
    bool reassigned = false;
    for (Pending& p : pending_) {
      if (p.requester == c && p.request_id == req.request_id()) {
        p.responder = chosen;
        p.order = next_order_++;
        reassigned = true;
      }
    }
    if (!reassigned) pending_.push_back(Pending{c, req.request_id(), chosen, next_order_++});
    ServerEvent out;
    out.mutable_llm_request()->set_from(conn.node);
    *out.mutable_llm_request()->mutable_request() = req;
    Deliver(chosen, out);
  }

  void ModelLlmResponse(int c, const relay::v1::LlmResponse& resp) {
    Conn& conn = conns_[c];
    if (resp.request_id().size() > kMaxIdBytes) {
      SendError(c, ErrorCode::kBadMessage, "");
      return;
    }
    const int target = FindNode(conn.mesh, resp.target());
    if (target < 0) {
      SendError(c, ErrorCode::kUnknownTarget, resp.request_id());
      return;
    }
    pending_.erase(std::remove_if(pending_.begin(), pending_.end(),
                                  [&](const Pending& p) {
                                    return p.requester == target &&
                                           p.request_id == resp.request_id() && p.responder == c;
                                  }),
                   pending_.end());
    ServerEvent out;
    out.mutable_llm_response()->set_from(conn.node);
    *out.mutable_llm_response()->mutable_response() = resp;
    Deliver(target, out);
  }

  // `c` leaves its mesh: its requests are dropped, the requests it held are
  // failed (oldest first); on a disconnect (`announce`) the others hear
  // peer_left and an emptied mesh ends; on a takeover its successor joins next.
  void LeaveMesh(int c, bool announce) {
    Conn& conn = conns_[c];
    const std::string mesh_id = conn.mesh;
    Mesh& mesh = meshes_[mesh_id];
    mesh.peers.erase(std::find(mesh.peers.begin(), mesh.peers.end(), c));
    conn.mesh.clear();

    pending_.erase(std::remove_if(pending_.begin(), pending_.end(),
                                  [&](const Pending& p) { return p.requester == c; }),
                   pending_.end());
    std::vector<Pending> held;
    for (const Pending& p : pending_) {
      if (p.responder == c) held.push_back(p);
    }
    pending_.erase(std::remove_if(pending_.begin(), pending_.end(),
                                  [&](const Pending& p) { return p.responder == c; }),
                   pending_.end());
    std::sort(held.begin(), held.end(),
              [](const Pending& a, const Pending& b) { return a.order < b.order; });
    for (const Pending& p : held) {
      if (conns_[p.requester].open) SendError(p.requester, ErrorCode::kLlmPeerLeft, p.request_id);
    }
    if (announce) {
      ServerEvent left;
      left.mutable_peer_left()->set_node_id(conn.node);
      Fanout(mesh_id, -1, left);
    }
    // A takeover (!announce) refills the mesh at once: for its members,
    // its counters and its token binding it never emptied.
    if (announce && mesh.peers.empty()) {
      if (auto binding = bindings_.find(mesh_id); binding != bindings_.end()) {
        binding->second.expires_at = clock_.Now() + kBindingGrace;
        binding->second.watch_at.reset();
      }
      if (auto signed_mesh = signed_.find(mesh_id); signed_mesh != signed_.end()) {
        signed_mesh->second.last_used = clock_.Now();
      }
      meshes_.erase(mesh_id);
    }
  }

  std::size_t HeldBy(int c) const {
    std::size_t n = 0;
    for (const Pending& p : pending_) n += p.responder == c ? 1 : 0;
    return n;
  }

  int FindNode(const std::string& mesh_id, const std::string& node) const {
    auto it = meshes_.find(mesh_id);
    if (it == meshes_.end()) return -1;
    for (int p : it->second.peers) {
      if (conns_[p].node == node) return p;
    }
    return -1;
  }

  relay::v1::PeerInfo PeerInfo(int c) const {
    const Conn& conn = conns_[c];
    relay::v1::PeerInfo info;
    info.set_node_id(conn.node);
    info.set_name(conn.name);
    for (const std::string& cap : conn.caps) info.add_capabilities(cap);
    info.set_joined_at(Epoch(conn.joined_at));
    return info;
  }

  static double Epoch(absl::Time t) { return absl::ToDoubleSeconds(t - absl::UnixEpoch()); }

  // --- expected deliveries --------------------------------------------------

  void Deliver(int c, const ServerEvent& event) {
    Conn& conn = conns_[c];
    if (conn.closing) return;
    ++conn.messages_out;
    if (event.has_message() || event.has_llm_request() || event.has_llm_response()) {
      ++messages_relayed_;
      if (conn.registered()) ++meshes_[conn.mesh].relayed;
    }
    Seen s;
    s.conn = c;
    s.event = std::make_shared<const ServerEvent>(event);
    expected_.push_back(std::move(s));
  }

  void SendError(int c, ErrorCode code, const std::string& request_id) {
    ++errors_[static_cast<std::size_t>(code)];
    ServerEvent event;
    event.mutable_error()->set_code(std::string(core::ErrorCodeName(code)));
    // An over-long request_id is not echoed: it was refused for its size.
    if (request_id.size() <= kMaxIdBytes) event.mutable_error()->set_request_id(request_id);
    Deliver(c, event);
  }

  void Fanout(const std::string& mesh_id, int except, const ServerEvent& event) {
    const std::vector<int> peers = meshes_[mesh_id].peers;
    for (int p : peers) {
      if (p != except) Deliver(p, event);
    }
  }

  void ExpectClose(int c, CloseReason reason) {
    Seen s;
    s.conn = c;
    s.close = true;
    s.reason = reason;
    expected_.push_back(std::move(s));
  }

  void ExpectProbe(int c) {
    Seen s;
    s.conn = c;
    s.probe = true;
    expected_.push_back(std::move(s));
  }

  // --- checks ---------------------------------------------------------------

  static bool Same(const Seen& want, const Seen& got) {
    if (want.conn != got.conn || want.close != got.close || want.probe != got.probe) return false;
    if (want.close) return want.reason == got.reason;
    if (want.probe) return true;
    if (want.event->has_error() && got.event->has_error()) {
      const relay::v1::Error& e = got.event->error();
      return e.code() == want.event->error().code() &&
             e.request_id() == want.event->error().request_id() && !e.message().empty();
    }
    // Same fields, same values: same bytes (no maps in relay.v1).
    return want.event->SerializeAsString() == got.event->SerializeAsString();
  }

  void CompareDeliveries() {
    std::vector<Seen> want = std::move(expected_);
    std::vector<Seen> got = seen_;
    expected_.clear();
    if (closes_in_any_order_) {
      const auto by_conn = [](const Seen& a, const Seen& b) { return a.conn < b.conn; };
      std::stable_sort(want.begin(), want.end(), by_conn);
      std::stable_sort(got.begin(), got.end(), by_conn);
      closes_in_any_order_ = false;
    }
    for (std::size_t i = 0; i < std::max(want.size(), got.size()); ++i) {
      if (i < want.size() && i < got.size() && Same(want[i], got[i])) continue;
      Fail(absl::StrCat("delivery ", i, ": want ",
                        i < want.size() ? Describe(want[i]) : std::string("nothing"), ", got ",
                        i < got.size() ? Describe(got[i]) : std::string("nothing")));
      return;
    }
  }

  void CheckViews() {
    std::size_t registered = 0;
    std::size_t open = 0;
    for (const Conn& c : conns_) {
      registered += c.registered() ? 1 : 0;
      open += c.open ? 1 : 0;
    }
    const core::HealthCounts health = core_.Health();
    if (health.peers != registered || health.meshes != meshes_.size()) {
      return Fail(absl::StrCat("Health() says ", health.peers, " peers in ", health.meshes,
                               " meshes; the model has ", registered, " in ", meshes_.size()));
    }
    if (core_.OpenConnections() != open) {
      return Fail(absl::StrCat("OpenConnections() ", core_.OpenConnections(), ", model ", open));
    }
    if (store_.waiting() != model_ops_.size()) {
      return Fail(absl::StrCat("the auth store has ", store_.waiting(),
                               " operations waiting, the model ", model_ops_.size()));
    }
    for (std::size_t i = 0; i < model_ops_.size(); ++i) {
      if (store_.what(i) != model_ops_[i].What()) {
        return Fail(absl::StrCat("auth store operation ", i, " is ", Show(store_.what(i)),
                                 ", the model's ", Show(model_ops_[i].What())));
      }
    }
    if (core_.auth_records() != AuthRecords()) {
      return Fail(absl::StrCat("auth_records() ", core_.auth_records(), ", model ", AuthRecords(),
                               " (", bindings_.size(), " bindings, ", signed_.size(),
                               " signed meshes, ", nonces_.size(), " nonces)"));
    }

    const relay::v1::ListMeshesResponse list = core_.ListMeshes();
    if (static_cast<std::size_t>(list.meshes_size()) != meshes_.size()) {
      return Fail(
          absl::StrCat("ListMeshes has ", list.meshes_size(), " meshes, model ", meshes_.size()));
    }
    int i = 0;
    for (const auto& [id, mesh] : meshes_) {
      const relay::v1::MeshSummary& s = list.meshes(i++);
      if (s.mesh_id() != id || s.peer_count() == 0 || s.peer_count() != mesh.peers.size() ||
          s.messages_relayed() != mesh.relayed || s.created_at() != Epoch(mesh.created_at)) {
        return Fail(absl::StrCat("ListMeshes entry ", s.ShortDebugString(), " vs model mesh ",
                                 Show(id), " with ", mesh.peers.size(), " peers, ", mesh.relayed,
                                 " relayed"));
      }
      CheckGetMesh(id, mesh);
      if (!problem_.empty()) return;
    }
    for (const char* id : kMeshes) {
      if (meshes_.count(id) == 0 &&
          core_.GetMesh(id).status().code() != absl::StatusCode::kNotFound) {
        return Fail(absl::StrCat("GetMesh(", Show(id), ") of a dead mesh is not NOT_FOUND"));
      }
    }

    const relay::v1::Stats stats = core_.GetStats();
    const bool counters_match =
        stats.active_meshes() == meshes_.size() && stats.open_sockets() == open &&
        stats.registered_peers() == registered && stats.total_connections() == total_connections_ &&
        stats.messages_received() == messages_received_ &&
        stats.messages_relayed() == messages_relayed_ && stats.llm_requests() == llm_requests_ &&
        stats.uptime_seconds() == absl::ToDoubleSeconds(clock_.Now() - started_at_) &&
        static_cast<std::size_t>(stats.errors_size()) == core::kErrorCodeCount;
    if (!counters_match) {
      return Fail(absl::StrCat("GetStats ", stats.ShortDebugString(), " vs model: meshes ",
                               meshes_.size(), " open ", open, " registered ", registered,
                               " total ", total_connections_, " received ", messages_received_,
                               " relayed ", messages_relayed_, " llm ", llm_requests_));
    }
    if (core_.traffic().unrouted != unrouted_) {
      return Fail(absl::StrCat("traffic().unrouted differs from the model's: gossip ",
                               core_.traffic().unrouted[0], " vs ", unrouted_[0]));
    }
    for (std::size_t k = 0; k < core::kErrorCodeCount; ++k) {
      const ErrorCode code = core::kAllErrorCodes[k];
      bool found = false;
      for (const relay::v1::ErrorCount& e : stats.errors()) {
        if (e.code() != core::ErrorCodeName(code)) continue;
        found = true;
        if (e.count() != errors_[static_cast<std::size_t>(code)]) {
          return Fail(absl::StrCat("GetStats errors[", e.code(), "] = ", e.count(), ", model ",
                                   errors_[static_cast<std::size_t>(code)]));
        }
      }
      if (!found) {
        return Fail(absl::StrCat("GetStats lacks error code ", core::ErrorCodeName(code)));
      }
    }
    if (static_cast<std::size_t>(stats.closes_size()) != core::kCloseReasonCount) {
      return Fail(absl::StrCat("GetStats lists ", stats.closes_size(), " close reasons"));
    }
    for (std::size_t k = 0; k < core::kCloseReasonCount; ++k) {
      const relay::v1::CloseCount& count = stats.closes(static_cast<int>(k));
      if (count.reason() != core::CloseReasonName(static_cast<CloseReason>(k)) ||
          count.count() != closes_[k]) {
        return Fail(
            absl::StrCat("GetStats closes ", count.ShortDebugString(), ", model ", closes_[k]));
      }
    }
  }

  void CheckGetMesh(const std::string& id, const Mesh& mesh) {
    absl::StatusOr<relay::v1::GetMeshResponse> got = core_.GetMesh(id);
    if (!got.ok()) return Fail(absl::StrCat("GetMesh(", Show(id), ") of a live mesh failed"));
    if (static_cast<std::size_t>(got->peers_size()) != mesh.peers.size()) {
      return Fail(absl::StrCat("GetMesh(", Show(id), ") lists ", got->peers_size(), " peers"));
    }
    for (std::size_t i = 0; i < mesh.peers.size(); ++i) {
      const Conn& c = conns_[mesh.peers[i]];
      const relay::v1::PeerDetail& d = got->peers(static_cast<int>(i));
      const bool same =
          d.node_id() == c.node && d.name() == c.name &&
          std::vector<std::string>(d.capabilities().begin(), d.capabilities().end()) == c.caps &&
          d.joined_at() == Epoch(c.joined_at) && d.remote_address() == c.remote &&
          d.transport() == "ws" && d.messages_in() == c.messages_in &&
          d.messages_out() == c.messages_out;
      if (!same) {
        return Fail(absl::StrCat("GetMesh(", Show(id), ") peer ", i, " is ", d.ShortDebugString(),
                                 "; model: conn ", mesh.peers[i], " node ", Show(c.node), " in ",
                                 c.messages_in, " out ", c.messages_out));
      }
    }
  }

  FakeClock clock_;
  // The core's auth store and the executor its later answers come back
  // through (run right after each answer).
  store::testing::ScriptedAuthStore store_;
  store::testing::ManualExecutor executor_;
  core::RelayCore core_;
  const absl::Time started_at_;

  std::vector<Conn> conns_;  // by harness index, never removed
  std::map<std::string, Mesh> meshes_;
  std::vector<Pending> pending_;
  std::uint64_t next_order_ = 0;

  std::uint64_t total_connections_ = 0;
  std::uint64_t messages_received_ = 0;
  std::array<std::uint64_t, core::kUnroutedTypeCount> unrouted_{};
  std::uint64_t messages_relayed_ = 0;
  std::uint64_t llm_requests_ = 0;
  std::uint64_t errors_[core::kErrorCodeCount] = {};
  std::uint64_t closes_[core::kCloseReasonCount] = {};

  // Mesh authentication.
  std::map<std::string, Binding> bindings_;
  std::map<std::string, SignedMesh> signed_;
  std::map<std::pair<std::string, std::string>, UsedNonce> nonces_;  // (mesh, nonce)
  std::map<std::string, CreationWindow> creations_;                  // by client IP
  std::uint64_t unbound_joins_ = 0;
  // The auth store: whether it holds its answers, what waits (in the order
  // ScriptedAuthStore keeps them), and the claims on their way per mesh.
  bool store_holds_ = false;
  std::deque<StoreOp> model_ops_;
  std::map<std::string, Inflight> inflight_;
  std::size_t creations_in_flight_ = 0;

  // Takeover probes, oldest first: the core's callbacks and the model's
  // (holder, claimant) of each, in the same order.
  std::deque<std::function<void(bool)>> open_probes_;
  std::deque<Probe> model_probes_;

  std::vector<Seen> seen_;      // what the sinks saw this step
  std::size_t llm_seen_ = 0;    // seen_[llm_seen_...]: llm_requests not yet matched
  std::vector<Seen> expected_;  // what the model says they should have
  bool closes_in_any_order_ = false;
  std::string problem_;
};

core::SendResult FuzzSink::Send(const ServerEventPtr& event) {
  harness_->OnSend(conn_, event);
  return core::SendResult::Queued();
}
void FuzzSink::Close(CloseReason reason) { harness_->OnClose(conn_, reason); }
bool ProbingFuzzSink::Probe(absl::Duration timeout, std::function<void(bool)> done) {
  harness_->OnProbe(conn_, timeout, std::move(done));
  return true;
}

}  // namespace

std::string CoreEventsProblem(absl::string_view input) {
  Harness harness;
  return harness.Run(input);
}

}  // namespace relay::fuzz
