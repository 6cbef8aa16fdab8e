// Text rules for the identifiers peers show each other (docs/protocol.md,
// "Identifiers"): a node_id or capability must read as what it is, so it may
// not hide or reorder characters; a display name may use any printable text.
//
// Input is UTF-8 (both transports validate it before the core sees it); an
// ill-formed sequence is refused too.
#ifndef RELAY_SERVER_CORE_TEXT_RULES_H_
#define RELAY_SERVER_CORE_TEXT_RULES_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace relay::core {

// Empty when `id` is a valid node_id or capability, else why not (a phrase
// such as "contains a control character"). Refused: C0 and C1 controls and
// DEL, bidirectional controls and marks (U+061C, U+200E, U+200F,
// U+202A-U+202E, U+2066-U+2069), zero-width and invisible format characters
// (U+180E, U+200B-U+200D, U+2060-U+2064, U+FEFF), and white space at either end.
absl::string_view IdentifierProblem(absl::string_view id);

// The same for a display name: controls and bidirectional controls are
// refused; white space and joiners (emoji sequences need U+200D) are not.
absl::string_view NameProblem(absl::string_view name);

// The first `n` UTF-8 characters of `s` (the seed server's default name).
std::string FirstChars(absl::string_view s, std::size_t n);

// `s` quoted for an error message, cut to a readable length (a client may
// send a megabyte-long target; echoing it back helps no one).
std::string QuoteForMessage(absl::string_view s);

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_TEXT_RULES_H_
