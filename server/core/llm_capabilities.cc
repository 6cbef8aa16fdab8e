#include "server/core/llm_capabilities.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace relay::core {

std::vector<std::string> DefaultLlmCapabilities() { return {"llm", "chat", "*llamafarm*"}; }

bool CapabilityMatches(absl::string_view pattern, absl::string_view text) {
  // Greedy with one backtrack point (the last `*`): linear in practice,
  // never worse than |pattern| x |text|, both bounded by the capability
  // byte limit.
  std::size_t p = 0, t = 0;
  std::size_t star = absl::string_view::npos, resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != absl::string_view::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool ServesLlm(const std::vector<std::string>& patterns,
               const std::vector<std::string>& capabilities) {
  for (const std::string& capability : capabilities) {
    for (const std::string& pattern : patterns) {
      if (CapabilityMatches(pattern, capability)) return true;
    }
  }
  return false;
}

absl::StatusOr<std::vector<std::string>> ParseLlmCapabilities(absl::string_view text,
                                                              std::size_t max_pattern_bytes) {
  std::vector<std::string> patterns;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    item = absl::StripAsciiWhitespace(item);
    if (item.empty()) {
      return absl::InvalidArgumentError(
          "an empty capability name (two commas, or a comma at an end); list names such as "
          "llm,chat,*llamafarm*");
    }
    if (item.size() > max_pattern_bytes) {
      return absl::InvalidArgumentError(absl::StrCat("capability pattern \"", item.substr(0, 64),
                                                     "...\" is longer than ", max_pattern_bytes,
                                                     " bytes, which no capability can match"));
    }
    patterns.emplace_back(item);
  }
  return patterns;
}

}  // namespace relay::core
