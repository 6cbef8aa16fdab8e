#include "gateway/ws/handshake_limiter.h"

#include <utility>

namespace relay::gateway {

HandshakeToken& HandshakeToken::operator=(HandshakeToken&& other) noexcept {
  if (this != &other) {
    Release();
    counts_ = std::move(other.counts_);
    ip_ = std::move(other.ip_);
    per_ip_ = other.per_ip_;
    other.counts_ = nullptr;
    other.per_ip_ = false;
  }
  return *this;
}

void HandshakeToken::Release() {
  if (counts_ == nullptr) return;
  --counts_->total;
  if (per_ip_) {
    auto it = counts_->by_ip.find(ip_);
    if (it != counts_->by_ip.end() && --it->second == 0) counts_->by_ip.erase(it);
  }
  counts_ = nullptr;
  per_ip_ = false;
  ip_.clear();
}

HandshakeLimiter::Verdict HandshakeLimiter::Admit(absl::string_view ip, bool per_ip_exempt,
                                                  HandshakeToken* token) {
  token->Release();
  if (max_total_ > 0 && counts_->total >= max_total_) return Verdict::kTotalFull;
  const bool per_ip = !per_ip_exempt && max_per_ip_ > 0;
  if (per_ip && pending_from(ip) >= max_per_ip_) return Verdict::kPerIpFull;
  ++counts_->total;
  if (per_ip) {
    ++counts_->by_ip[ip];
    token->ip_ = std::string(ip);
  }
  token->per_ip_ = per_ip;
  token->counts_ = counts_;
  return Verdict::kAdmitted;
}

std::size_t HandshakeLimiter::pending_from(absl::string_view ip) const {
  const auto it = counts_->by_ip.find(ip);
  return it == counts_->by_ip.end() ? 0 : it->second;
}

}  // namespace relay::gateway
