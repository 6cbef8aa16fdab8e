// libFuzzer target: bytes as a script of operations on one RelayCore
// (connect, register, broadcast, llm requests, clock advances, CloseAll...)
// checked step by step against a model; see core_harness.h for the script
// format and the invariants. A violated one prints the step and traps.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/strings/string_view.h"
#include "tests/fuzz/core_harness.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string problem =
      relay::fuzz::CoreEventsProblem(absl::string_view(reinterpret_cast<const char*>(data), size));
  if (!problem.empty()) {
    std::fprintf(stderr, "core_events_fuzz: invariant violated: %s\n", problem.c_str());
    __builtin_trap();
  }
  return 0;
}
