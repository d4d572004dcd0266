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
/// Events one XREADGROUP or XAUTOCLAIM asks for at most.
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
  bool group_ready = false;
  bool reading = false;
  bool claiming = false;
  long long next_read_ms = 0;
  long long next_claim_ms = 0;
  std::string claim_cursor = "0-0";
  std::size_t in_flight = 0;
  /// By stream entry id, in stream order: an event waits while an earlier
  /// one of its session is held here (see send_due).
  std::map<std::string, held_event, stream_order> held;

  impl(boost::asio::io_context& io, std::shared_ptr<outbound::http_client> client,
       redis_command redis, worker_options options)
    : strand(boost::asio::make_strand(io)), tick_timer(strand), client(std::move(client)),
      redis(std::move(redis)), options(std::move(options)) {
    // nop
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
    if (!group_ready) {
      if (now >= next_read_ms)
        create_group();
    } else {
      if (!reading && now >= next_read_ms && held.size() < options.max_held)
        read_new();
      if (!claiming && now >= next_claim_ms)
        claim_and_measure();
    }
    send_due(now);
    m.held.set(static_cast<double>(held.size()));
    m.in_flight.set(static_cast<double>(in_flight));
    arm_tick();
  }

  void create_group() {
    if (reading)
      return;
    reading = true;
    command({"XGROUP", "CREATE", options.stream, options.group, "0", "MKSTREAM"},
            [](impl& self, redis::reply r) {
              self.reading = false;
              if (r.is_error() && r.str.find("BUSYGROUP") == std::string::npos) {
                // Redis is away: the next tick tries again.
                self.next_read_ms = now_ms() + 1'000;
                return;
              }
              self.group_ready = true;
            });
  }

  void read_new() {
    reading = true;
    auto room = std::min(batch, options.max_held - held.size());
    command({"XREADGROUP", "GROUP", options.group, options.consumer, "COUNT", std::to_string(room),
             "STREAMS", options.stream, ">"},
            [room](impl& self, redis::reply r) {
              self.reading = false;
              if (r.is_error()) {
                if (r.str.find("NOGROUP") != std::string::npos)
                  self.group_ready = false; // Redis lost it (a restart without data)
                else
                  GORING_LOG(warn, component, "reading webhook events failed: " << r.str);
                self.next_read_ms = now_ms() + 1'000;
                return;
              }
              auto entries = read_group_reply(r);
              // A full batch: more may wait, read again at once.
              self.next_read_ms =
                entries.size() >= room ? 0 : now_ms() + self.options.poll_interval.count();
              self.take(std::move(entries), false);
            });
  }

  /// XAUTOCLAIM of what dead consumers left pending, then the stream's
  /// length and oldest entry for the metrics.
  void claim_and_measure() {
    claiming = true;
    if (held.size() >= options.max_held) {
      // Full: what dead instances left waits until there is room.
      measure();
      return;
    }
    auto room = std::min(batch, options.max_held - held.size());
    command({"XAUTOCLAIM", options.stream, options.group, options.consumer,
             std::to_string(options.claim_idle.count()), claim_cursor, "COUNT",
             std::to_string(room)},
            [](impl& self, redis::reply r) {
              if (r.is_error()) {
                self.claiming = false;
                self.next_claim_ms = now_ms() + self.options.claim_interval.count();
                if (r.str.find("NOGROUP") != std::string::npos)
                  self.group_ready = false;
                return;
              }
              auto entries = read_autoclaim_reply(r, self.claim_cursor);
              if (!entries.empty())
                GORING_LOG(info, component,
                           "claimed " << entries.size()
                                      << " webhook event(s) another instance left pending");
              self.take(std::move(entries), true);
              self.measure();
            });
  }

  void measure() {
    command({"XLEN", options.stream}, [](impl& self, redis::reply r) {
      if (r.type == redis::reply::kind::integer)
        self.m.queue_length.set(static_cast<double>(r.integer));
      self.command({"XRANGE", self.options.stream, "-", "+", "COUNT", "1"},
                   [](impl& self, redis::reply r) {
                     self.claiming = false;
                     self.next_claim_ms = now_ms() + self.options.claim_interval.count();
                     if (r.type != redis::reply::kind::array)
                       return;
                     double age = 0;
                     if (!r.elements.empty() && !r.elements[0].elements.empty()) {
                       auto at = entry_time_ms(r.elements[0].elements[0].str);
                       if (at > 0)
                         age = std::max(0.0, static_cast<double>(now_ms() - at) / 1000.0);
                     }
                     self.m.oldest_age.set(age);
                   });
    });
  }

  /// Events read or claimed: held until delivered; unusable ones dropped.
  void take(std::vector<stream_entry> entries, bool claimed) {
    auto now = now_ms();
    for (auto& entry : entries) {
      if (entry.entry_id.empty())
        continue;
      if (!entry.value) {
        GORING_LOG(warn, component,
                   "dropping webhook stream entry " << entry.entry_id << ": " << entry.problem);
        m.deliveries.with({"unknown", "dropped"}).inc();
        finish(entry.entry_id);
        continue;
      }
      auto [it, fresh] = held.try_emplace(entry.entry_id);
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
      auto id = it->first;
      ++it;
      bool first_of_session = sessions.insert(h.ev.session_id).second;
      if (!first_of_session || h.busy || h.due_ms > now)
        continue;
      if (expired(h.ev.created_at, now, options.max_age)) {
        drop(id, "older than WEBHOOK_MAX_AGE");
        continue;
      }
      h.busy = true;
      ++in_flight;
      if (h.retries == 0) {
        post(id);
        continue;
      }
      touch_then_post(id);
    }
  }

  /// Before a retry: whether the entry is still pending for this consumer
  /// (not claimed elsewhere, not deleted), then a touch (XCLAIM to itself),
  /// so its idle time starts again and no other instance claims it while
  /// it waits for its next try; then the POST.
  void touch_then_post(const std::string& id) {
    auto give_up = [id](impl& self, bool keep) {
      --self.in_flight;
      auto it = self.held.find(id);
      if (it == self.held.end())
        return;
      if (!keep) {
        self.held.erase(it);
        return;
      }
      it->second.busy = false;
      it->second.due_ms = now_ms() + 1'000;
    };
    command({"XPENDING", options.stream, options.group, id, id, "1", options.consumer},
            [id, give_up](impl& self, redis::reply r) {
              if (r.is_error())
                return give_up(self, true);
              if (r.type != redis::reply::kind::array || r.elements.empty())
                return give_up(self, false); // not ours any more
              self.command({"XCLAIM", self.options.stream, self.options.group,
                            self.options.consumer, "0", id, "JUSTID"},
                           [id, give_up](impl& self, redis::reply r) {
                             if (r.is_error())
                               return give_up(self, true);
                             if (r.type != redis::reply::kind::array || r.elements.empty())
                               return give_up(self, false);
                             if (self.held.count(id) == 0)
                               return give_up(self, false);
                             self.post(id);
                           });
            });
  }

  void post(const std::string& id) {
    auto& h = held.at(id);
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
    client->send(std::move(request), on_strand([id](impl& self, outbound::http_result result) {
                   --self.in_flight;
                   self.posted(id, result);
                 }));
  }

  void posted(const std::string& id, const outbound::http_result& result) {
    auto it = held.find(id);
    if (it == held.end())
      return;
    auto& h = it->second;
    if (result.response && result.response->status >= 200 && result.response->status < 300) {
      m.deliveries.with({h.ev.type, "delivered"}).inc();
      GORING_LOG(debug, component, "delivered " << h.ev.type << " " << h.ev.id);
      held.erase(it);
      finish(id);
      return;
    }
    auto reason = failure_reason(result);
    m.failed_attempts.with({reason}).inc();
    ++h.retries;
    auto now = now_ms();
    std::uniform_real_distribution<double> unit{0.0, 1.0};
    auto next = now + retry_delay(h.retries, unit(rng)).count();
    if (expired(h.ev.created_at, next, options.max_age)) {
      drop(id, "not delivered within WEBHOOK_MAX_AGE (last: " + reason + ")");
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

  void drop(const std::string& id, const std::string& why) {
    auto it = held.find(id);
    if (it == held.end())
      return;
    GORING_LOG(error, component,
               "dropping webhook " << it->second.ev.type << " " << it->second.ev.id << ": " << why);
    m.deliveries.with({it->second.ev.type, "dropped"}).inc();
    held.erase(it);
    finish(id);
  }

  /// Done with an entry: acknowledged, then deleted, so the stream holds
  /// only what is still to deliver (its length is the queue).
  void finish(const std::string& id) {
    command({"XACK", options.stream, options.group, id}, [id](impl& self, redis::reply r) {
      if (r.is_error()) {
        // Left pending: claimed and sent again later (at least once).
        GORING_LOG(warn, component, "XACK of webhook event " << id << " failed: " << r.str);
        return;
      }
      self.command({"XDEL", self.options.stream, id}, [](impl&, redis::reply) {});
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
                                            << self->options.consumer);
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
