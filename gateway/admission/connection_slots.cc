#include "gateway/admission/connection_slots.h"

#include <utility>

#include "absl/status/status.h"

namespace relay::gateway {

ConnectionSlot& ConnectionSlot::operator=(ConnectionSlot&& other) noexcept {
  if (this != &other) {
    Release();
    counts_ = std::move(other.counts_);
    client_ip_ = std::move(other.client_ip_);
    other.counts_ = nullptr;
    other.client_ip_.clear();
  }
  return *this;
}

void ConnectionSlot::Release() {
  if (counts_ == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(counts_->mu);
    --counts_->total;
    auto it = counts_->by_ip.find(client_ip_);
    if (it != counts_->by_ip.end() && --it->second == 0) counts_->by_ip.erase(it);
  }
  counts_ = nullptr;
  client_ip_.clear();
}

absl::StatusOr<ConnectionSlot> ConnectionSlots::Acquire(absl::string_view client_ip) {
  {
    std::lock_guard<std::mutex> lock(counts_->mu);
    if (max_total_ > 0 && counts_->total >= max_total_) {
      return absl::ResourceExhaustedError(
          "the relay has reached its connection limit; retry later");
    }
    const auto found = counts_->by_ip.find(client_ip);
    const std::size_t from_ip = found == counts_->by_ip.end() ? 0 : found->second;
    if (max_per_ip_ > 0 && from_ip >= max_per_ip_) {
      return absl::ResourceExhaustedError("too many connections from this IP address; retry later");
    }
    // Counted per IP also without a per-IP bound, so open_from() is true.
    ++counts_->by_ip[client_ip];
    ++counts_->total;
  }
  ConnectionSlot slot;
  slot.counts_ = counts_;
  slot.client_ip_ = std::string(client_ip);
  return slot;
}

std::size_t ConnectionSlots::open() const {
  std::lock_guard<std::mutex> lock(counts_->mu);
  return counts_->total;
}

std::size_t ConnectionSlots::open_from(absl::string_view client_ip) const {
  std::lock_guard<std::mutex> lock(counts_->mu);
  const auto it = counts_->by_ip.find(client_ip);
  return it == counts_->by_ip.end() ? 0 : it->second;
}

}  // namespace relay::gateway
