// Top-level member lookup over raw JSON text (see json_scan.h).
#include "bench/relay-bench/json_scan.h"

#include <cstddef>

namespace relay::bench {

namespace {

void SkipSpace(std::string_view s, std::size_t* i) {
  while (*i < s.size() && (s[*i] == ' ' || s[*i] == '\t' || s[*i] == '\n' || s[*i] == '\r')) ++*i;
}

// s[*i] is '"': moves *i past the closing quote. False if unterminated.
bool SkipString(std::string_view s, std::size_t* i) {
  for (std::size_t j = *i + 1; j < s.size(); ++j) {
    if (s[j] == '\\') {
      ++j;
    } else if (s[j] == '"') {
      *i = j + 1;
      return true;
    }
  }
  return false;
}

// Moves *i past one value starting at s[*i]. False if malformed.
bool SkipValue(std::string_view s, std::size_t* i) {
  if (*i >= s.size()) return false;
  const char c = s[*i];
  if (c == '"') return SkipString(s, i);
  if (c == '{' || c == '[') {
    int depth = 0;
    while (*i < s.size()) {
      const char d = s[*i];
      if (d == '"') {
        if (!SkipString(s, i)) return false;
        continue;
      }
      if (d == '{' || d == '[') {
        ++depth;
      } else if (d == '}' || d == ']') {
        if (--depth == 0) {
          ++*i;
          return true;
        }
      }
      ++*i;
    }
    return false;
  }
  // number, true, false, null
  const std::size_t start = *i;
  while (*i < s.size() && s[*i] != ',' && s[*i] != '}' && s[*i] != ']' && s[*i] != ' ' &&
         s[*i] != '\t' && s[*i] != '\n' && s[*i] != '\r') {
    ++*i;
  }
  return *i > start;
}

}  // namespace

std::optional<std::string_view> TopLevelMember(std::string_view doc, std::string_view key) {
  std::size_t i = 0;
  SkipSpace(doc, &i);
  if (i >= doc.size() || doc[i] != '{') return std::nullopt;
  ++i;
  while (true) {
    SkipSpace(doc, &i);
    if (i >= doc.size() || doc[i] != '"') return std::nullopt;  // '}' or malformed
    const std::size_t key_start = i + 1;
    if (!SkipString(doc, &i)) return std::nullopt;
    const std::string_view member = doc.substr(key_start, i - 1 - key_start);
    SkipSpace(doc, &i);
    if (i >= doc.size() || doc[i] != ':') return std::nullopt;
    ++i;
    SkipSpace(doc, &i);
    const std::size_t value_start = i;
    if (!SkipValue(doc, &i)) return std::nullopt;
    if (member == key) return doc.substr(value_start, i - value_start);
    SkipSpace(doc, &i);
    if (i >= doc.size() || doc[i] != ',') return std::nullopt;
    ++i;
  }
}

std::optional<std::string_view> StringContents(std::string_view raw) {
  if (raw.size() < 2 || raw.front() != '"' || raw.back() != '"') return std::nullopt;
  return raw.substr(1, raw.size() - 2);
}

std::optional<std::vector<std::string_view>> ArrayElements(std::string_view raw) {
  std::size_t i = 0;
  SkipSpace(raw, &i);
  if (i >= raw.size() || raw[i] != '[') return std::nullopt;
  ++i;
  std::vector<std::string_view> elements;
  SkipSpace(raw, &i);
  if (i < raw.size() && raw[i] == ']') return elements;
  while (true) {
    SkipSpace(raw, &i);
    const std::size_t start = i;
    if (!SkipValue(raw, &i)) return std::nullopt;
    elements.push_back(raw.substr(start, i - start));
    SkipSpace(raw, &i);
    if (i >= raw.size()) return std::nullopt;
    if (raw[i] == ']') return elements;
    if (raw[i] != ',') return std::nullopt;
    ++i;
  }
}

std::vector<std::string_view> PeerNodeIds(std::string_view message) {
  std::vector<std::string_view> ids;
  const auto type_raw = TopLevelMember(message, "type");
  const auto type = type_raw ? StringContents(*type_raw) : std::nullopt;
  auto add = [&ids](std::string_view object) {
    const auto raw = TopLevelMember(object, "node_id");
    const auto id = raw ? StringContents(*raw) : std::nullopt;
    if (id) ids.push_back(*id);
  };
  if (type == "peer_joined") {
    add(message);
  } else if (type == "peers") {
    const auto peers = TopLevelMember(message, "peers");
    const auto elements = peers ? ArrayElements(*peers) : std::nullopt;
    if (elements) {
      for (std::string_view peer : *elements) add(peer);
    }
  }
  return ids;
}

}  // namespace relay::bench
