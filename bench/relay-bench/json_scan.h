// Just enough JSON for relay-bench to read the relay's messages without a
// parser library: the raw text of one top-level member of an object. Nested
// objects, arrays and strings with escapes are skipped correctly; nothing is
// validated beyond what finding the member needs.
#ifndef RELAY_BENCH_RELAY_BENCH_JSON_SCAN_H_
#define RELAY_BENCH_RELAY_BENCH_JSON_SCAN_H_

#include <optional>
#include <string_view>
#include <vector>

namespace relay::bench {

// The raw value of member `key` of the object `doc` (for a string, with its
// quotes), or nullopt when absent or when `doc` is not an object.
std::optional<std::string_view> TopLevelMember(std::string_view doc, std::string_view key);

// The contents of a raw JSON string value without its quotes (escapes are
// left as they are), or nullopt when `raw` is not a string.
std::optional<std::string_view> StringContents(std::string_view raw);

// The raw elements of a raw JSON array, or nullopt when `raw` is not one.
std::optional<std::vector<std::string_view>> ArrayElements(std::string_view raw);

// The node ids a relay message names: every `peers[].node_id` of a `peers`
// message, or the `node_id` of a `peer_joined` (empty for anything else).
std::vector<std::string_view> PeerNodeIds(std::string_view message);

}  // namespace relay::bench

#endif  // RELAY_BENCH_RELAY_BENCH_JSON_SCAN_H_
