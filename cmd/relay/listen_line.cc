// HostPort and ListeningLine (see listen_line.h).
#include "cmd/relay/listen_line.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gateway/json/json_writer.h"

namespace relay {

std::string HostPort(absl::string_view host, int port) {
  // A colon in the host is an IPv6 address (a host name or IPv4 has none).
  if (absl::StrContains(host, ':') && !absl::StartsWith(host, "[")) {
    return absl::StrCat("[", host, "]:", port);
  }
  return absl::StrCat(host, ":", port);
}

std::string ListeningLine(log::Format format, absl::string_view transport, absl::string_view host,
                          int port, absl::Time now) {
  const std::string address = HostPort(host, port);
  if (format == log::Format::kText) {
    return absl::StrCat("relay: listening ", transport, " on ", address, "\n");
  }
  // The shape of every JSON log line (server/util/log.h): ts, level, event.
  std::string out = "{\"ts\":";
  gateway::json::AppendString(&out,
                              absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", now, absl::UTCTimeZone()));
  out.append(",\"level\":\"info\",\"event\":");
  gateway::json::AppendString(&out, log::LogEventName(log::LogEvent::kListening));
  out.append(",\"transport\":");
  gateway::json::AppendString(&out, transport);
  out.append(",\"address\":");
  gateway::json::AppendString(&out, address);
  out.append("}\n");
  return out;
}

}  // namespace relay
