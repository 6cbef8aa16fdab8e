// What the relay prints once a listener accepts connections, and the address
// form it prints everywhere: "relay: listening ws on 127.0.0.1:8765", or with
// LOG_FORMAT=json the `listening` log event. Always on stdout, whatever
// LOG_LEVEL: supervisors, scripts and the e2e tests wait for these lines.
#ifndef RELAY_CMD_RELAY_LISTEN_LINE_H_
#define RELAY_CMD_RELAY_LISTEN_LINE_H_

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/util/log.h"

namespace relay {

// "127.0.0.1:8765", "[::1]:8765" (an IPv6 address in brackets, RFC 3986), or
// "localhost:50051". Also what gRPC's AddListeningPort takes.
std::string HostPort(absl::string_view host, int port);

// One line, newline included: in text "relay: listening TRANSPORT on
// HOST:PORT"; in JSON the `listening` log event, stamped `now`:
// {"ts":"...","level":"info","event":"listening","transport":"ws","address":"[::1]:8765"}
std::string ListeningLine(log::Format format, absl::string_view transport, absl::string_view host,
                          int port, absl::Time now);

}  // namespace relay

#endif  // RELAY_CMD_RELAY_LISTEN_LINE_H_
