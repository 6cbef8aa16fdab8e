// A counter per value of an enum whose values run 0..kCount-1 (drop
// reasons, limits): one type, so each table's counts read alike. Core
// thread only; the gateway's counts, read from other threads, are atomic
// (gateway/admission/refusal.h).
#ifndef RELAY_SERVER_CORE_ENUM_COUNTS_H_
#define RELAY_SERVER_CORE_ENUM_COUNTS_H_

#include <array>
#include <cstddef>
#include <cstdint>

namespace relay::core {

template <typename Enum, std::size_t kCount>
class EnumCounts {
 public:
  void Add(Enum value) { ++counts_[static_cast<std::size_t>(value)]; }
  std::uint64_t Get(Enum value) const { return counts_[static_cast<std::size_t>(value)]; }

 private:
  std::array<std::uint64_t, kCount> counts_{};
};

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_ENUM_COUNTS_H_
