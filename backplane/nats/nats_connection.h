// The relay's one connection to NATS (docs/adr/0009-cluster-on-nats.md,
// section 5), with the ADR's options: reconnect forever, notice a dead or
// paused server within about 3 s, and never block or fail start-up because
// NATS is unreachable (nats.c then keeps trying in the background). It
// tracks the connection's state for readiness and metrics; publishing and
// KV are the adapter's, through raw().
#ifndef RELAY_BACKPLANE_NATS_NATS_CONNECTION_H_
#define RELAY_BACKPLANE_NATS_NATS_CONNECTION_H_

#include <nats/nats.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace relay::backplane::nats {

struct NatsSettings {
  std::vector<std::string> urls;  // NATS_URL, parsed by ParseNatsUrls
  std::string creds_file;         // NATS_CREDS_FILE; empty: none
  std::string tls_ca_file;        // NATS_TLS_CA_FILE; empty: no TLS unless a tls:// URL asks
  std::string name;               // shown by nats-server, "relay <instance_id>"
};

class NatsConnection {
 public:
  // NATS_URL: comma-separated nats:// or tls:// URLs, spaces around each
  // trimmed. InvalidArgument for an empty list, an empty entry or another
  // scheme.
  static absl::StatusOr<std::vector<std::string>> ParseNatsUrls(absl::string_view comma_separated);

  // A connection per the ADR. OK also when no server answers yet: then
  // connected() is false and nats.c keeps trying in the background.
  // InvalidArgument, or the nats.c error with nats.c's text, otherwise.
  //
  // on_state_change, if set, runs on nats.c's callback thread after every
  // connect, disconnect, reconnect and close. It must only post (to the
  // core or a queue): nats.c runs every connection event of the process on
  // that one thread, and it may run before Connect has returned.
  static absl::StatusOr<std::unique_ptr<NatsConnection>> Connect(
      const NatsSettings& settings, std::function<void()> on_state_change = nullptr);

  NatsConnection(const NatsConnection&) = delete;
  NatsConnection& operator=(const NatsConnection&) = delete;
  // Closes the connection and waits (bounded) for nats.c's closed callback,
  // its last, so none runs on a destroyed object.
  ~NatsConnection();

  // Thread-safe.
  bool connected() const { return connected_.load(std::memory_order_acquire); }
  std::uint64_t reconnects() const { return reconnects_.load(std::memory_order_relaxed); }
  std::uint64_t disconnects() const { return disconnects_.load(std::memory_order_relaxed); }

  // For the adapter; owned here.
  natsConnection* raw() { return nc_; }

 private:
  explicit NatsConnection(std::function<void()> on_state_change)
      : on_state_change_(std::move(on_state_change)) {}
  absl::Status Start(const NatsSettings& settings);

  static void OnConnected(natsConnection* nc, void* self);
  static void OnDisconnected(natsConnection* nc, void* self);
  static void OnReconnected(natsConnection* nc, void* self);
  static void OnClosed(natsConnection* nc, void* self);
  // connected_ from nats.c's own status, read and stored under state_mu_
  // so two threads' refreshes cannot store out of order.
  void RefreshConnected(natsConnection* nc);
  void Notify();

  const std::function<void()> on_state_change_;
  natsOptions* opts_ = nullptr;
  natsConnection* nc_ = nullptr;
  std::atomic<bool> connected_{false};
  std::atomic<std::uint64_t> reconnects_{0};
  std::atomic<std::uint64_t> disconnects_{0};
  std::mutex state_mu_;   // leaf but for nats.c's connection lock
  std::mutex closed_mu_;  // leaf
  std::condition_variable closed_cv_;
  bool closed_ = false;  // guarded by closed_mu_
};

}  // namespace relay::backplane::nats

#endif  // RELAY_BACKPLANE_NATS_NATS_CONNECTION_H_
