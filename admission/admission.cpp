#include "admission/admission.hpp"

#include <arpa/inet.h>

#include <chrono>
#include <cstring>

namespace goring {

namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

} // namespace

std::string admission::client_key(const std::string& ip) {
  unsigned char v6[16];
  if (inet_pton(AF_INET6, ip.c_str(), v6) != 1)
    return ip;
  static constexpr unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  char text[INET6_ADDRSTRLEN];
  if (std::memcmp(v6, v4_mapped, sizeof(v4_mapped)) == 0)
    return inet_ntop(AF_INET, v6 + 12, text, sizeof(text));
  std::memset(v6 + 8, 0, 8);
  return std::string{inet_ntop(AF_INET6, v6, text, sizeof(text))} + "/64";
}

admission::ticket::ticket(ticket&& other) noexcept
  : owner_(std::move(other.owner_)), ip_(std::move(other.ip_)), counted_ip_(other.counted_ip_),
    over_ip_limit_(other.over_ip_limit_), holds_instance_slot_(other.holds_instance_slot_) {
  other.counted_ip_ = false;
  other.holds_instance_slot_ = false;
}

admission::ticket& admission::ticket::operator=(ticket&& other) noexcept {
  if (this != &other) {
    release();
    owner_ = std::move(other.owner_);
    ip_ = std::move(other.ip_);
    counted_ip_ = other.counted_ip_;
    over_ip_limit_ = other.over_ip_limit_;
    holds_instance_slot_ = other.holds_instance_slot_;
    other.counted_ip_ = false;
    other.holds_instance_slot_ = false;
  }
  return *this;
}

admission::ticket::~ticket() {
  release();
}

void admission::ticket::release() {
  if (!owner_)
    return;
  if (holds_instance_slot_)
    owner_->websockets_.fetch_sub(1, std::memory_order_relaxed);
  if (counted_ip_)
    owner_->disconnect(ip_);
  holds_instance_slot_ = false;
  counted_ip_ = false;
  owner_.reset();
}

admission::admission(limits l) : limits_(l) {
  // nop
}

admission::ticket admission::connect(const std::string& ip, int64_t now) {
  ticket t;
  t.owner_ = shared_from_this();
  t.ip_ = ip;
  if (!tracks_ips())
    return t;
  std::lock_guard<std::mutex> guard{mutex_};
  sweep(now);
  auto [it, fresh] = ips_.try_emplace(ip);
  if (fresh)
    it->second.upgrades = token_bucket::full(limits_.upgrade_burst_per_ip, now);
  ++it->second.connections;
  t.counted_ip_ = true;
  t.over_ip_limit_ =
    limits_.max_connections_per_ip != 0 && it->second.connections > limits_.max_connections_per_ip;
  return t;
}

admission::verdict admission::check_ip(ticket& t, int64_t now) {
  if (t.over_ip_limit_)
    return verdict::ip_connections;
  if (limits_.upgrade_rate_per_ip > 0 && t.counted_ip_) {
    std::lock_guard<std::mutex> guard{mutex_};
    auto it = ips_.find(t.ip_);
    if (it != ips_.end()
        && !it->second.upgrades.take(limits_.upgrade_rate_per_ip, limits_.upgrade_burst_per_ip,
                                     now))
      return verdict::ip_rate_limited;
  }
  return verdict::admitted;
}

bool admission::take_instance_slot(ticket& t) {
  if (t.holds_instance_slot_)
    return true;
  if (limits_.max_connections == 0) {
    websockets_.fetch_add(1, std::memory_order_relaxed);
  } else {
    // Compare and swap: two IO threads must not both take the last slot.
    int open = websockets_.load(std::memory_order_relaxed);
    do {
      if (open >= static_cast<int>(limits_.max_connections))
        return false;
    } while (!websockets_.compare_exchange_weak(open, open + 1, std::memory_order_relaxed));
  }
  t.holds_instance_slot_ = true;
  if (!t.owner_)
    t.owner_ = shared_from_this();
  return true;
}

std::size_t admission::tracked_ips() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return ips_.size();
}

void admission::disconnect(const std::string& ip) {
  std::lock_guard<std::mutex> guard{mutex_};
  auto it = ips_.find(ip);
  if (it == ips_.end())
    return;
  if (it->second.connections > 0)
    --it->second.connections;
  auto now = now_ns();
  if (it->second.connections == 0
      && it->second.upgrades.is_full(limits_.upgrade_rate_per_ip, limits_.upgrade_burst_per_ip,
                                     now))
    ips_.erase(it);
  else
    sweep(now);
}

void admission::sweep(int64_t now) {
  if (now - last_sweep_ns_ < 1'000'000'000)
    return;
  last_sweep_ns_ = now;
  for (auto it = ips_.begin(); it != ips_.end();) {
    if (it->second.connections == 0
        && it->second.upgrades.is_full(limits_.upgrade_rate_per_ip, limits_.upgrade_burst_per_ip,
                                       now))
      it = ips_.erase(it);
    else
      ++it;
  }
}

} // namespace goring
