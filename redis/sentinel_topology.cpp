/// Sentinel discovery and failover on the topology's own strand. Two
/// connections go to one sentinel at a time (a query connection for
/// SENTINEL GET-MASTER-ADDR-BY-NAME and a watch subscribed to
/// +switch-master); when that sentinel is lost the next one is tried. The
/// two data paths go to the address the sentinels name, and are used only
/// once ROLE says that server is a master.
///
/// Every connection's callbacks carry the generation they were made for and
/// come back to this strand; a callback of a connection that was replaced
/// (a sentinel given up on, a master left behind) finds another generation
/// and does nothing.
#include "redis/sentinel_topology.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <sstream>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "config/log.hpp"
#include "metrics/instance_metrics.hpp"

namespace goring::redis {

namespace {

namespace asio = boost::asio;
using strand_type = asio::strand<asio::io_context::executor_type>;
using namespace std::chrono_literals;

constexpr const char* component = "redis_sentinel";
/// How often the sentinels are asked and unconfirmed paths checked while
/// no master takes commands.
constexpr auto recheck_interval = 500ms;
/// How often the sentinels are asked while all is well: a safety net for a
/// +switch-master the watch missed.
constexpr auto steady_interval = 5s;
/// A ROLE unanswered this long (a hung server) drops the connection.
constexpr auto role_timeout = 2s;
/// The pause after every sentinel failed in a row.
constexpr auto round_pause = 1s;

std::size_t index(link_role role) {
  return static_cast<std::size_t>(role);
}

std::string address_of(const std::string& host, uint16_t port) {
  return host + ":" + std::to_string(port);
}

} // namespace

struct sentinel_topology::impl : std::enable_shared_from_this<impl> {
  /// One data path: its connection to the current master and what is known
  /// of it. Touched only on the strand.
  struct data_path {
    std::shared_ptr<async_connection> conn;
    /// Logged in (on_connected seen since the last loss).
    bool connected = false;
    /// ROLE said master: commands (or subscriptions) go here.
    bool confirmed = false;
    /// The ROLE in flight, 0 when none.
    uint64_t verifying = 0;
    std::shared_ptr<asio::steady_timer> verify_timer;
    /// Where this path was last confirmed, "" before the first time.
    std::string last_up;
  };

  impl(asio::io_context& io, options opts, topology_events events)
    : io_(io), strand_(asio::make_strand(io)), opts_(std::move(opts)), events_(std::move(events)),
      tick_(strand_), pause_(strand_) {
    described_ = "no master (sentinel master " + opts_.master_name + ")";
  }

  /// Runs `f` on the strand unless the topology is gone or stopped.
  template <class F>
  static void on_strand(const std::weak_ptr<impl>& weak, F f) {
    auto self = weak.lock();
    if (!self)
      return;
    asio::post(self->strand_, [self, f = std::move(f)]() mutable {
      if (!self->stopped_)
        f(*self);
    });
  }

  template <class F>
  void post_self(F f) {
    on_strand(weak_from_this(), std::move(f));
  }

  // -- start and stop ---------------------------------------------------------

  void do_start() {
    if (started_)
      return;
    started_ = true;
    connect_sentinel();
    schedule_tick();
  }

  void do_stop() {
    tick_.cancel();
    pause_.cancel();
    ++sentinel_gen_;
    ++data_gen_;
    if (query_)
      query_->stop();
    if (watch_)
      watch_->stop();
    for (auto& p : paths_) {
      if (p.verify_timer)
        p.verify_timer->cancel();
      if (p.conn)
        p.conn->stop();
    }
    std::lock_guard<std::mutex> guard{live_mutex_};
    live_[0].reset();
    live_[1].reset();
  }

  // -- sentinels --------------------------------------------------------------

  const endpoint& sentinel() const {
    return opts_.sentinels[sentinel_];
  }
  std::string sentinel_name() const {
    return address_of(sentinel().host, sentinel().port);
  }

  /// Opens the query and watch connections to the current sentinel; the
  /// query asks as soon as it is up.
  void connect_sentinel() {
    auto gen = ++sentinel_gen_;
    query_up_ = false;
    asking_ = false;
    if (query_)
      query_->stop();
    if (watch_)
      watch_->stop();
    auto weak = weak_from_this();
    async_connection::callbacks query;
    query.on_connected = [weak, gen] {
      on_strand(weak, [gen](impl& self) { self.query_connected(gen); });
    };
    query.on_disconnected = [weak, gen](const std::string& why) {
      on_strand(weak, [gen, why](impl& self) { self.sentinel_lost(gen, why); });
    };
    async_connection::callbacks watch;
    watch.on_connected = [weak, gen] {
      on_strand(weak, [gen](impl& self) { self.watch_connected(gen); });
    };
    watch.on_disconnected = query.on_disconnected;
    watch.on_message = [weak, gen](const std::string& channel, const std::string& payload) {
      on_strand(weak, [gen, channel, payload](impl& self) {
        self.sentinel_message(gen, channel, payload);
      });
    };
    query_ = std::make_unique<async_connection>(io_, sentinel(), std::move(query));
    watch_ = std::make_unique<async_connection>(io_, sentinel(), std::move(watch));
    query_->start();
    watch_->start();
  }

  /// Gives up on the current sentinel for the next one; after a whole round
  /// of failures, waits a little first. The data paths stay as they are: a
  /// master that works goes on working while no sentinel answers.
  void next_sentinel() {
    ++sentinel_gen_;
    query_up_ = false;
    asking_ = false;
    sentinel_ = (sentinel_ + 1) % opts_.sentinels.size();
    if (++failed_in_a_row_ < opts_.sentinels.size()) {
      connect_sentinel();
      return;
    }
    failed_in_a_row_ = 0;
    GORING_LOG(warn, component,
               "no sentinel of "
                 << opts_.sentinels.size() << " answers for master " << opts_.master_name
                 << "; asking again in "
                 << std::chrono::duration_cast<std::chrono::milliseconds>(round_pause).count()
                 << " ms");
    if (query_)
      query_->stop();
    if (watch_)
      watch_->stop();
    pause_.expires_after(round_pause);
    pause_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
      if (ec)
        return;
      on_strand(weak, [](impl& self) { self.connect_sentinel(); });
    });
  }

  void sentinel_lost(uint64_t gen, const std::string& why) {
    if (gen != sentinel_gen_)
      return;
    GORING_LOG(warn, component, "sentinel " << sentinel_name() << " lost: " << why);
    next_sentinel();
  }

  void query_connected(uint64_t gen) {
    if (gen != sentinel_gen_)
      return;
    query_up_ = true;
    ask();
  }

  void watch_connected(uint64_t gen) {
    if (gen != sentinel_gen_)
      return;
    watch_->subscribe({"+switch-master"}, [weak = weak_from_this(), gen](reply r) {
      on_strand(weak, [gen, r](impl& self) {
        if (gen != self.sentinel_gen_)
          return;
        if (r.is_error()) {
          GORING_LOG(warn, component,
                     "sentinel " << self.sentinel_name()
                                 << " refused SUBSCRIBE +switch-master: " << r.str);
          return;
        }
        // A switch may have happened while nothing listened.
        self.ask();
      });
    });
  }

  /// SENTINEL GET-MASTER-ADDR-BY-NAME on the current sentinel, unless a
  /// question is out already; without a query connection, asked when it
  /// comes up.
  void ask() {
    if (!query_up_ || asking_)
      return;
    asking_ = true;
    auto gen = sentinel_gen_;
    query_->command({"SENTINEL", "GET-MASTER-ADDR-BY-NAME", opts_.master_name},
                    [weak = weak_from_this(), gen](reply r) {
                      on_strand(weak, [gen, r](impl& self) { self.answered(gen, r); });
                    });
  }

  void answered(uint64_t gen, const reply& r) {
    if (gen != sentinel_gen_)
      return;
    asking_ = false;
    if (r.type == reply::kind::array && r.elements.size() == 2
        && r.elements[0].type == reply::kind::string && r.elements[1].type == reply::kind::string) {
      auto port = std::strtoul(r.elements[1].str.c_str(), nullptr, 10);
      if (port > 0 && port <= 65535 && !r.elements[0].str.empty()) {
        failed_in_a_row_ = 0;
        found(r.elements[0].str, static_cast<uint16_t>(port), "sentinel " + sentinel_name());
        return;
      }
    }
    GORING_LOG(warn, component,
               "sentinel " << sentinel_name() << " gave no address for master " << opts_.master_name
                           << " ("
                           << (r.is_error() ? r.str
                               : r.is_nil() ? "unknown name"
                                            : "odd reply")
                           << "); asking the next one");
    next_sentinel();
  }

  /// "+switch-master NAME OLD_IP OLD_PORT NEW_IP NEW_PORT" on the watch.
  void sentinel_message(uint64_t gen, const std::string& channel, const std::string& payload) {
    if (gen != sentinel_gen_ || channel != "+switch-master")
      return;
    std::istringstream words{payload};
    std::string name, old_host, old_port, new_host;
    unsigned long new_port = 0;
    if (!(words >> name >> old_host >> old_port >> new_host >> new_port)
        || name != opts_.master_name || new_port == 0 || new_port > 65535)
      return;
    GORING_LOG_WITH(warn, component,
                    ({{"old_master", old_host + ":" + old_port},
                      {"new_master", address_of(new_host, static_cast<uint16_t>(new_port))}}),
                    "sentinel " << sentinel_name() << ": +switch-master " << name << " from "
                                << old_host << ":" << old_port << " to "
                                << address_of(new_host, static_cast<uint16_t>(new_port)));
    found(new_host, static_cast<uint16_t>(new_port), "+switch-master");
  }

  // -- the data paths ---------------------------------------------------------

  /// The sentinels name host:port as the master.
  void found(const std::string& host, uint16_t port, const std::string& source) {
    auto addr = address_of(host, port);
    if (addr == master_) {
      // Same master: its paths reconnect by themselves; check again one
      // that ROLE refused before (it may be the master by now).
      for (auto role : {link_role::commands, link_role::subscriber})
        if (!paths_[index(role)].confirmed)
          verify(role);
      return;
    }
    switch_to(host, port, source);
  }

  /// Drops both paths and connects them to host:port. Whatever the old
  /// connections still had in flight fails with an error reply; nothing
  /// they report reaches the new state (another generation).
  void switch_to(const std::string& host, uint16_t port, const std::string& source) {
    auto old = master_;
    master_ = address_of(host, port);
    auto gen = ++data_gen_;
    if (old.empty())
      GORING_LOG(info, component,
                 "master " << opts_.master_name << " is at " << master_ << " (" << source << ")");
    else
      GORING_LOG_WITH(warn, component, ({{"old_master", old}, {"new_master", master_}}),
                      "master " << opts_.master_name << " moved from " << old << " to " << master_
                                << " (" << source << "); reconnecting both paths");
    {
      std::lock_guard<std::mutex> guard{live_mutex_};
      described_ = master_;
    }
    for (auto role : {link_role::commands, link_role::subscriber}) {
      auto& p = paths_[index(role)];
      if (p.verify_timer)
        p.verify_timer->cancel();
      if (p.conn)
        p.conn->stop();
      if (p.confirmed)
        unconfirm(role, "the master moved to " + master_);
      p.connected = false;
      p.verifying = 0;
      auto where = role == link_role::commands ? opts_.commands : opts_.subscriber;
      where.host = host;
      where.port = port;
      auto weak = weak_from_this();
      async_connection::callbacks cbs;
      cbs.on_connected = [weak, gen, role] {
        on_strand(weak, [gen, role](impl& self) { self.path_connected(role, gen); });
      };
      cbs.on_disconnected = [weak, gen, role](const std::string& why) {
        on_strand(weak, [gen, role, why](impl& self) { self.path_lost(role, gen, why); });
      };
      if (role == link_role::subscriber)
        cbs.on_message = [weak, gen](const std::string& channel, const std::string& payload) {
          // Straight through: the bridge hands messages to its actor anyway,
          // and a stopped connection delivers none.
          auto self = weak.lock();
          if (self && !self->stopped_ && self->events_.on_message)
            self->events_.on_message(channel, payload);
        };
      p.conn = std::make_shared<async_connection>(io_, std::move(where), std::move(cbs));
      p.conn->start();
    }
  }

  void path_connected(link_role role, uint64_t gen) {
    if (gen != data_gen_)
      return;
    paths_[index(role)].connected = true;
    verify(role);
  }

  void path_lost(link_role role, uint64_t gen, const std::string& why) {
    if (gen != data_gen_)
      return;
    auto& p = paths_[index(role)];
    p.connected = false;
    p.verifying = 0;
    if (p.verify_timer)
      p.verify_timer->cancel();
    if (p.confirmed)
      unconfirm(role, why);
    else if (events_.on_down)
      events_.on_down(role, why);
    // Lost: the master may have failed over.
    ask();
  }

  /// Sends ROLE on a logged-in path; a master confirms it, anything else
  /// (a replica, a demoted old master) keeps it unused, and no answer in
  /// role_timeout drops the connection.
  void verify(link_role role) {
    auto& p = paths_[index(role)];
    if (!p.connected || p.verifying != 0)
      return;
    auto seq = p.verifying = ++verify_seq_;
    auto gen = data_gen_;
    auto weak = weak_from_this();
    p.verify_timer = std::make_shared<asio::steady_timer>(strand_, role_timeout);
    p.verify_timer->async_wait([weak, gen, role, seq](const boost::system::error_code& ec) {
      if (ec)
        return;
      on_strand(weak, [gen, role, seq](impl& self) {
        auto& p = self.paths_[index(role)];
        if (gen != self.data_gen_ || p.verifying != seq)
          return;
        GORING_LOG(
          warn, component,
          self.master_ << " did not answer ROLE within "
                       << std::chrono::duration_cast<std::chrono::seconds>(role_timeout).count()
                       << " s on the " << to_string(role) << " path; reconnecting");
        p.verifying = 0;
        p.conn->restart("ROLE unanswered");
      });
    });
    p.conn->command({"ROLE"}, [weak, gen, role, seq](reply r) {
      on_strand(weak, [gen, role, seq, r](impl& self) { self.role_answered(role, gen, seq, r); });
    });
  }

  void role_answered(link_role role, uint64_t gen, uint64_t seq, const reply& r) {
    auto& p = paths_[index(role)];
    if (gen != data_gen_ || p.verifying != seq)
      return;
    p.verifying = 0;
    if (p.verify_timer)
      p.verify_timer->cancel();
    bool master = r.type == reply::kind::array && !r.elements.empty()
                  && r.elements[0].type == reply::kind::string && r.elements[0].str == "master";
    if (master) {
      if (!p.confirmed)
        confirm(role);
      return;
    }
    if (r.is_error()
        && (r.str.rfind("redis connection lost", 0) == 0 || r.str == "redis not connected"))
      return; // path_lost follows
    auto said = r.is_error() ? "an error: " + r.str
                : r.type == reply::kind::array && !r.elements.empty()
                  ? "'" + r.elements[0].str + "'"
                  : std::string{"something odd"};
    GORING_LOG(warn, component,
               master_ << " answered ROLE with " << said << " on the " << to_string(role)
                       << " path: not a master, nothing is sent there; asking the sentinels");
    if (p.confirmed)
      unconfirm(role, master_ + " is no master any more");
    ask();
  }

  void confirm(link_role role) {
    auto& p = paths_[index(role)];
    p.confirmed = true;
    bool moved = !p.last_up.empty() && p.last_up != master_;
    auto previous = p.last_up;
    p.last_up = master_;
    if (moved && role == link_role::commands && events_.on_failover)
      events_.on_failover();
    {
      std::lock_guard<std::mutex> guard{live_mutex_};
      live_[index(role)] = p.conn;
    }
    if (role == link_role::commands) {
      goring_metrics().redis_master_known(master_);
      if (moved) {
        goring_metrics().redis_failovers->inc();
        GORING_LOG_WITH(warn, component, ({{"old_master", previous}, {"new_master", master_}}),
                        "commands go to the new master " << master_ << " (was " << previous << ")");
      }
    }
    GORING_LOG(info, component,
               to_string(role) << " path up on master " << master_ << " (ROLE checked)");
    if (events_.on_up)
      events_.on_up(role, moved);
    schedule_tick();
  }

  void unconfirm(link_role role, const std::string& why) {
    auto& p = paths_[index(role)];
    p.confirmed = false;
    {
      std::lock_guard<std::mutex> guard{live_mutex_};
      live_[index(role)].reset();
    }
    if (role == link_role::commands)
      goring_metrics().redis_master_lost();
    if (events_.on_down)
      events_.on_down(role, why);
    schedule_tick();
  }

  // -- the periodic check -----------------------------------------------------

  bool all_confirmed() const {
    return paths_[0].confirmed && paths_[1].confirmed;
  }

  /// Asks the sentinels again, often while a path is unconfirmed and
  /// seldom while all is well; rearmed sooner when that changes.
  void schedule_tick() {
    auto interval = all_confirmed() ? steady_interval : recheck_interval;
    auto due = std::chrono::steady_clock::now() + interval;
    if (tick_armed_ && tick_due_ <= due)
      return;
    tick_armed_ = true;
    tick_due_ = due;
    tick_.expires_at(due);
    tick_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
      if (ec)
        return;
      on_strand(weak, [](impl& self) {
        self.tick_armed_ = false;
        self.ask();
        for (auto role : {link_role::commands, link_role::subscriber})
          if (!self.paths_[index(role)].confirmed)
            self.verify(role);
        self.schedule_tick();
      });
    });
  }

  asio::io_context& io_;
  strand_type strand_;
  const options opts_;
  const topology_events events_;
  asio::steady_timer tick_;
  bool tick_armed_ = false;
  std::chrono::steady_clock::time_point tick_due_;
  asio::steady_timer pause_;
  bool started_ = false;
  /// Set by stop() from any thread; nothing runs on the strand after it.
  std::atomic<bool> stopped_{false};

  std::size_t sentinel_ = 0;
  uint64_t sentinel_gen_ = 0;
  std::unique_ptr<async_connection> query_;
  std::unique_ptr<async_connection> watch_;
  bool query_up_ = false;
  bool asking_ = false;
  std::size_t failed_in_a_row_ = 0;

  /// "host:port" the sentinels named last, "" before they named any.
  std::string master_;
  uint64_t data_gen_ = 0;
  uint64_t verify_seq_ = 0;
  std::array<data_path, 2> paths_;

  /// What callers on other threads see: the confirmed connections and
  /// describe()'s text.
  mutable std::mutex live_mutex_;
  std::array<std::shared_ptr<async_connection>, 2> live_;
  std::string described_;
};

sentinel_topology::sentinel_topology(boost::asio::io_context& io, options opts,
                                     topology_events events)
  : impl_(std::make_shared<impl>(io, std::move(opts), std::move(events))) {
  // nop
}

sentinel_topology::~sentinel_topology() {
  stop();
}

void sentinel_topology::start() {
  impl_->post_self([](impl& self) { self.do_start(); });
}

void sentinel_topology::stop() {
  if (impl_->stopped_.exchange(true))
    return;
  // Posted past the stopped check: it is the last thing run on the strand.
  asio::post(impl_->strand_, [self = impl_] { self->do_stop(); });
}

void sentinel_topology::command(std::vector<std::string> argv, reply_handler on_reply) {
  std::shared_ptr<async_connection> conn;
  {
    std::lock_guard<std::mutex> guard{impl_->live_mutex_};
    conn = impl_->live_[index(link_role::commands)];
  }
  if (conn) {
    conn->command(std::move(argv), std::move(on_reply));
    return;
  }
  if (!on_reply)
    return;
  asio::post(impl_->strand_, [h = std::move(on_reply), name = impl_->opts_.master_name] {
    h(reply::make_error("no Redis master: Sentinel master " + name
                        + " is failing over or unreachable"));
  });
}

void sentinel_topology::subscribe(std::vector<std::string> channels, reply_handler on_done) {
  std::shared_ptr<async_connection> conn;
  {
    std::lock_guard<std::mutex> guard{impl_->live_mutex_};
    conn = impl_->live_[index(link_role::subscriber)];
  }
  if (conn) {
    conn->subscribe(std::move(channels), std::move(on_done));
    return;
  }
  if (!on_done)
    return;
  asio::post(impl_->strand_, [h = std::move(on_done), name = impl_->opts_.master_name] {
    h(reply::make_error("no Redis master: Sentinel master " + name
                        + " is failing over or unreachable"));
  });
}

void sentinel_topology::unsubscribe(std::vector<std::string> channels) {
  std::shared_ptr<async_connection> conn;
  {
    std::lock_guard<std::mutex> guard{impl_->live_mutex_};
    conn = impl_->live_[index(link_role::subscriber)];
  }
  if (conn)
    conn->unsubscribe(std::move(channels));
}

bool sentinel_topology::subscriber_connected() const {
  std::lock_guard<std::mutex> guard{impl_->live_mutex_};
  return impl_->live_[index(link_role::subscriber)] != nullptr;
}

void sentinel_topology::restart_subscriber(std::string why) {
  impl_->post_self([why = std::move(why)](impl& self) {
    auto& p = self.paths_[index(link_role::subscriber)];
    if (p.conn && p.connected)
      p.conn->restart(why);
  });
}

std::string sentinel_topology::describe() const {
  std::lock_guard<std::mutex> guard{impl_->live_mutex_};
  return impl_->described_;
}

void sentinel_topology::suspect(std::string why) {
  impl_->post_self([why = std::move(why)](impl& self) {
    auto& p = self.paths_[index(link_role::commands)];
    // A burst of READONLY replies asks once, and says so once.
    if (!self.asking_ && p.verifying == 0)
      GORING_LOG(info, component, "looking for the master again: " << why);
    self.ask();
    if (p.confirmed)
      self.verify(link_role::commands);
  });
}

} // namespace goring::redis
