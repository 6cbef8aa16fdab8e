// libFuzzer target: arbitrary bytes as one client frame through the JSON
// reader, the client decoder and the server encoder. The invariants are in
// codec_harness.h; a violated one prints what it saw and traps, so libFuzzer
// saves the input as crash-<sha1> (docs/testing.md: reproducing a crash).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/strings/string_view.h"
#include "tests/fuzz/codec_harness.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string problem =
      relay::fuzz::CodecProblem(absl::string_view(reinterpret_cast<const char*>(data), size));
  if (!problem.empty()) {
    std::fprintf(stderr, "json_codec_fuzz: invariant violated: %s\n", problem.c_str());
    __builtin_trap();
  }
  return 0;
}
