// The version of this build: the project's version (CMakeLists.txt) and the
// git commit it was built from, for `relay --version`, `relayctl --version`
// and the relay's start line. The definitions live in a .cc generated at build
// time (cmd/relay/build_info.cmake): a new commit recompiles that one file and
// relinks the two binaries, nothing else.
#ifndef RELAY_CMD_RELAY_BUILD_INFO_H_
#define RELAY_CMD_RELAY_BUILD_INFO_H_

#include <string>

namespace relay::build_info {

// "1.0.0": PROJECT_VERSION.
const char* Version();

// `git describe --always --dirty --abbrev=12` of the source tree at build
// time ("0123456789ab", "v1.0.0-3-g0123456789ab-dirty"), or "unknown" when it
// was built without git or outside a git checkout (a source tarball).
const char* Commit();

// `program` VERSION (commit COMMIT), the one line --version prints, without a
// newline: "relay 1.0.0 (commit 0123456789ab)".
std::string VersionLine(const char* program);

}  // namespace relay::build_info

#endif  // RELAY_CMD_RELAY_BUILD_INFO_H_
