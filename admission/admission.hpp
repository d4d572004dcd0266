/// Who may open a connection on the public port: connections per client IP,
/// upgrades per second per IP, WebSockets per instance. Thread-safe (the
/// listener and sessions run on every IO thread); pure code, no Asio.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "admission/token_bucket.hpp"

namespace goring {

class admission : public std::enable_shared_from_this<admission> {
public:
  /// 0 in any field: no such limit.
  struct limits {
    /// Upgrade requests a second per IP, and how many may come at once.
    double upgrade_rate_per_ip = 0;
    double upgrade_burst_per_ip = 0;
    /// TCP connections open at once per IP: WebSockets and requests still
    /// being read.
    unsigned max_connections_per_ip = 0;
    /// WebSockets open at once on this instance.
    unsigned max_connections = 0;
  };

  /// What an IP's limits say of an upgrade.
  enum class verdict : uint8_t {
    admitted,
    /// More upgrades from this IP than UPGRADE_RATE_PER_IP allows.
    ip_rate_limited,
    /// More connections from this IP than MAX_CONNECTIONS_PER_IP.
    ip_connections,
  };

  /// One TCP connection's place in the counts; gives it back when destroyed.
  class ticket {
  public:
    ticket() = default;
    ticket(ticket&& other) noexcept;
    ticket& operator=(ticket&& other) noexcept;
    ticket(const ticket&) = delete;
    ticket& operator=(const ticket&) = delete;
    ~ticket();

    /// The connection made its IP go over MAX_CONNECTIONS_PER_IP: whatever
    /// it asks for is refused.
    bool over_ip_limit() const {
      return over_ip_limit_;
    }
    const std::string& ip() const {
      return ip_;
    }

  private:
    friend class admission;
    void release();

    std::shared_ptr<admission> owner_;
    std::string ip_;
    bool counted_ip_ = false;
    bool over_ip_limit_ = false;
    bool holds_instance_slot_ = false;
  };

  /// The name an address is counted under: an IPv4 address as it is (also
  /// when IPv4-mapped), an IPv6 address by its /64 prefix, e.g.
  /// "2001:db8:1:2::/64" (one subscriber usually holds a whole /64, and
  /// counting its addresses one by one would let it spread over them).
  /// Anything else as it is.
  static std::string client_key(const std::string& ip);

  /// Made through std::make_shared: tickets keep their admission alive.
  explicit admission(limits l);

  /// Counts a new TCP connection from `ip` (as the listener accepted it).
  ticket connect(const std::string& ip, int64_t now_ns);

  /// Checks a WebSocket upgrade over `t`'s connection against its IP's
  /// limits: the connection count, then the upgrade rate (every attempt
  /// counts, whatever becomes of it later).
  verdict check_ip(ticket& t, int64_t now_ns);

  /// Takes an instance slot for `t`, held until `t` is destroyed; false
  /// when MAX_CONNECTIONS WebSockets are open.
  bool take_instance_slot(ticket& t);

  /// IPs the table tracks now (for tests and metrics).
  std::size_t tracked_ips() const;
  /// WebSockets holding an instance slot.
  int open_websockets() const {
    return websockets_.load(std::memory_order_relaxed);
  }

  const limits& configured() const {
    return limits_;
  }

private:
  struct per_ip {
    unsigned connections = 0;
    token_bucket upgrades;
  };

  bool tracks_ips() const {
    return limits_.max_connections_per_ip != 0 || limits_.upgrade_rate_per_ip > 0;
  }
  void disconnect(const std::string& ip);
  /// Drops entries with no connection and a full bucket; at most once a
  /// second, so the table stays as small as the traffic that fills it.
  void sweep(int64_t now_ns);

  limits limits_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, per_ip> ips_;
  int64_t last_sweep_ns_ = 0;
  std::atomic<int> websockets_{0};
};

} // namespace goring
