#include "webhooks/delivery_worker.hpp"

#include <atomic>
#include <future>
#include <map>
#include <random>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "config/log.hpp"
#include "metrics/metrics.hpp"
#include "outbound/http_client.hpp"
#include "webhooks/event.hpp"
#include "webhooks/retry.hpp"
#include "webhooks/signature.hpp"

namespace goring::webhooks {

namespace {

constexpr const char* component = "webhooks";
/// How often due retries are looked for.
constexpr std::chrono::milliseconds tick{100};
/// Events one XREADGROUP or XAUTOCLAIM asks for at most (per stream).
constexpr std::size_t batch = 64;

long long now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

/// The worker's metrics, registered once per process.
struct worker_metrics {
  metrics::counter_family& deliveries;
  metrics::counter_family& retries;
  metrics::counter_family& failed_attempts;
  metrics::gauge& queue_length;
  metrics::gauge& oldest_age;
  metrics::gauge& held;
  metrics::gauge& in_flight;

  static worker_metrics& get() {
    static worker_metrics m{
      metrics::global().counter(
        "goring_webhook_deliveries_total",
        "Webhook events by type and outcome: delivered (a 2xx), dropped (older than "
        "WEBHOOK_MAX_AGE, or unreadable).",
        {"type", "outcome"}),
      metrics::global().counter("goring_webhook_retries_total",
                                "Webhook events scheduled for another attempt, by type.", {"type"}),
      metrics::global().counter(
        "goring_webhook_failed_attempts_total",
        "Webhook POSTs that did not deliver, by reason (status, timeout, connect, ...).",
        {"reason"}),
      metrics::global()
        .gauge("goring_webhook_queue_length",
               "Webhook events in Redis not yet delivered or dropped (all instances).")
        .with(),
      metrics::global()
        .gauge("goring_webhook_oldest_undelivered_seconds",
               "Age of the oldest webhook event not yet delivered or dropped (all instances); 0 "
               "when there is none.")
        .with(),
      metrics::global()
        .gauge("goring_webhook_events_held", "Webhook events this instance holds in memory.")
        .with(),
      metrics::global()
        .gauge("goring_webhook_requests_in_flight", "Webhook POSTs this instance has running.")
        .with(),
    };
    // Every series from zero, so /metrics lists the families from the
    // start and increase() sees the first event.
    static const bool zeroed = [] {
      for (auto* type :
           {"call.started", "callee.offline", "call.accepted", "call.rejected", "call.ended"}) {
        m.deliveries.with({type, "delivered"});
        m.deliveries.with({type, "dropped"});
        m.retries.with({type});
      }
      m.deliveries.with({"unknown", "dropped"});
      for (auto* reason : {"status_3xx", "status_4xx", "status_5xx", "timeout", "connect", "tls",
                           "resolve", "protocol", "too_large", "busy"})
        m.failed_attempts.with({reason});
      return true;
    }();
    (void)zeroed;
    return m;
  }
};

/// Why an attempt failed, as a metric label.
std::string failure_reason(const outbound::http_result& result) {
  if (result.response)
    return "status_" + std::to_string(result.response->status / 100) + "xx";
  return outbound::failure_name(result.failure);
}

} // namespace

void register_metrics() {
  worker_metrics::get();
}

struct delivery_worker::impl : std::enable_shared_from_this<impl> {
  using strand_type = boost::asio::strand<boost::asio::io_context::executor_type>;

  /// An event this instance holds until it is delivered or dropped.
  struct held_event {
    event ev;
    unsigned retries = 0;
    long long due_ms = 0;
    /// A touch, a POST or the acknowledgement is under way.
    bool busy = false;
  };

  /// One stream entry: its id and the index of its stream in
  /// options.streams (ids of two streams may be equal).
  struct entry_ref {
    std::string id;
    std::size_t stream = 0;
  };

  /// In stream order, then by stream: every event of one session is in
  /// one stream, so its events keep their order.
  struct ref_order {
    bool operator()(const entry_ref& a, const entry_ref& b) const {
      stream_order by_id;
      if (by_id(a.id, b.id))
        return true;
      if (by_id(b.id, a.id))
        return false;
      return a.stream < b.stream;
    }
  };

  /// What the worker knows of each stream it reads.
  struct stream_state {
    std::string key;
    bool group_ready = false;
    bool reading = false;
    long long next_read_ms = 0;
    std::string claim_cursor = "0-0";
    /// XLEN and the oldest entry's time (0: none), from the last measure.
    long long length = 0;
    long long oldest_ms = 0;
  };

  strand_type strand;
  boost::asio::steady_timer tick_timer;
  std::shared_ptr<outbound::http_client> client;
  redis_command redis;
  worker_options options;
  worker_metrics& m = worker_metrics::get();
  std::mt19937_64 rng{std::random_device{}()};

  bool stopped = false;
  /// stop() was called (from any thread); `stopped` is the strand's copy.
  std::atomic<bool> stop_requested{false};
  std::vector<stream_state> streams;
  /// A claim-and-measure round over the streams is under way.
  bool claiming = false;
  long long next_claim_ms = 0;
  std::size_t in_flight = 0;
  /// By stream entry id, in stream order: an event waits while an earlier
  /// one of its session is held here (see send_due).
  std::map<entry_ref, held_event, ref_order> held;

  impl(boost::asio::io_context& io, std::shared_ptr<outbound::http_client> client,
       redis_command redis, worker_options options)
    : strand(boost::asio::make_strand(io)), tick_timer(strand), client(std::move(client)),
      redis(std::move(redis)), options(std::move(options)) {
    for (auto& key : this->options.streams)
      streams.push_back(stream_state{key});
  }

  /// Runs `f` on the strand while the worker lives and runs.
  template <class F>
  auto on_strand(F f) {
    return [weak = weak_from_this(), f = std::move(f)](auto&&... args) mutable {
      auto self = weak.lock();
      if (!self)
        return;
      boost::asio::post(self->strand, [self, f = std::move(f),
                                       tup = std::make_tuple(std::decay_t<decltype(args)>(
                                         std::forward<decltype(args)>(args))...)]() mutable {
        if (self->stopped)
          return;
        std::apply([&](auto&... a) { f(*self, std::move(a)...); }, tup);
      });
    };
  }

  void command(std::vector<std::string> argv, std::function<void(impl&, redis::reply)> k) {
    redis(std::move(argv), on_strand(std::move(k)));
  }

  void arm_tick() {
    tick_timer.expires_after(tick);
    tick_timer.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
      auto self = weak.lock();
      if (!self || ec || self->stopped)
        return;
      self->on_tick();
    });
  }

  void on_tick() {
    auto now = now_ms();
    for (std::size_t i = 0; i < streams.size(); ++i) {
      auto& st = streams[i];
      if (st.reading || now < st.next_read_ms)
        continue;
      if (!st.group_ready)
        create_group(i);
      else if (held.size() < options.max_held)
        read_new(i);
    }
    if (!claiming && now >= next_claim_ms) {
      claiming = true;
      claim_and_measure(0);
    }
    send_due(now);
    m.held.set(static_cast<double>(held.size()));
    m.in_flight.set(static_cast<double>(in_flight));
    arm_tick();
  }

  void create_group(std::size_t i) {
    streams[i].reading = true;
    command({"XGROUP", "CREATE", streams[i].key, options.group, "0", "MKSTREAM"},
            [i](impl& self, redis::reply r) {
              auto& st = self.streams[i];
              st.reading = false;
              if (r.is_error() && r.str.find("BUSYGROUP") == std::string::npos) {
                // Redis is away: the next tick tries again.
                st.next_read_ms = now_ms() + 1'000;
                return;
              }
              st.group_ready = true;
            });
  }

  void read_new(std::size_t i) {
    streams[i].reading = true;
    auto room = std::min(batch, options.max_held - held.size());
    command({"XREADGROUP", "GROUP", options.group, options.consumer, "COUNT", std::to_string(room),
             "STREAMS", streams[i].key, ">"},
            [i, room](impl& self, redis::reply r) {
              auto& st = self.streams[i];
              st.reading = false;
              if (r.is_error()) {
                if (r.str.find("NOGROUP") != std::string::npos)
                  st.group_ready = false; // Redis lost it (a restart without data)
                else
                  GORING_LOG(warn, component,
                             "reading webhook events of " << st.key << " failed: " << r.str);
                st.next_read_ms = now_ms() + 1'000;
                return;
              }
              auto entries = read_group_reply(r);
              // A full batch: more may wait, read again at once.
              st.next_read_ms =
                entries.size() >= room ? 0 : now_ms() + self.options.poll_interval.count();
              self.take(i, std::move(entries), false);
            });
  }

  /// Stream `i`, then the next: XAUTOCLAIM of what dead consumers left
  /// pending, then the stream's length and oldest entry for the metrics,
  /// which are set once every stream has answered.
  void claim_and_measure(std::size_t i) {
    if (i == streams.size()) {
      claiming = false;
      next_claim_ms = now_ms() + options.claim_interval.count();
      long long length = 0;
      long long oldest = 0;
      for (auto& st : streams) {
        length += st.length;
        if (st.oldest_ms > 0 && (oldest == 0 || st.oldest_ms < oldest))
          oldest = st.oldest_ms;
      }
      m.queue_length.set(static_cast<double>(length));
      m.oldest_age.set(
        oldest == 0 ? 0.0 : std::max(0.0, static_cast<double>(now_ms() - oldest) / 1000.0));
      return;
    }
    auto& st = streams[i];
    if (!st.group_ready) // its group is still to create: nothing to claim yet
      return claim_and_measure(i + 1);
    if (held.size() >= options.max_held) {
      // Full: what dead instances left waits until there is room.
      measure(i);
      return;
    }
    auto room = std::min(batch, options.max_held - held.size());
    command({"XAUTOCLAIM", st.key, options.group, options.consumer,
             std::to_string(options.claim_idle.count()), st.claim_cursor, "COUNT",
             std::to_string(room)},
            [i](impl& self, redis::reply r) {
              auto& st = self.streams[i];
              if (r.is_error()) {
                if (r.str.find("NOGROUP") != std::string::npos)
                  st.group_ready = false;
                self.claim_and_measure(i + 1);
                return;
              }
              auto entries = read_autoclaim_reply(r, st.claim_cursor);
              if (!entries.empty())
                GORING_LOG(info, component,
                           "claimed " << entries.size() << " webhook event(s) of " << st.key
                                      << " another instance left pending");
              self.take(i, std::move(entries), true);
              self.measure(i);
            });
  }

  void measure(std::size_t i) {
    command({"XLEN", streams[i].key}, [i](impl& self, redis::reply r) {
      if (r.type == redis::reply::kind::integer)
        self.streams[i].length = r.integer;
      self.command({"XRANGE", self.streams[i].key, "-", "+", "COUNT", "1"},
                   [i](impl& self, redis::reply r) {
                     if (r.type == redis::reply::kind::array) {
                       long long at = 0;
                       if (!r.elements.empty() && !r.elements[0].elements.empty())
                         at = entry_time_ms(r.elements[0].elements[0].str);
                       self.streams[i].oldest_ms = std::max(0LL, at);
                     }
                     self.claim_and_measure(i + 1);
                   });
    });
  }

  /// Events read or claimed from stream `i`: held until delivered;
  /// unusable ones dropped.
  void take(std::size_t i, std::vector<stream_entry> entries, bool claimed) {
    auto now = now_ms();
    for (auto& entry : entries) {
      if (entry.entry_id.empty())
        continue;
      entry_ref ref{entry.entry_id, i};
      if (!entry.value) {
        GORING_LOG(warn, component,
                   "dropping webhook stream entry " << entry.entry_id << " of " << streams[i].key
                                                    << ": " << entry.problem);
        m.deliveries.with({"unknown", "dropped"}).inc();
        finish(ref);
        continue;
      }
      auto [it, fresh] = held.try_emplace(ref);
      if (!fresh) {
        // Claimed back while held (this consumer's own entry went idle):
        // the retry already scheduled stands.
        continue;
      }
      it->second.ev = std::move(*entry.value);
      // A claimed event failed elsewhere before: it counts as a retry.
      it->second.retries = claimed ? 1 : 0;
      it->second.due_ms = now;
    }
  }

  void send_due(long long now) {
    // Per session, in stream order: an event is not sent while an earlier
    // event of its session that this instance holds is still to deliver.
    std::unordered_set<std::string> sessions;
    for (auto it = held.begin(); it != held.end() && in_flight < options.max_in_flight;) {
      auto& h = it->second;
      auto ref = it->first;
      ++it;
      bool first_of_session = sessions.insert(h.ev.session_id).second;
      if (!first_of_session || h.busy || h.due_ms > now)
        continue;
      if (expired(h.ev.created_at, now, options.max_age)) {
        drop(ref, "older than WEBHOOK_MAX_AGE");
        continue;
      }
      h.busy = true;
      ++in_flight;
      if (h.retries == 0) {
        post(ref);
        continue;
      }
      touch_then_post(ref);
    }
  }

  /// Before a retry: whether the entry is still pending for this consumer
  /// (not claimed elsewhere, not deleted), then a touch (XCLAIM to itself),
  /// so its idle time starts again and no other instance claims it while
  /// it waits for its next try; then the POST.
  void touch_then_post(const entry_ref& ref) {
    auto give_up = [ref](impl& self, bool keep) {
      --self.in_flight;
      auto it = self.held.find(ref);
      if (it == self.held.end())
        return;
      if (!keep) {
        self.held.erase(it);
        return;
      }
      it->second.busy = false;
      it->second.due_ms = now_ms() + 1'000;
    };
    const auto& key = streams[ref.stream].key;
    command({"XPENDING", key, options.group, ref.id, ref.id, "1", options.consumer},
            [ref, give_up](impl& self, redis::reply r) {
              if (r.is_error())
                return give_up(self, true);
              if (r.type != redis::reply::kind::array || r.elements.empty())
                return give_up(self, false); // not ours any more
              self.command({"XCLAIM", self.streams[ref.stream].key, self.options.group,
                            self.options.consumer, "0", ref.id, "JUSTID"},
                           [ref, give_up](impl& self, redis::reply r) {
                             if (r.is_error())
                               return give_up(self, true);
                             if (r.type != redis::reply::kind::array || r.elements.empty())
                               return give_up(self, false);
                             if (self.held.count(ref) == 0)
                               return give_up(self, false);
                             self.post(ref);
                           });
            });
  }

  void post(const entry_ref& ref) {
    auto& h = held.at(ref);
    outbound::http_request request;
    request.method = "POST";
    request.where = options.target;
    request.allow_plain_http = true;
    request.timeout = options.request_timeout;
    request.max_body_bytes = 64 * 1024;
    auto t = now_ms() / 1000;
    request.headers = {{"Content-Type", "application/json"},
                       {"Goring-Signature", signature_header(options.secret, t, h.ev.body)},
                       {"Goring-Event-Id", h.ev.id}};
    request.body = h.ev.body;
    client->send(std::move(request), on_strand([ref](impl& self, outbound::http_result result) {
                   --self.in_flight;
                   self.posted(ref, result);
                 }));
  }

  void posted(const entry_ref& ref, const outbound::http_result& result) {
    auto it = held.find(ref);
    if (it == held.end())
      return;
    auto& h = it->second;
    if (result.response && result.response->status >= 200 && result.response->status < 300) {
      m.deliveries.with({h.ev.type, "delivered"}).inc();
      GORING_LOG(debug, component, "delivered " << h.ev.type << " " << h.ev.id);
      held.erase(it);
      finish(ref);
      return;
    }
    auto reason = failure_reason(result);
    m.failed_attempts.with({reason}).inc();
    ++h.retries;
    auto now = now_ms();
    std::uniform_real_distribution<double> unit{0.0, 1.0};
    auto next = now + retry_delay(h.retries, unit(rng)).count();
    if (expired(h.ev.created_at, next, options.max_age)) {
      drop(ref, "not delivered within WEBHOOK_MAX_AGE (last: " + reason + ")");
      return;
    }
    if (h.retries == 1 || h.retries % 10 == 0)
      GORING_LOG(warn, component,
                 "webhook " << h.ev.type << " " << h.ev.id << " to " << options.target.shown()
                            << " failed (" << reason
                            << (result.error.empty() ? std::string{} : ": " + result.error)
                            << "); retry " << h.retries << " in " << (next - now) << " ms");
    m.retries.with({h.ev.type}).inc();
    h.due_ms = next;
    h.busy = false;
  }

  void drop(const entry_ref& ref, const std::string& why) {
    auto it = held.find(ref);
    if (it == held.end())
      return;
    GORING_LOG(error, component,
               "dropping webhook " << it->second.ev.type << " " << it->second.ev.id << ": " << why);
    m.deliveries.with({it->second.ev.type, "dropped"}).inc();
    held.erase(it);
    finish(ref);
  }

  /// Done with an entry: acknowledged, then deleted, so the stream holds
  /// only what is still to deliver (its length is the queue).
  void finish(const entry_ref& ref) {
    const auto& key = streams[ref.stream].key;
    command({"XACK", key, options.group, ref.id}, [ref](impl& self, redis::reply r) {
      if (r.is_error()) {
        // Left pending: claimed and sent again later (at least once).
        GORING_LOG(warn, component, "XACK of webhook event " << ref.id << " failed: " << r.str);
        return;
      }
      self.command({"XDEL", self.streams[ref.stream].key, ref.id}, [](impl&, redis::reply) {});
    });
  }
};

delivery_worker::delivery_worker(boost::asio::io_context& io,
                                 std::shared_ptr<outbound::http_client> client, redis_command redis,
                                 worker_options options)
  : impl_(std::make_shared<impl>(io, std::move(client), std::move(redis), std::move(options))) {
  // nop
}

delivery_worker::~delivery_worker() {
  stop();
}

void delivery_worker::start() {
  boost::asio::post(impl_->strand, [self = impl_] {
    GORING_LOG(info, component,
               "delivering call events to " << self->options.target.shown() << " as consumer "
                                            << self->options.consumer << " from "
                                            << self->streams.size() << " stream(s)");
    self->on_tick();
  });
}

void delivery_worker::stop() {
  if (impl_->stop_requested.exchange(true))
    return;
  auto done = std::make_shared<std::promise<void>>();
  auto finished = done->get_future();
  boost::asio::post(impl_->strand, [self = impl_, done] {
    self->stopped = true;
    self->tick_timer.cancel();
    done->set_value();
  });
  // The io threads may be gone already: then nothing runs any more anyway.
  finished.wait_for(std::chrono::seconds(2));
}

} // namespace goring::webhooks
