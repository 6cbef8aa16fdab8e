// Which capability names make a peer one that serves llm_request and
// chat_request (LLM_CAPABILITIES, docs/protocol.md).
//
// The shipped clients name the capability in their own words: the macOS
// server joins with its router's names ("chat", "embeddings", ...) or a
// LlamaFarm project's, and only a mesh's founder adds "llm". The reference
// Python relay serves anyone whose capabilities include "llm" or "chat" or
// contain "llamafarm"; the default patterns say the same.
//
// A pattern is an exact name, or one with `*` wildcards, each matching any
// run of characters (none included); matching is case-sensitive, as the
// reference relay's is.
#ifndef RELAY_SERVER_CORE_LLM_CAPABILITIES_H_
#define RELAY_SERVER_CORE_LLM_CAPABILITIES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace relay::core {

// The default of LLM_CAPABILITIES.
std::vector<std::string> DefaultLlmCapabilities();

// True when `text` matches the `*` glob `pattern`.
bool CapabilityMatches(absl::string_view pattern, absl::string_view text);

// True when any of `capabilities` matches any of `patterns`.
bool ServesLlm(const std::vector<std::string>& patterns,
               const std::vector<std::string>& capabilities);

// Patterns from LLM_CAPABILITIES' comma-separated text (spaces around each
// trimmed). An empty list, an empty pattern or one longer than
// `max_pattern_bytes` is an error naming it.
absl::StatusOr<std::vector<std::string>> ParseLlmCapabilities(absl::string_view text,
                                                              std::size_t max_pattern_bytes);

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_LLM_CAPABILITIES_H_
