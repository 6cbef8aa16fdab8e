#include "backplane/nats/nats_connection.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "server/limits.h"

namespace relay::backplane::nats {
namespace {

// How long the destructor waits for nats.c's closed callback: it follows
// natsConnection_Close at once unless the callback thread is stuck in
// someone's on_state_change.
constexpr std::chrono::seconds kClosedCallbackWait{5};

// nats.c reports errors as a status code plus a thread-local text.
absl::Status NatsError(absl::string_view what, natsStatus s) {
  const char* last = nats_GetLastError(nullptr);
  std::string message = absl::StrCat(what, ": ", natsStatus_GetText(s));
  if (last != nullptr && *last != '\0') absl::StrAppend(&message, " (", last, ")");
  switch (s) {
    case NATS_INVALID_ARG:
    case NATS_SSL_ERROR:  // only loading the CA file reports it here
      return absl::InvalidArgumentError(message);
    case NATS_NOT_FOUND:
      return absl::NotFoundError(message);
    case NATS_NO_SERVER:
    case NATS_TIMEOUT:
    case NATS_CONNECTION_CLOSED:
    case NATS_IO_ERROR:
      return absl::UnavailableError(message);
    default:
      return absl::InternalError(message);
  }
}

}  // namespace

absl::StatusOr<std::vector<std::string>> NatsConnection::ParseNatsUrls(
    absl::string_view comma_separated) {
  std::vector<std::string> urls;
  if (absl::StripAsciiWhitespace(comma_separated).empty()) {
    return absl::InvalidArgumentError(
        "NATS_URL is empty: give nats:// or tls:// URLs, comma-separated");
  }
  for (absl::string_view part : absl::StrSplit(comma_separated, ',')) {
    const absl::string_view url = absl::StripAsciiWhitespace(part);
    if (url.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("NATS_URL has an empty entry: \"", comma_separated, "\""));
    }
    const bool known_scheme = absl::StartsWith(url, "nats://") || absl::StartsWith(url, "tls://");
    if (!known_scheme || url.size() == url.find("://") + 3) {
      return absl::InvalidArgumentError(absl::StrCat(
          "NATS_URL entry \"", url, "\" is not a nats://host:port or tls://host:port URL"));
    }
    urls.emplace_back(url);
  }
  return urls;
}

absl::StatusOr<std::unique_ptr<NatsConnection>> NatsConnection::Connect(
    const NatsSettings& settings, std::function<void()> on_state_change) {
  std::unique_ptr<NatsConnection> conn(new NatsConnection(std::move(on_state_change)));
  if (absl::Status s = conn->Start(settings); !s.ok()) return s;
  return conn;
}

absl::Status NatsConnection::Start(const NatsSettings& settings) {
  if (settings.urls.empty()) return absl::InvalidArgumentError("no NATS URL given");
  // nats.c reads the creds file only when it connects, in the background
  // when the server is not up yet; checking here fails start-up instead of
  // retrying forever on a typo.
  if (!settings.creds_file.empty()) {
    std::FILE* f = std::fopen(settings.creds_file.c_str(), "r");
    if (f == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("NATS_CREDS_FILE \"", settings.creds_file,
                                                     "\" cannot be read: ", std::strerror(errno)));
    }
    std::fclose(f);
  }

  natsStatus s = natsOptions_Create(&opts_);
  if (s != NATS_OK) return NatsError("natsOptions_Create", s);

  std::vector<const char*> servers;
  for (const std::string& url : settings.urls) servers.push_back(url.c_str());
  s = natsOptions_SetServers(opts_, servers.data(), static_cast<int>(servers.size()));
  if (s != NATS_OK) {
    return NatsError(absl::StrCat("NATS_URL \"", absl::StrJoin(settings.urls, ","), "\""), s);
  }
  if (!settings.creds_file.empty()) {
    s = natsOptions_SetUserCredentialsFromFiles(opts_, settings.creds_file.c_str(), nullptr);
    if (s != NATS_OK) {
      return NatsError(absl::StrCat("NATS_CREDS_FILE \"", settings.creds_file, "\""), s);
    }
  }
  if (!settings.tls_ca_file.empty()) {
    s = natsOptions_LoadCATrustedCertificates(opts_, settings.tls_ca_file.c_str());
    if (s == NATS_OK) s = natsOptions_SetSecure(opts_, true);
    if (s != NATS_OK) {
      return NatsError(absl::StrCat("NATS_TLS_CA_FILE \"", settings.tls_ca_file, "\""), s);
    }
  }
  // Each option set in turn, the first failure reported by name.
  struct Step {
    const char* name;
    natsStatus status;
  };
  const Step steps[] = {
      {"natsOptions_SetName", natsOptions_SetName(opts_, settings.name.c_str())},
      // Negative: never give up (nats.c's default stops after 60 attempts).
      {"natsOptions_SetMaxReconnect", natsOptions_SetMaxReconnect(opts_, -1)},
      {"natsOptions_SetReconnectWait",
       natsOptions_SetReconnectWait(opts_, limits::kNatsReconnectWaitMs)},
      {"natsOptions_SetReconnectJitter",
       natsOptions_SetReconnectJitter(opts_, limits::kNatsReconnectJitterMs,
                                      limits::kNatsReconnectJitterTlsMs)},
      {"natsOptions_SetPingInterval",
       natsOptions_SetPingInterval(opts_, limits::kNatsPingIntervalMs)},
      {"natsOptions_SetMaxPingsOut", natsOptions_SetMaxPingsOut(opts_, limits::kNatsMaxPingsOut)},
      {"natsOptions_SetWriteDeadline",
       natsOptions_SetWriteDeadline(opts_, limits::kNatsWriteDeadlineMs)},
      // KV calls fail at once while disconnected, not after their timeout.
      {"natsOptions_SetFailRequestsOnDisconnect",
       natsOptions_SetFailRequestsOnDisconnect(opts_, true)},
      // nats.c's flusher otherwise waits 1 ms before each write.
      {"natsOptions_SetSendAsap", natsOptions_SetSendAsap(opts_, true)},
      // With a callback the retry runs in the background; with NULL it
      // would block Connect until a server answers.
      {"natsOptions_SetRetryOnFailedConnect",
       natsOptions_SetRetryOnFailedConnect(opts_, true, &NatsConnection::OnConnected, this)},
      {"natsOptions_SetDisconnectedCB",
       natsOptions_SetDisconnectedCB(opts_, &NatsConnection::OnDisconnected, this)},
      {"natsOptions_SetReconnectedCB",
       natsOptions_SetReconnectedCB(opts_, &NatsConnection::OnReconnected, this)},
      {"natsOptions_SetClosedCB", natsOptions_SetClosedCB(opts_, &NatsConnection::OnClosed, this)},
  };
  for (const Step& step : steps) {
    if (step.status != NATS_OK) return NatsError(step.name, step.status);
  }

  s = natsConnection_Connect(&nc_, opts_);
  if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
    nc_ = nullptr;
    return NatsError(absl::StrCat("connecting to NATS at ", absl::StrJoin(settings.urls, ",")), s);
  }
  // NATS_OK brings no connected callback; a state change that raced ahead
  // of this line reads the same status, so the flag ends right either way.
  RefreshConnected(nc_);
  return absl::OkStatus();
}

NatsConnection::~NatsConnection() {
  if (nc_ != nullptr) {
    natsConnection_Close(nc_);
    std::unique_lock<std::mutex> lock(closed_mu_);
    closed_cv_.wait_for(lock, kClosedCallbackWait, [this] { return closed_; });
    lock.unlock();
    natsConnection_Destroy(nc_);
  }
  natsOptions_Destroy(opts_);
}

void NatsConnection::RefreshConnected(natsConnection* nc) {
  std::lock_guard<std::mutex> lock(state_mu_);
  connected_.store(natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED,
                   std::memory_order_release);
}

void NatsConnection::Notify() {
  if (on_state_change_) on_state_change_();
}

void NatsConnection::OnConnected(natsConnection* nc, void* self) {
  auto* conn = static_cast<NatsConnection*>(self);
  conn->RefreshConnected(nc);
  conn->Notify();
}

void NatsConnection::OnDisconnected(natsConnection* nc, void* self) {
  auto* conn = static_cast<NatsConnection*>(self);
  conn->disconnects_.fetch_add(1, std::memory_order_relaxed);
  conn->RefreshConnected(nc);
  conn->Notify();
}

void NatsConnection::OnReconnected(natsConnection* nc, void* self) {
  auto* conn = static_cast<NatsConnection*>(self);
  conn->reconnects_.fetch_add(1, std::memory_order_relaxed);
  conn->RefreshConnected(nc);
  conn->Notify();
}

void NatsConnection::OnClosed(natsConnection* nc, void* self) {
  auto* conn = static_cast<NatsConnection*>(self);
  conn->connected_.store(false, std::memory_order_release);
  conn->Notify();
  std::lock_guard<std::mutex> lock(conn->closed_mu_);
  conn->closed_ = true;
  conn->closed_cv_.notify_all();
}

}  // namespace relay::backplane::nats
