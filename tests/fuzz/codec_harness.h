// Invariants of the gateway's JSON codec (json_object, client_decoder,
// server_encoder), checked on arbitrary input. json_codec_fuzz.cc feeds it
// fuzzer bytes; regressions_test.cc feeds it the inputs that once broke one.
#ifndef RELAY_TESTS_FUZZ_CODEC_HARNESS_H_
#define RELAY_TESTS_FUZZ_CODEC_HARNESS_H_

#include <string>

#include "absl/strings/string_view.h"
#include "relay/v1/relay.pb.h"

namespace relay::fuzz {

// Runs `input` through json::ParseObject (against RapidJSON as a reference
// for what is valid JSON, when built with it) and DecodeClientFrame, then
// encodes server frames built from whatever was decoded; and through
// ParseRelayPath. Returns "" when every invariant holds, else the first one
// violated, with the offending text.
//
// Invariants:
//   - ParseObject accepts exactly what RapidJSON (strict, UTF-8 validating)
//     accepts as an object with unique member names (compared decoded) and at
//     most limits::kMaxJsonMembersPerObject members in every object, except the
//     documented differences: deeper than limits::kMaxJsonDepth, lone surrogate
//     escapes (ours: U+FFFD), numbers too big for a double (ours: forwarded
//     as written);
//   - each member's raw key and raw value re-parse, inside an object, to the
//     same key, kind, decoded strings; decoded strings are valid UTF-8 and
//     survive json::AppendString + ParseObject unchanged; the members' raw
//     spans joined back into an object parse to the same members;
//   - DecodeClientFrame fails exactly when ParseObject does (bad_json, or
//     bad_message for a non-object or too many members), its error messages are short valid UTF-8,
//     and a request_id it read is a JSON string or number;
//   - a signed join token is either marked malformed or carries canonical
//     bytes that are ASCII JSON (Infinity aside, as Python writes it) with
//     the seven keys sorted and the token's decoded fields;
//   - every server frame built from a decoded event (message, llm_request /
//     chat_request, llm_response, peer_joined, peers, peer_updated, joined,
//     mesh_registered, error) is a JSON object ParseObject accepts, in which
//     the relay's own members ("type", "from", "request_id", "messages")
//     appear exactly once with the relay's values, and every forwarded member
//     is there byte for byte;
//   - ParseRelayPath, on the input as a request target and after "/relay/",
//     only accepts a mesh id of 1..256 bytes of UTF-8 without control
//     characters, which survives percent-encoding and JSON encoding.
std::string CodecProblem(absl::string_view input);

// "" when EncodeServerEvent(event) is a JSON object json::ParseObject accepts
// with exactly one "type", else what is wrong (for the core harness, which
// encodes every event the core delivers).
std::string ServerFrameProblem(const relay::v1::ServerEvent& event);

}  // namespace relay::fuzz

#endif  // RELAY_TESTS_FUZZ_CODEC_HARNESS_H_
