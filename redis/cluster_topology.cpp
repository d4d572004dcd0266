/// Redis Cluster routing on the topology's own strand. Commands do not pass
/// through the strand: callers look the slot up in an immutable routing
/// table (swapped under a mutex when the map changes) and send straight on
/// the master's connection; only replies that redirect (MOVED, ASK) or ask
/// to wait (TRYAGAIN, CLUSTERDOWN) come back here. Subscriptions, the slot
/// map and every connection's state live on the strand.
#include "redis/cluster_topology.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <set>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "config/log.hpp"
#include "metrics/instance_metrics.hpp"
#include "redis/cluster_keys.hpp"
#include "redis/shard_subscriber.hpp"

namespace goring::redis {

namespace {

namespace asio = boost::asio;
using strand_type = asio::strand<asio::io_context::executor_type>;
using namespace std::chrono_literals;

constexpr const char* component = "redis_cluster";
/// How often the slot map is asked for while all is well (a safety net for
/// changes no reply told us of), and while something is wrong.
constexpr auto steady_interval = 5s;
constexpr auto recheck_interval = 250ms;
/// A CLUSTER SLOTS unanswered this long gives up on that node.
constexpr auto slots_timeout = 2s;
/// Waits between tries of a command the cluster asked to retry (TRYAGAIN
/// during a migration, CLUSTERDOWN during a failover), and how many tries:
/// about 2.5 s in all, under the command runner's 5 s timeout.
constexpr auto retry_pause = 125ms;
constexpr int max_retries = 20;
/// Commands waiting for a redirect target's connection to come up.
constexpr std::size_t max_parked = 10000;
/// Pause before a lost shard subscriber is made again.
constexpr auto subscriber_backoff = 200ms;

std::string address_of(const std::string& host, uint16_t port) {
  return host + ":" + std::to_string(port);
}

bool starts_with(const std::string& s, const char* prefix) {
  return s.rfind(prefix, 0) == 0;
}

enum class redirect : uint8_t { none, moved, ask, retry, lost };

redirect redirect_of(const reply& r) {
  if (!r.is_error())
    return redirect::none;
  if (starts_with(r.str, "MOVED "))
    return redirect::moved;
  if (starts_with(r.str, "ASK "))
    return redirect::ask;
  if (starts_with(r.str, "TRYAGAIN") || starts_with(r.str, "CLUSTERDOWN"))
    return redirect::retry;
  if (starts_with(r.str, "redis connection lost") || r.str == "redis not connected")
    return redirect::lost;
  return redirect::none;
}

/// "MOVED 3999 127.0.0.1:6381" -> slot and address.
bool parse_redirect(const std::string& text, uint16_t& slot, std::string& host, uint16_t& port) {
  auto first = text.find(' ');
  auto second = text.find(' ', first + 1);
  if (first == std::string::npos || second == std::string::npos)
    return false;
  slot = static_cast<uint16_t>(std::strtoul(text.c_str() + first + 1, nullptr, 10));
  auto addr = text.substr(second + 1);
  auto colon = addr.rfind(':');
  if (colon == std::string::npos)
    return false;
  host = addr.substr(0, colon);
  auto p = std::strtoul(addr.c_str() + colon + 1, nullptr, 10);
  if (p == 0 || p > 65535 || slot >= cluster::slot_count)
    return false;
  port = static_cast<uint16_t>(p);
  return true;
}

/// What the callers' threads route with: the master of every slot and its
/// command connection. Never changed once published.
struct route_table {
  std::array<int16_t, cluster::slot_count> slot_master;
  std::vector<std::shared_ptr<async_connection>> conns;
};

} // namespace

struct cluster_topology::impl : std::enable_shared_from_this<impl> {
  /// A command waiting for a connection to come up (a redirect target).
  struct parked {
    std::vector<std::string> argv;
    reply_handler on_reply;
    int redirects;
    int retries;
    bool asking;
  };

  /// One master (or a node a redirect named) and its connections. Touched
  /// only on the strand.
  struct node {
    std::string addr;
    std::string host;
    uint16_t port = 0;
    std::shared_ptr<async_connection> commands;
    bool commands_up = false;
    std::deque<parked> waiting;
    std::unique_ptr<shard_subscriber> subscriber;
    bool subscriber_up = false;
    /// Channels SSUBSCRIBEd (or on their way) on the current subscriber.
    std::set<std::string> subscribed;
    /// Those on their way, and who waits for their confirmation: a
    /// subscribe() answers only once its channels listen, or a publish in
    /// its answer (the bridge's probe) could overtake the SSUBSCRIBE.
    std::map<std::string, std::vector<reply_handler>> confirming;
    /// Counts the subscribers made; a late reply of an old one is ignored.
    unsigned generation = 0;
    std::shared_ptr<asio::steady_timer> subscriber_timer;
    bool retired = false;
  };
  using node_ptr = std::shared_ptr<node>;

  impl(asio::io_context& io, options opts, topology_events events)
    : io_(io), strand_(asio::make_strand(io)), opts_(std::move(opts)), events_(std::move(events)),
      tick_(strand_), resync_timer_(strand_) {
    for (auto& s : opts_.seeds)
      add_candidate(s.host, s.port);
    described_ = "cluster: no slot map yet (seeds " + seed_text() + ")";
  }

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

  std::string seed_text() const {
    std::string out;
    for (auto& s : opts_.seeds)
      out += (out.empty() ? "" : ", ") + address_of(s.host, s.port);
    return out;
  }

  // -- start and stop ---------------------------------------------------------

  void do_start() {
    if (started_)
      return;
    started_ = true;
    connect_control();
    schedule_tick();
  }

  void do_stop() {
    tick_.cancel();
    resync_timer_.cancel();
    ++control_gen_;
    if (control_)
      control_->stop();
    for (auto& [addr, n] : nodes_)
      retire(*n, "the topology stopped");
    nodes_.clear();
    std::lock_guard<std::mutex> guard{live_mutex_};
    table_.reset();
  }

  // -- the control connection and the slot map -------------------------------

  void add_candidate(const std::string& host, uint16_t port) {
    auto addr = address_of(host, port);
    for (auto& c : candidates_)
      if (c.first == addr)
        return;
    candidates_.emplace_back(addr, std::make_pair(host, port));
  }

  /// Connects the control connection to the current candidate; it asks for
  /// the map as soon as it is up.
  void connect_control() {
    auto gen = ++control_gen_;
    control_up_ = false;
    refreshing_ = false;
    if (control_)
      control_->stop();
    auto where = opts_.control;
    where.host = candidates_[candidate_].second.first;
    where.port = candidates_[candidate_].second.second;
    auto weak = weak_from_this();
    async_connection::callbacks cbs;
    cbs.on_connected = [weak, gen] {
      on_strand(weak, [gen](impl& self) {
        if (gen != self.control_gen_)
          return;
        self.control_up_ = true;
        self.failed_candidates_ = 0;
        self.refresh("control connection up");
      });
    };
    cbs.on_disconnected = [weak, gen](const std::string& why) {
      on_strand(weak, [gen, why](impl& self) {
        if (gen == self.control_gen_)
          self.next_candidate(why);
      });
    };
    control_ = std::make_shared<async_connection>(io_, std::move(where), std::move(cbs));
    control_->start();
  }

  /// Gives up on the control connection's node for the next known one.
  void next_candidate(const std::string& why) {
    auto old = candidates_[candidate_].first;
    candidate_ = (candidate_ + 1) % candidates_.size();
    ++control_gen_;
    if (control_)
      control_->stop();
    control_up_ = false;
    refreshing_ = false;
    if (++failed_candidates_ >= candidates_.size()) {
      failed_candidates_ = 0;
      GORING_LOG(warn, component,
                 "no node of the cluster answers (last " << old << ": " << why
                                                         << "); asking again in 1 s");
      auto timer = std::make_shared<asio::steady_timer>(strand_, 1s);
      timer->async_wait([weak = weak_from_this(), timer](const boost::system::error_code& ec) {
        if (!ec)
          on_strand(weak, [](impl& self) { self.connect_control(); });
      });
      return;
    }
    connect_control();
  }

  /// Asks for the slot map unless a question is out (then once more after).
  void refresh(const std::string& why) {
    if (refreshing_) {
      refresh_again_ = true;
      return;
    }
    if (!control_up_)
      return; // asked when the control connection is up
    refreshing_ = true;
    auto gen = control_gen_;
    auto seq = ++refresh_seq_;
    GORING_LOG(debug, component,
               "asking " << candidates_[candidate_].first << " for the slot map: " << why);
    auto timer = std::make_shared<asio::steady_timer>(strand_, slots_timeout);
    timer->async_wait(
      [weak = weak_from_this(), gen, seq, timer](const boost::system::error_code& ec) {
        if (ec)
          return;
        on_strand(weak, [gen, seq](impl& self) {
          if (gen == self.control_gen_ && self.refreshing_ && seq == self.refresh_seq_)
            self.next_candidate("CLUSTER SLOTS unanswered");
        });
      });
    control_->command({"CLUSTER", "SLOTS"}, [weak = weak_from_this(), gen, seq, timer](reply r) {
      timer->cancel();
      on_strand(weak, [gen, seq, r = std::move(r)](impl& self) {
        if (gen != self.control_gen_ || seq != self.refresh_seq_)
          return;
        self.slots_answered(r);
      });
    });
  }

  struct range {
    uint16_t first;
    uint16_t last;
    std::string host;
    uint16_t port;
  };

  void slots_answered(const reply& r) {
    refreshing_ = false;
    std::vector<range> ranges;
    bool ok = r.type == reply::kind::array && !r.elements.empty();
    for (auto& e : ok ? r.elements : std::vector<reply>{}) {
      if (e.type != reply::kind::array || e.elements.size() < 3
          || e.elements[2].type != reply::kind::array || e.elements[2].elements.size() < 2) {
        ok = false;
        break;
      }
      auto host = e.elements[2].elements[0].str;
      // An empty endpoint means "where you asked" (Redis 7).
      if (host.empty() || host == "?")
        host = candidates_[candidate_].second.first;
      ranges.push_back({static_cast<uint16_t>(e.elements[0].integer),
                        static_cast<uint16_t>(e.elements[1].integer), host,
                        static_cast<uint16_t>(e.elements[2].elements[1].integer)});
      // Replicas are candidates for the control connection, never for data.
      for (std::size_t i = 3; i < e.elements.size(); ++i)
        if (e.elements[i].type == reply::kind::array && e.elements[i].elements.size() >= 2
            && !e.elements[i].elements[0].str.empty())
          add_candidate(e.elements[i].elements[0].str,
                        static_cast<uint16_t>(e.elements[i].elements[1].integer));
    }
    if (!ok) {
      GORING_LOG(warn, component,
                 candidates_[candidate_].first
                   << " gave no slot map ("
                   << (r.is_error() ? r.str : std::string{"an empty or odd reply"})
                   << "); asking another node");
      next_candidate("no slot map");
      return;
    }
    apply(ranges);
    if (refresh_again_) {
      refresh_again_ = false;
      refresh("asked again while asking");
    }
  }

  node_ptr node_for(const std::string& host, uint16_t port) {
    auto addr = address_of(host, port);
    auto it = nodes_.find(addr);
    if (it != nodes_.end())
      return it->second;
    add_candidate(host, port);
    auto n = std::make_shared<node>();
    n->addr = addr;
    n->host = host;
    n->port = port;
    auto where = opts_.commands;
    where.host = host;
    where.port = port;
    auto weak = weak_from_this();
    std::weak_ptr<node> wn = n;
    async_connection::callbacks cbs;
    cbs.on_connected = [weak, wn] {
      on_strand(weak, [wn](impl& self) {
        if (auto n = wn.lock(); n && !n->retired)
          self.commands_connected(*n);
      });
    };
    cbs.on_disconnected = [weak, wn](const std::string& why) {
      on_strand(weak, [wn, why](impl& self) {
        if (auto n = wn.lock(); n && !n->retired)
          self.commands_lost(*n, why);
      });
    };
    n->commands = std::make_shared<async_connection>(io_, std::move(where), std::move(cbs));
    n->commands->start();
    nodes_.emplace(addr, n);
    make_subscriber(n);
    return n;
  }

  void make_subscriber(const node_ptr& n) {
    auto where = opts_.subscriber;
    where.host = n->host;
    where.port = n->port;
    auto weak = weak_from_this();
    std::weak_ptr<node> wn = n;
    auto alive = [weak, wn](auto f) {
      // Callbacks already run on our strand.
      auto self = weak.lock();
      auto n = wn.lock();
      if (self && !self->stopped_ && n && !n->retired)
        f(*self, n);
    };
    shard_subscriber::callbacks cbs;
    cbs.on_connected = [alive] {
      alive([](impl& self, const node_ptr& n) { self.subscriber_connected(n); });
    };
    cbs.on_lost = [alive](const std::string& why) {
      alive([why](impl& self, const node_ptr& n) { self.subscriber_lost(n, why); });
    };
    cbs.on_message = [weak](const std::string& channel, const std::string& payload) {
      auto self = weak.lock();
      if (self && !self->stopped_ && self->events_.on_message)
        self->events_.on_message(channel, payload);
    };
    cbs.on_dropped = [alive](const std::string& channel) {
      alive([channel](impl& self, const node_ptr& n) { self.channel_dropped(n, channel); });
    };
    n->subscriber_up = false;
    n->subscribed.clear();
    fail_confirming(*n, "redis connection lost: the shard subscriber is made again");
    ++n->generation;
    n->subscriber = std::make_unique<shard_subscriber>(strand_, std::move(where), std::move(cbs));
    n->subscriber->start();
  }

  /// Closes a node's connections for good; what waits on it fails.
  void retire(node& n, const std::string& why) {
    n.retired = true;
    if (n.subscriber_timer)
      n.subscriber_timer->cancel();
    if (n.subscriber)
      n.subscriber->stop();
    if (n.commands)
      n.commands->stop();
    fail_waiting(n, why);
    fail_confirming(n, "redis not connected: " + why);
  }

  void fail_waiting(node& n, const std::string& why) {
    for (auto& p : n.waiting)
      if (p.on_reply)
        asio::post(strand_, [h = std::move(p.on_reply), why] {
          h(reply::make_error("redis not connected: " + why));
        });
    n.waiting.clear();
  }

  /// A new slot map: the masters it names get connections, those it no
  /// longer names lose theirs, the routing table is swapped, and channels
  /// move to their new shards.
  void apply(const std::vector<range>& ranges) {
    std::array<int16_t, cluster::slot_count> slots;
    slots.fill(-1);
    std::vector<node_ptr> masters;
    for (auto& r : ranges) {
      auto n = node_for(r.host, r.port);
      auto it = std::find(masters.begin(), masters.end(), n);
      auto index = static_cast<int16_t>(it - masters.begin());
      if (it == masters.end())
        masters.push_back(n);
      for (uint32_t s = r.first; s <= r.last && s < cluster::slot_count; ++s)
        slots[s] = index;
    }
    complete_ = std::all_of(slots.begin(), slots.end(), [](int16_t i) { return i >= 0; });

    // A master that owned slots and owns none now: failed over (or emptied
    // by a reshard). Its slots' new master may lack its last writes.
    bool failover = false;
    std::vector<std::string> gone;
    for (auto& [addr, n] : nodes_)
      if (std::find(masters.begin(), masters.end(), n) == masters.end()) {
        gone.push_back(addr);
        if (std::find(masters_.begin(), masters_.end(), n) != masters_.end())
          failover = true;
      }
    bool changed = masters != masters_ || slots != slots_;
    if (failover && events_.on_failover)
      events_.on_failover();
    if (failover) {
      goring_metrics().redis_failovers->inc();
      failover_pending_ = true;
    }
    for (auto& addr : gone) {
      GORING_LOG(info, component, addr << " serves no slots now; closing its connections");
      retire(*nodes_[addr], addr + " is no master of the cluster any more");
      nodes_.erase(addr);
    }
    masters_ = std::move(masters);
    slots_ = slots;
    publish_table();
    if (changed) {
      std::string list;
      for (auto& m : masters_)
        list += (list.empty() ? "" : ", ") + m->addr;
      GORING_LOG(info, component,
                 "slot map: " << masters_.size() << " masters (" << list << ")"
                              << (complete_ ? "" : "; some slots have no master"));
    }
    update_health();
    resync();
  }

  void publish_table() {
    auto table = std::make_shared<route_table>();
    table->slot_master = slots_;
    for (auto& m : masters_)
      table->conns.push_back(m->commands);
    std::string text = "cluster of " + std::to_string(masters_.size()) + " masters: ";
    for (std::size_t i = 0; i < masters_.size(); ++i)
      text += (i == 0 ? "" : ", ") + masters_[i]->addr;
    std::lock_guard<std::mutex> guard{live_mutex_};
    table_ = std::move(table);
    described_ = std::move(text);
  }

  // -- health -----------------------------------------------------------------

  void update_health() {
    connections_ = count_connections();
    bool commands = complete_ && !masters_.empty()
                    && std::all_of(masters_.begin(), masters_.end(),
                                   [](const node_ptr& n) { return n->commands_up; });
    bool subscriber = complete_ && !masters_.empty()
                      && std::all_of(masters_.begin(), masters_.end(),
                                     [](const node_ptr& n) { return n->subscriber_up; });
    if (commands != commands_healthy_) {
      commands_healthy_ = commands;
      if (commands) {
        goring_metrics().redis_master_known(masters_.front()->addr);
        bool moved = failover_pending_;
        failover_pending_ = false;
        if (events_.on_up)
          events_.on_up(link_role::commands, moved);
      } else {
        goring_metrics().redis_master_lost();
        if (events_.on_down)
          events_.on_down(link_role::commands, complete_ ? "a master's command connection is down"
                                                         : "some slots have no master");
      }
    }
    if (subscriber != subscriber_healthy_) {
      subscriber_healthy_ = subscriber;
      if (subscriber) {
        bool moved = subscriber_moved_;
        subscriber_moved_ = false;
        if (events_.on_up)
          events_.on_up(link_role::subscriber, moved);
      } else if (events_.on_down) {
        events_.on_down(link_role::subscriber, "a shard subscriber is down");
      }
    }
    schedule_tick();
  }

  void commands_connected(node& n) {
    n.commands_up = true;
    auto waiting = std::move(n.waiting);
    n.waiting.clear();
    for (auto& p : waiting)
      send_on(n, std::move(p));
    update_health();
  }

  void commands_lost(node& n, const std::string& why) {
    bool was_up = n.commands_up;
    n.commands_up = false;
    fail_waiting(n, why);
    if (was_up)
      GORING_LOG(warn, component, "command connection to " << n.addr << " lost: " << why);
    update_health();
    refresh("lost " + n.addr);
  }

  // -- commands ---------------------------------------------------------------

  std::shared_ptr<const route_table> table() const {
    std::lock_guard<std::mutex> guard{live_mutex_};
    return table_;
  }

  /// Sends on `conn` (ASKING first when the command follows an ASK) and
  /// looks at the reply before the caller gets it. Any thread.
  void send(const std::shared_ptr<async_connection>& conn, parked p) {
    auto argv = p.argv;
    bool asking = p.asking;
    p.asking = false;
    auto handler = [weak = weak_from_this(), p = std::move(p)](reply r) mutable {
      auto kind = redirect_of(r);
      auto self = weak.lock();
      if (kind == redirect::none || !self || self->stopped_) {
        if (p.on_reply)
          p.on_reply(std::move(r));
        return;
      }
      on_strand(weak, [kind, p = std::move(p), r = std::move(r)](impl& self) mutable {
        self.redirected(kind, std::move(p), std::move(r));
      });
    };
    if (asking)
      conn->command_after({"ASKING"}, std::move(argv), std::move(handler));
    else
      conn->command(std::move(argv), std::move(handler));
  }

  void send_on(node& n, parked p) {
    if (n.retired) {
      if (p.on_reply)
        p.on_reply(reply::make_error("redis not connected: " + n.addr + " left the cluster"));
      return;
    }
    if (!n.commands_up) {
      if (n.waiting.size() >= max_parked) {
        if (p.on_reply)
          p.on_reply(
            reply::make_error("redis not connected: too many commands wait for " + n.addr));
        return;
      }
      n.waiting.push_back(std::move(p));
      return;
    }
    send(n.commands, std::move(p));
  }

  void redirected(redirect kind, parked p, reply r) {
    if (kind == redirect::lost) {
      refresh("a command found its master's connection down");
      if (p.on_reply)
        p.on_reply(std::move(r));
      return;
    }
    if (kind == redirect::retry) {
      if (++p.retries > max_retries) {
        if (p.on_reply)
          p.on_reply(std::move(r));
        return;
      }
      refresh(r.str);
      auto timer = std::make_shared<asio::steady_timer>(strand_, retry_pause);
      timer->async_wait([weak = weak_from_this(), timer,
                         p = std::move(p)](const boost::system::error_code& ec) mutable {
        if (ec)
          return;
        on_strand(weak, [p = std::move(p)](impl& self) mutable { self.route(std::move(p)); });
      });
      return;
    }
    uint16_t slot = 0;
    std::string host;
    uint16_t port = 0;
    if (++p.redirects > max_redirects || !parse_redirect(r.str, slot, host, port)) {
      if (p.on_reply)
        p.on_reply(reply::make_error(
          p.redirects > max_redirects ? "too many cluster redirects, last: " + r.str : r.str));
      return;
    }
    auto target = node_for(host, port);
    if (kind == redirect::moved) {
      // The slot lives there now: route the next ones there at once, and
      // ask for the whole map (more slots may have moved).
      if (auto it = std::find(masters_.begin(), masters_.end(), target); it != masters_.end()) {
        slots_[slot] = static_cast<int16_t>(it - masters_.begin());
        publish_table();
      }
      refresh("MOVED " + std::to_string(slot) + " to " + target->addr);
    } else {
      p.asking = true;
    }
    send_on(*target, std::move(p));
  }

  /// Routes a command by the current map (a retry after TRYAGAIN or
  /// CLUSTERDOWN may find another master).
  void route(parked p) {
    auto route = cluster::route_of(p.argv);
    int16_t index = -1;
    if (route.kind == cluster::route_kind::by_key)
      index = slots_[cluster::key_slot(route.key)];
    else if (!masters_.empty())
      index = 0;
    if (index < 0 || static_cast<std::size_t>(index) >= masters_.size()) {
      if (p.on_reply)
        p.on_reply(reply::make_error("redis not connected: no master for this slot"));
      return;
    }
    send_on(*masters_[static_cast<std::size_t>(index)], std::move(p));
  }

  /// SCRIPT LOAD or FLUSH on every master: the first error, else the first
  /// reply.
  void broadcast(std::vector<std::string> argv, reply_handler on_reply) {
    if (masters_.empty()) {
      if (on_reply)
        on_reply(reply::make_error("redis not connected: no slot map yet"));
      return;
    }
    struct gather {
      std::size_t left;
      reply first;
      bool have = false;
      reply_handler done;
      std::mutex m;
    };
    auto g = std::make_shared<gather>();
    g->left = masters_.size();
    g->done = std::move(on_reply);
    for (auto& m : masters_) {
      parked p{argv,
               [g](reply r) {
                 std::unique_lock<std::mutex> lock{g->m};
                 if (!g->have || (r.is_error() && !g->first.is_error())) {
                   g->first = std::move(r);
                   g->have = true;
                 }
                 if (--g->left == 0 && g->done) {
                   auto done = std::move(g->done);
                   auto result = std::move(g->first);
                   lock.unlock();
                   done(std::move(result));
                 }
               },
               0, 0, false};
      send_on(*m, std::move(p));
    }
  }

  // -- sharded pub/sub --------------------------------------------------------

  node_ptr owner_of(const std::string& channel) const {
    auto index = slots_[cluster::key_slot(channel)];
    if (index < 0 || static_cast<std::size_t>(index) >= masters_.size())
      return nullptr;
    return masters_[static_cast<std::size_t>(index)];
  }

  /// Whoever waits for a confirmation on `n` gets `why` (posted: the
  /// waiters may subscribe again).
  void fail_confirming(node& n, const std::string& why) {
    for (auto& [channel, waiters] : n.confirming)
      for (auto& w : waiters)
        asio::post(strand_, [w = std::move(w), why] { w(reply::make_error(why)); });
    n.confirming.clear();
  }

  /// SSUBSCRIBE `channels` (not yet subscribed there) on `n`, one command
  /// per slot; `done` gets each command's channels and reply.
  using batch_done = std::function<void(const std::vector<std::string>& batch, reply)>;
  void subscribe_on(const node_ptr& n, const std::vector<std::string>& channels,
                    const batch_done& done) {
    std::map<uint16_t, std::vector<std::string>> by_slot;
    for (auto& c : channels)
      by_slot[cluster::key_slot(c)].push_back(c);
    for (auto& [slot, batch] : by_slot) {
      for (auto& c : batch) {
        n->subscribed.insert(c);
        n->confirming[c];
      }
      std::weak_ptr<node> wn = n;
      auto generation = n->generation;
      n->subscriber->subscribe(
        batch, [this, wn, generation, batch, done, self = shared_from_this()](reply r) {
          std::vector<reply_handler> waiters;
          auto n = wn.lock();
          if (!n || n->retired || n->generation != generation) {
            // The subscriber it went to is gone: what it confirmed does not
            // listen any more (its waiters heard so when it went).
            if (!r.is_error())
              r = reply::make_error("redis connection lost: the shard subscriber was made again");
          } else {
            for (auto& c : batch) {
              if (r.is_error())
                n->subscribed.erase(c);
              auto it = n->confirming.find(c);
              if (it == n->confirming.end())
                continue;
              for (auto& w : it->second)
                waiters.push_back(std::move(w));
              n->confirming.erase(it);
            }
          }
          for (auto& w : waiters)
            w(r);
          if (r.is_error()) {
            if (!stopped_) {
              refresh("SSUBSCRIBE refused: " + r.str);
              schedule_resync();
            }
          }
          done(batch, std::move(r));
        });
    }
  }

  void do_subscribe(std::vector<std::string> channels, reply_handler on_done) {
    for (auto& c : channels)
      channels_.insert(c);
    subscribe_now(channels, std::move(on_done), 0);
  }

  /// Subscribes wanted channels on their shards; `on_done` gets one reply
  /// for all. A batch the shard redirects (its slot moved under us) is
  /// tried again on the map the redirect made us ask for, up to
  /// max_retries times, before its error reaches the caller.
  void subscribe_now(const std::vector<std::string>& channels, reply_handler on_done, int attempt) {
    struct gather {
      std::size_t left = 1;
      reply last;
      bool failed = false;
      reply_handler done;
    };
    auto g = std::make_shared<gather>();
    g->done = std::move(on_done);
    auto one = [g](reply r) {
      if (r.is_error() && !g->failed) {
        g->failed = true;
        g->last = std::move(r);
      } else if (!g->failed) {
        g->last = std::move(r);
      }
      if (--g->left == 0 && g->done)
        g->done(std::move(g->last));
    };
    auto after = [this, one, attempt](const std::vector<std::string>& batch, reply r) {
      auto kind = redirect_of(r);
      bool again = (kind == redirect::moved || kind == redirect::ask || kind == redirect::retry)
                   && attempt < max_retries && !stopped_;
      if (!again) {
        one(std::move(r));
        return;
      }
      auto timer = std::make_shared<asio::steady_timer>(strand_, subscriber_backoff);
      timer->async_wait(
        [weak = weak_from_this(), timer, batch, one, attempt](const boost::system::error_code& ec) {
          auto self = weak.lock();
          if (ec || !self || self->stopped_) {
            one(reply::make_error("redis not connected: the topology stopped"));
            return;
          }
          // The timer runs on the strand.
          self->subscribe_now(batch, one, attempt + 1);
        });
    };
    std::map<node_ptr, std::vector<std::string>> by_node;
    std::string missing;
    for (auto& c : channels) {
      if (channels_.count(c) == 0)
        continue; // unsubscribed while a retry waited
      auto n = owner_of(c);
      if (!n || !n->subscriber_up) {
        missing = n ? n->addr : "no master for slot " + std::to_string(cluster::key_slot(c));
        continue;
      }
      if (n->subscribed.count(c) == 0) {
        by_node[n].push_back(c);
      } else if (auto it = n->confirming.find(c); it != n->confirming.end()) {
        // On its way (a resync sent it): answered once it listens, and
        // tried again as one of our own batches would be if refused.
        ++g->left;
        it->second.push_back([after, c](reply r) { after({c}, std::move(r)); });
      }
    }
    for (auto& [n, batch] : by_node) {
      std::set<uint16_t> slots;
      for (auto& c : batch)
        slots.insert(cluster::key_slot(c));
      g->left += slots.size();
      subscribe_on(n, batch, after);
    }
    reply last;
    last.type = reply::kind::integer;
    last.integer = static_cast<long long>(channels_.size());
    one(missing.empty() ? last
                        : reply::make_error("redis not connected: shard " + missing
                                            + " has no subscriber connection now"));
  }

  void do_unsubscribe(const std::vector<std::string>& channels) {
    std::map<node_ptr, std::map<uint16_t, std::vector<std::string>>> by_node;
    for (auto& c : channels) {
      channels_.erase(c);
      for (auto& [addr, n] : nodes_)
        if (n->subscribed.erase(c) > 0 && n->subscriber_up)
          by_node[n][cluster::key_slot(c)].push_back(c);
    }
    for (auto& [n, slots] : by_node)
      for (auto& [slot, batch] : slots)
        n->subscriber->unsubscribe(batch);
  }

  /// Every wanted channel subscribed on its shard's master and nowhere
  /// else.
  void resync() {
    std::map<node_ptr, std::vector<std::string>> wanted;
    for (auto& c : channels_) {
      auto n = owner_of(c);
      if (n && n->subscriber_up && n->subscribed.count(c) == 0)
        wanted[n].push_back(c);
    }
    // Who waits for a confirmation on a master the channel left waits for
    // the one on its new master instead.
    std::map<std::string, std::vector<reply_handler>> moved;
    for (auto& [addr, n] : nodes_) {
      std::map<uint16_t, std::vector<std::string>> stale;
      for (auto& c : n->subscribed)
        if (channels_.count(c) == 0 || owner_of(c) != n)
          stale[cluster::key_slot(c)].push_back(c);
      for (auto& [slot, batch] : stale) {
        for (auto& c : batch) {
          n->subscribed.erase(c);
          if (auto it = n->confirming.find(c); it != n->confirming.end()) {
            auto& to = moved[c];
            for (auto& w : it->second)
              to.push_back(std::move(w));
            n->confirming.erase(it);
          }
        }
        if (n->subscriber_up)
          n->subscriber->unsubscribe(batch);
      }
    }
    for (auto& [n, batch] : wanted) {
      GORING_LOG(debug, component,
                 "subscribing " << batch.size() << " channels on the shard of " << n->addr);
      subscribe_on(n, batch, [](const std::vector<std::string>&, reply) {});
      for (auto& c : batch)
        if (auto it = moved.find(c); it != moved.end()) {
          auto& to = n->confirming[c];
          for (auto& w : it->second)
            to.push_back(std::move(w));
          moved.erase(it);
        }
    }
    for (auto& [channel, waiters] : moved) {
      auto n = owner_of(channel);
      if (n && n->subscriber_up && n->subscribed.count(channel) != 0) {
        if (auto it = n->confirming.find(channel); it != n->confirming.end()) {
          for (auto& w : waiters)
            it->second.push_back(std::move(w));
          continue;
        }
        // Listening there already.
        reply ok;
        ok.type = reply::kind::integer;
        ok.integer = 1;
        for (auto& w : waiters)
          asio::post(strand_, [w = std::move(w), ok] { w(ok); });
        continue;
      }
      for (auto& w : waiters)
        asio::post(strand_, [w = std::move(w)] {
          w(reply::make_error("redis not connected: the channel's shard has no subscriber now"));
        });
    }
  }

  void schedule_resync() {
    if (resync_armed_)
      return;
    resync_armed_ = true;
    resync_timer_.expires_after(subscriber_backoff);
    resync_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
      if (ec)
        return;
      on_strand(weak, [](impl& self) {
        self.resync_armed_ = false;
        self.resync();
      });
    });
  }

  void subscriber_connected(const node_ptr& n) {
    n->subscriber_up = true;
    resync();
    update_health();
  }

  void subscriber_lost(const node_ptr& n, const std::string& why) {
    bool was_up = n->subscriber_up;
    n->subscriber_up = false;
    n->subscribed.clear();
    if (was_up) {
      GORING_LOG(warn, component, "shard subscriber of " << n->addr << " lost: " << why);
      subscriber_moved_ = true;
    }
    update_health();
    refresh("lost the shard subscriber of " + n->addr);
    n->subscriber_timer = std::make_shared<asio::steady_timer>(strand_, subscriber_backoff);
    std::weak_ptr<node> wn = n;
    n->subscriber_timer->async_wait(
      [weak = weak_from_this(), wn](const boost::system::error_code& ec) {
        if (ec)
          return;
        on_strand(weak, [wn](impl& self) {
          if (auto n = wn.lock(); n && !n->retired && !n->subscriber_up)
            self.make_subscriber(n);
        });
      });
  }

  /// A `sunsubscribe` push we did not ask for: the channel's slot left this
  /// master. Ask where it went and subscribe there.
  void channel_dropped(const node_ptr& n, const std::string& channel) {
    n->subscribed.erase(channel);
    refresh("the shard of " + n->addr + " dropped " + channel);
    schedule_resync();
  }

  void do_restart_subscriber(const std::string& why) {
    GORING_LOG(warn, component, "reconnecting every shard subscriber: " << why);
    for (auto& m : masters_) {
      m->subscriber->stop();
      make_subscriber(m);
    }
    subscriber_moved_ = false;
    update_health();
  }

  // -- the periodic check -----------------------------------------------------

  void schedule_tick() {
    auto interval = commands_healthy_ && subscriber_healthy_ ? steady_interval : recheck_interval;
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
        self.refresh("periodic check");
        self.schedule_tick();
      });
    });
  }

  std::size_t count_connections() const {
    std::size_t n = control_ ? 1 : 0;
    for (auto& [addr, node] : nodes_)
      n += (node->commands ? 1 : 0) + (node->subscriber ? 1 : 0);
    return n;
  }

  asio::io_context& io_;
  strand_type strand_;
  const options opts_;
  const topology_events events_;
  asio::steady_timer tick_;
  bool tick_armed_ = false;
  std::chrono::steady_clock::time_point tick_due_;
  asio::steady_timer resync_timer_;
  bool resync_armed_ = false;
  bool started_ = false;
  std::atomic<bool> stopped_{false};

  /// Nodes the control connection may ask: the seeds, then every node a
  /// map or a redirect named. "host:port" -> (host, port).
  std::vector<std::pair<std::string, std::pair<std::string, uint16_t>>> candidates_;
  std::size_t candidate_ = 0;
  std::size_t failed_candidates_ = 0;
  std::shared_ptr<async_connection> control_;
  uint64_t control_gen_ = 0;
  bool control_up_ = false;
  bool refreshing_ = false;
  bool refresh_again_ = false;
  uint64_t refresh_seq_ = 0;

  std::map<std::string, node_ptr> nodes_;
  std::vector<node_ptr> masters_;
  std::array<int16_t, cluster::slot_count> slots_ = [] {
    std::array<int16_t, cluster::slot_count> a;
    a.fill(-1);
    return a;
  }();
  bool complete_ = false;
  bool failover_pending_ = false;
  bool subscriber_moved_ = false;
  bool commands_healthy_ = false;
  std::atomic<bool> subscriber_healthy_{false};

  std::set<std::string> channels_;

  mutable std::mutex live_mutex_;
  std::shared_ptr<const route_table> table_;
  std::string described_;
  std::atomic<uint64_t> any_counter_{0};
  /// count_connections() as of the last change, for any thread.
  std::atomic<std::size_t> connections_{0};
};

cluster_topology::cluster_topology(boost::asio::io_context& io, options opts,
                                   topology_events events)
  : impl_(std::make_shared<impl>(io, std::move(opts), std::move(events))) {
  // nop
}

cluster_topology::~cluster_topology() {
  stop();
}

void cluster_topology::start() {
  impl_->post_self([](impl& self) { self.do_start(); });
}

void cluster_topology::stop() {
  if (impl_->stopped_.exchange(true))
    return;
  asio::post(impl_->strand_, [self = impl_] { self->do_stop(); });
}

void cluster_topology::command(std::vector<std::string> argv, reply_handler on_reply) {
  auto route = cluster::route_of(argv);
  if (!argv.empty() && (argv[0] == "PUBLISH" || argv[0] == "publish"))
    argv[0] = "SPUBLISH";
  auto fail = [&](std::string why) {
    if (on_reply)
      asio::post(impl_->strand_,
                 [h = std::move(on_reply), why = std::move(why)] { h(reply::make_error(why)); });
  };
  if (route.kind == cluster::route_kind::every_master) {
    impl_->post_self([argv = std::move(argv), h = std::move(on_reply)](impl& self) mutable {
      self.broadcast(std::move(argv), std::move(h));
    });
    return;
  }
  auto table = impl_->table();
  if (!table || table->conns.empty()) {
    fail("redis not connected: no Redis Cluster slot map yet");
    return;
  }
  int16_t index;
  if (route.kind == cluster::route_kind::by_key)
    index = table->slot_master[cluster::key_slot(route.key)];
  else
    index = static_cast<int16_t>(impl_->any_counter_.fetch_add(1) % table->conns.size());
  if (index < 0) {
    fail("redis not connected: slot " + std::to_string(cluster::key_slot(route.key))
         + " has no master now");
    return;
  }
  impl_->send(table->conns[static_cast<std::size_t>(index)],
              impl::parked{std::move(argv), std::move(on_reply), 0, 0, false});
}

void cluster_topology::subscribe(std::vector<std::string> channels, reply_handler on_done) {
  impl_->post_self([channels = std::move(channels), h = std::move(on_done)](impl& self) mutable {
    self.do_subscribe(std::move(channels), std::move(h));
  });
}

void cluster_topology::unsubscribe(std::vector<std::string> channels) {
  impl_->post_self([channels = std::move(channels)](impl& self) { self.do_unsubscribe(channels); });
}

bool cluster_topology::subscriber_connected() const {
  return impl_->subscriber_healthy_.load();
}

void cluster_topology::restart_subscriber(std::string why) {
  impl_->post_self([why = std::move(why)](impl& self) { self.do_restart_subscriber(why); });
}

std::vector<std::string> cluster_topology::shard_tags() const {
  auto table = impl_->table();
  if (!table || table->conns.empty())
    return {std::string{}};
  // For each master the smallest number whose slot it serves: the same
  // tags on every instance for one slot map.
  std::vector<std::string> tags(table->conns.size());
  std::size_t found = 0;
  for (unsigned i = 0; found < tags.size() && i < 1u << 20; ++i) {
    auto tag = std::to_string(i);
    auto master = table->slot_master[cluster::key_slot(tag)];
    if (master < 0 || static_cast<std::size_t>(master) >= tags.size())
      continue;
    if (tags[static_cast<std::size_t>(master)].empty()) {
      tags[static_cast<std::size_t>(master)] = std::move(tag);
      ++found;
    }
  }
  tags.erase(std::remove(tags.begin(), tags.end(), std::string{}), tags.end());
  return tags;
}

std::string cluster_topology::describe() const {
  std::lock_guard<std::mutex> guard{impl_->live_mutex_};
  return impl_->described_;
}

void cluster_topology::suspect(std::string why) {
  impl_->post_self([why = std::move(why)](impl& self) { self.refresh(why); });
}

std::size_t cluster_topology::connection_count() const {
  return impl_->connections_.load();
}

} // namespace goring::redis
