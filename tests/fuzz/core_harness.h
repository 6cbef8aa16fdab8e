// A model-checked script of operations on one RelayCore, with a fake clock
// and recording sinks. core_events_fuzz.cc feeds it fuzzer bytes;
// regressions_test.cc feeds it the scripts that once broke one.
//
// The script is read one byte at a time (0 once the input is used up): an
// operation byte, then that operation's argument bytes (see kOps in
// core_harness.cc, and make_corpus.py, which writes the seeds by name).
#ifndef RELAY_TESTS_FUZZ_CORE_HARNESS_H_
#define RELAY_TESTS_FUZZ_CORE_HARNESS_H_

#include <string>

#include "absl/strings/string_view.h"

namespace relay::fuzz {

// Runs the script in `input` against a RelayCore and against a small model
// of the rules of docs/protocol.md and docs/security.md (who is registered
// where, who holds which llm request, which meshes are token-bound or signed,
// which nonces are used, who waits for a takeover probe or for the auth
// store, each connection's rate budgets). Returns "" when,
// after every step, the core did what the model says, else the first
// difference, with the step that showed it.
//
// Checked after each step:
//   - the deliveries (sink, event) and closes are the model's, in order
//     (error events: code and request_id; the text is free) and every
//     delivered event encodes to valid JSON;
//   - nothing is delivered to a sink after Close() or Disconnect(), and no
//     sink is asked to Close() twice;
//   - an llm_request goes to a capable peer holding the fewest requests;
//   - admission: auth_failed (then a close) exactly where the mesh's level
//     says so (register_mesh on a live unsigned mesh, nonce and token
//     lifetime bounds, nonces and founders per mesh), auth_unavailable and
//     per-IP rate_limited (no close) at the record bounds, a token binding
//     holding while the mesh has peers and for the grace after, a signed
//     mesh forgotten after its TTL unused, node_id takeovers only with the
//     same credential, mesh_full, rate_limited by messages or wire bytes
//     (then a close), node_id/capability/name text rules;
//   - open-mesh takeover: the holder's sink is probed (exactly when the
//     model says), the claimant's events are held (bounded) and replayed,
//     and the probe's answer (or the holder's disconnect) decides;
//   - the auth store (a ScriptedAuthStore the script makes hold its
//     answers, then answers or fails them in any order): exactly the
//     registrations the model says wait for it, with the operations it
//     says, in order; their events held and replayed; each answer decided
//     as the store's order says (one winner per binding, signed mesh or
//     nonce; a claim answered after the mesh went live open finds it open;
//     a failure is auth_unavailable, not closed); a registrant gone
//     meanwhile forgotten, its binding kept a grace;
//   - request_id bounds (bad_message, not echoed) and pending llm bytes;
//   - Health(), OpenConnections(), ListMeshes() (every mesh has
//     peer_count > 0), GetMesh(), auth_records() and every GetStats() counter
//     match the model.
//
// With RELAY_FUZZ_TRACE=1 in the environment it prints each step and what
// the sinks saw to stderr.
std::string CoreEventsProblem(absl::string_view input);

}  // namespace relay::fuzz

#endif  // RELAY_TESTS_FUZZ_CORE_HARNESS_H_
