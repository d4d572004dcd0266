/// hiredis' asynchronous API on an Asio strand: socket watching, login,
/// reconnects with backoff, and replies turned into plain `reply` values.
#include "redis/async_connection.hpp"
#include "redis/reply.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <deque>
#include <map>
#include <set>
#include <utility>

#include <strings.h>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <hiredis/async.h>

namespace goring::redis {

namespace {

namespace asio = boost::asio;
using strand_type = asio::strand<asio::io_context::executor_type>;
using wait_type = asio::posix::descriptor_base::wait_type;

/// Wait before the first reconnect; doubles after every failed attempt.
constexpr std::chrono::milliseconds first_backoff{100};
/// Longest wait between two reconnect attempts.
constexpr std::chrono::milliseconds max_backoff{2000};
/// A connect plus login that takes longer is abandoned and retried, so a
/// silent network cannot keep the connection "connecting" for minutes.
constexpr std::chrono::seconds connect_timeout{3};

bool is_string(const redisReply* r, const char* text) {
  return r->type == REDIS_REPLY_STRING && r->len == std::strlen(text)
         && strncasecmp(r->str, text, r->len) == 0;
}

/// Commands that change hiredis' pub/sub bookkeeping. They only go through
/// subscribe()/unsubscribe(), which keep that bookkeeping consistent.
bool is_pubsub_command(const std::string& name) {
  for (const char* c : {"subscribe", "unsubscribe", "psubscribe", "punsubscribe", "monitor"})
    if (name.size() == std::strlen(c) && strncasecmp(name.data(), c, name.size()) == 0)
      return true;
  return false;
}

/// Sends argv with redisAsyncCommandArgv (binary safe).
int send_argv(redisAsyncContext* ac, redisCallbackFn* fn, void* privdata,
              const std::vector<std::string>& argv) {
  std::vector<const char*> args;
  std::vector<size_t> lens;
  args.reserve(argv.size());
  lens.reserve(argv.size());
  for (auto& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  return redisAsyncCommandArgv(ac, fn, privdata, static_cast<int>(args.size()), args.data(),
                               lens.data());
}

/// Watches hiredis' socket: hiredis asks for readiness through its ev hooks,
/// and handlers on the strand answer with redisAsyncHandleRead/Write.
/// Pending waits hold the watch alive; `ac_` is cleared when hiredis cleans
/// up, so a wait that completes after the context was freed does nothing.
class socket_watch : public std::enable_shared_from_this<socket_watch> {
public:
  socket_watch(asio::io_context& io, const strand_type& strand) : strand_(strand), descriptor_(io) {
  }

  /// Starts watching `ac`'s socket and installs the hooks hiredis calls.
  void attach(redisAsyncContext* ac, boost::system::error_code& ec) {
    descriptor_.assign(ac->c.fd, ec);
    if (ec)
      return;
    ac_ = ac;
    ac->ev.data = this;
    ac->ev.addRead = [](void* self) {
      static_cast<socket_watch*>(self)->want(wait_type::wait_read);
    };
    ac->ev.delRead = [](void* self) { static_cast<socket_watch*>(self)->read_.wanted = false; };
    ac->ev.addWrite = [](void* self) {
      static_cast<socket_watch*>(self)->want(wait_type::wait_write);
    };
    ac->ev.delWrite = [](void* self) { static_cast<socket_watch*>(self)->write_.wanted = false; };
    ac->ev.cleanup = [](void* self) { static_cast<socket_watch*>(self)->detach(); };
  }

private:
  struct direction {
    bool wanted = false;
    bool waiting = false;
  };

  void want(wait_type w) {
    auto& d = w == wait_type::wait_read ? read_ : write_;
    d.wanted = true;
    if (d.waiting || ac_ == nullptr)
      return;
    d.waiting = true;
    descriptor_.async_wait(w, asio::bind_executor(strand_, [self = shared_from_this(), w](
                                                             const boost::system::error_code& ec) {
                             self->on_ready(w, ec);
                           }));
  }

  void on_ready(wait_type w, const boost::system::error_code& ec) {
    auto& d = w == wait_type::wait_read ? read_ : write_;
    d.waiting = false;
    if (ec == asio::error::operation_aborted || ac_ == nullptr || !d.wanted)
      return;
    // Either call may free the context (and run detach); ac_ is not
    // touched afterwards.
    if (w == wait_type::wait_read)
      redisAsyncHandleRead(ac_);
    else
      redisAsyncHandleWrite(ac_);
  }

  /// hiredis is about to close the socket: give it back without closing
  /// it, which also cancels the pending waits.
  void detach() {
    ac_ = nullptr;
    read_.wanted = write_.wanted = false;
    if (descriptor_.is_open())
      descriptor_.release();
  }

  strand_type strand_;
  asio::posix::stream_descriptor descriptor_;
  redisAsyncContext* ac_ = nullptr;
  direction read_;
  direction write_;
};

} // namespace

/// The connection's state. Lives on the strand: every member but
/// `connected_` is touched only from there (or from the destructor once no
/// handler can run any more). hiredis reaches it through `ac->data`.
struct async_connection::impl : std::enable_shared_from_this<impl> {
  /// One SUBSCRIBE waiting for its confirmations, one per channel.
  struct pending_subscribe {
    size_t remaining;
    reply_handler on_done;
  };

  impl(asio::io_context& io, endpoint where, callbacks cbs)
    : io_(io), strand_(asio::make_strand(io)), where_(std::move(where)), cbs_(std::move(cbs)),
      reconnect_timer_(strand_), connect_timer_(strand_) {
  }

  ~impl() {
    // Only reached with a live context when the posted stop never ran (the
    // io_context was stopped for good); free it so the socket is closed.
    stopped_ = true;
    if (ac_ != nullptr) {
      failure_ = "connection stopped";
      redisAsyncFree(ac_);
    }
  }

  /// Runs `f` on the strand, keeping the state alive until then.
  template <class F>
  void post_self(F f) {
    asio::post(strand_, [self = shared_from_this(), f = std::move(f)]() mutable { f(*self); });
  }

  void post_reply(reply_handler handler, reply r) {
    if (!handler)
      return;
    asio::post(strand_, [h = std::move(handler), r = std::move(r)]() mutable { h(std::move(r)); });
  }

  /// Posts a user callback that is skipped once the connection is stopped.
  template <class F>
  void post_event(F f) {
    asio::post(strand_, [weak = weak_from_this(), f = std::move(f)]() mutable {
      if (auto self = weak.lock(); self && !self->stopped_)
        f(*self);
    });
  }

  void do_start() {
    if (started_ || stopped_)
      return;
    started_ = true;
    connect();
  }

  void do_stop() {
    if (stopped_)
      return;
    stopped_ = true;
    connected_ = false;
    reconnect_timer_.cancel();
    connect_timer_.cancel();
    if (ac_ != nullptr) {
      failure_ = "connection stopped";
      redisAsyncFree(ac_);
      context_gone(failure_);
    }
  }

  /// Drops a connection that is up but no longer trusted (a pub/sub probe
  /// went unanswered) and reconnects at once, as after a loss.
  void do_restart(std::string why) {
    if (stopped_ || ac_ == nullptr)
      return;
    failure_ = std::move(why);
    backoff_ = std::chrono::milliseconds{0};
    redisAsyncFree(ac_);
    context_gone(failure_);
  }

  void connect() {
    if (stopped_ || ac_ != nullptr)
      return;
    redisAsyncContext* ac = redisAsyncConnect(where_.host.c_str(), where_.port);
    if (ac == nullptr) {
      attempt_failed("cannot allocate a redis context");
      return;
    }
    if (ac->err != 0) {
      std::string why = ac->errstr;
      redisAsyncFree(ac);
      attempt_failed(why);
      return;
    }
    auto watch = std::make_shared<socket_watch>(io_, strand_);
    boost::system::error_code ec;
    watch->attach(ac, ec);
    if (ec) {
      redisAsyncFree(ac);
      attempt_failed("cannot watch the redis socket: " + ec.message());
      return;
    }
    ac->data = this;
    ac_ = ac;
    watch_ = std::move(watch);
    redisAsyncSetDisconnectCallback(ac, &impl::on_hiredis_disconnect);
    // Also asks for writability, which is how the connect completes.
    redisAsyncSetConnectCallback(ac, &impl::on_hiredis_connect);

    auto generation = ++generation_;
    connect_timer_.expires_after(connect_timeout);
    connect_timer_.async_wait(
      [weak = weak_from_this(), generation](const boost::system::error_code& ec) {
        auto self = weak.lock();
        if (!self || ec || self->generation_ != generation || self->ac_ == nullptr
            || self->connected_)
          return;
        self->failure_ = "connect timed out";
        redisAsyncFree(self->ac_);
        self->context_gone(self->failure_);
      });
  }

  /// The current context is freed or about to be freed by hiredis: fail what
  /// waits on it, report, and plan the next attempt. Idempotent per context.
  void context_gone(std::string why) {
    if (ac_ == nullptr)
      return;
    ac_ = nullptr;
    connected_ = false;
    failure_.clear();
    connect_timer_.cancel();
    pubsub_mode_ = false;
    channels_.clear();
    auto error = reply::make_error("redis connection lost: " + why);
    // hiredis already failed in-flight commands with NULL replies; this
    // catches anything it did not.
    for (auto& [id, handler] : pending_)
      post_reply(std::move(handler), error);
    pending_.clear();
    for (auto& sub : pending_subscribes_)
      post_reply(std::move(sub.on_done), error);
    pending_subscribes_.clear();
    attempt_failed(std::move(why));
  }

  void attempt_failed(std::string why) {
    if (stopped_)
      return;
    post_event([why = std::move(why)](impl& self) {
      if (self.cbs_.on_disconnected)
        self.cbs_.on_disconnected(why);
    });
    reconnect_timer_.expires_after(backoff_);
    reconnect_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
      if (auto self = weak.lock(); self && !ec)
        self->connect();
    });
    backoff_ = std::min(std::max(backoff_ * 2, first_backoff), max_backoff);
  }

  void logged_in() {
    if (!where_.client_name.empty()) {
      // No callback: an error (a proxy without CLIENT) changes nothing. Sent
      // before any SUBSCRIBE, so its reply comes before pub/sub replies.
      std::string name = where_.client_name;
      for (auto& c : name)
        if (c <= ' ' || c > '~')
          c = '_';
      send_argv(ac_, nullptr, nullptr, {"CLIENT", "SETNAME", std::move(name)});
    }
    connected_ = true;
    backoff_ = first_backoff;
    connect_timer_.cancel();
    post_event([](impl& self) {
      if (self.cbs_.on_connected)
        self.cbs_.on_connected();
    });
  }

  void do_command(std::vector<std::string> argv, reply_handler handler) {
    const char* refusal = nullptr;
    if (!connected_ || ac_ == nullptr)
      refusal = "redis not connected";
    else if (argv.empty())
      refusal = "empty redis command";
    else if (is_pubsub_command(argv[0]))
      refusal = "pub/sub commands go through subscribe() and unsubscribe()";
    else if (pubsub_mode_)
      refusal = "this redis connection is subscribed; use another one";
    if (refusal != nullptr) {
      post_reply(std::move(handler), reply::make_error(refusal));
      return;
    }
    // hiredis gets a number, not a pointer: its callbacks may be called
    // late or twice in corner cases, and a number no longer in `pending_`
    // is simply ignored.
    auto id = next_id_++;
    pending_.emplace(id, std::move(handler));
    if (send_argv(ac_, &impl::on_command_reply, reinterpret_cast<void*>(static_cast<uintptr_t>(id)),
                  argv)
        != REDIS_OK) {
      auto it = pending_.find(id);
      post_reply(std::move(it->second), reply::make_error("redis command could not be sent"));
      pending_.erase(it);
    }
  }

  void do_subscribe(std::vector<std::string> channels, reply_handler on_done) {
    if (!connected_ || ac_ == nullptr) {
      post_reply(std::move(on_done), reply::make_error("redis not connected"));
      return;
    }
    if (channels.empty()) {
      post_reply(std::move(on_done), reply::make_error("no channels"));
      return;
    }
    auto count = channels.size();
    for (auto& channel : channels)
      channels_.insert(channel);
    channels.insert(channels.begin(), "SUBSCRIBE");
    // Every channel's confirmation and messages come to the same function,
    // which finds this connection through ac->data: nothing per channel to
    // leak or to free twice.
    if (send_argv(ac_, &impl::on_subscribe_reply, nullptr, channels) != REDIS_OK) {
      post_reply(std::move(on_done), reply::make_error("redis command could not be sent"));
      return;
    }
    pubsub_mode_ = true;
    pending_subscribes_.push_back({count, std::move(on_done)});
  }

  void do_unsubscribe(std::vector<std::string> channels) {
    if (!connected_ || ac_ == nullptr || !pubsub_mode_)
      return;
    // Only channels we subscribed to: hiredis 0.14 asserts on, or misroutes,
    // confirmations for channels it does not know.
    std::vector<std::string> argv{"UNSUBSCRIBE"};
    for (auto& channel : channels)
      if (channels_.erase(channel) > 0)
        argv.push_back(std::move(channel));
    if (argv.size() > 1)
      send_argv(ac_, nullptr, nullptr, argv);
  }

  static impl* from(const redisAsyncContext* ac) {
    return static_cast<impl*>(ac->data);
  }

  static void on_hiredis_connect(const redisAsyncContext* ac, int status) {
    auto* self = from(ac);
    if (status != REDIS_OK) {
      // hiredis frees the context right after this returns.
      self->context_gone(ac->c.errstr[0] != '\0' ? ac->c.errstr : "connect failed");
      return;
    }
    redisEnableKeepAlive(&self->ac_->c);
    if (self->where_.password.empty()) {
      self->logged_in();
      return;
    }
    std::vector<std::string> auth{"AUTH"};
    if (!self->where_.username.empty())
      auth.push_back(self->where_.username);
    auth.push_back(self->where_.password);
    if (send_argv(self->ac_, &impl::on_auth_reply, nullptr, auth) != REDIS_OK)
      self->failure_ = "AUTH could not be sent";
  }

  static void on_hiredis_disconnect(const redisAsyncContext* ac, int status) {
    auto* self = from(ac);
    std::string why = !self->failure_.empty() ? self->failure_
                      : status == REDIS_OK    ? "connection closed"
                                              : ac->c.errstr;
    self->context_gone(std::move(why));
  }

  static void on_auth_reply(redisAsyncContext* ac, void* raw, void*) {
    auto* self = from(ac);
    auto* r = static_cast<redisReply*>(raw);
    if (r == nullptr || self->ac_ != ac || self->connected_)
      return;
    if (r->type == REDIS_REPLY_ERROR) {
      self->failure_ = "redis AUTH failed: " + std::string(r->str, r->len);
      // Inside a callback hiredis defers this until the callback returns;
      // on_hiredis_disconnect then reports `failure_`.
      redisAsyncDisconnect(ac);
      return;
    }
    self->logged_in();
  }

  static void on_command_reply(redisAsyncContext* ac, void* raw, void* privdata) {
    auto* self = from(ac);
    auto it = self->pending_.find(reinterpret_cast<uintptr_t>(privdata));
    if (it == self->pending_.end())
      return;
    auto handler = std::move(it->second);
    self->pending_.erase(it);
    if (raw != nullptr) {
      self->post_reply(std::move(handler), to_reply(static_cast<redisReply*>(raw)));
      return;
    }
    // NULL: the context is being freed with this command still in flight.
    std::string why = !self->failure_.empty() ? self->failure_
                      : ac->c.err != 0        ? ac->c.errstr
                                              : "connection closed";
    self->post_reply(std::move(handler), reply::make_error("redis connection lost: " + why));
  }

  /// Pushed arrays on a subscribed connection: ["subscribe", ch, n],
  /// ["message", ch, payload], ["unsubscribe", ch, n].
  static void on_subscribe_reply(redisAsyncContext* ac, void* raw, void*) {
    auto* self = from(ac);
    auto* r = static_cast<redisReply*>(raw);
    // NULL: the context is being freed; context_gone fails what waits.
    if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements < 3)
      return;
    const redisReply* kind = r->element[0];
    if (is_string(kind, "message")) {
      if (r->element[1]->type != REDIS_REPLY_STRING || r->element[2]->type != REDIS_REPLY_STRING)
        return;
      self->post_event([channel = std::string(r->element[1]->str, r->element[1]->len),
                        payload = std::string(r->element[2]->str, r->element[2]->len)](impl& self) {
        if (self.cbs_.on_message)
          self.cbs_.on_message(channel, payload);
      });
    } else if (is_string(kind, "subscribe")) {
      // Redis confirms channels in the order they were asked for, and
      // SUBSCRIBEs in the order they were sent.
      if (self->pending_subscribes_.empty())
        return;
      auto& front = self->pending_subscribes_.front();
      if (--front.remaining > 0)
        return;
      self->post_reply(std::move(front.on_done), to_reply(r));
      self->pending_subscribes_.pop_front();
    }
  }

  asio::io_context& io_;
  strand_type strand_;
  const endpoint where_;
  const callbacks cbs_;
  asio::steady_timer reconnect_timer_;
  asio::steady_timer connect_timer_;

  redisAsyncContext* ac_ = nullptr;
  /// Watches ac_'s socket; kept until the next connect because hiredis
  /// calls its cleanup hook while freeing the context.
  std::shared_ptr<socket_watch> watch_;
  /// Tells a connect timeout which attempt it was armed for.
  uint64_t generation_ = 0;
  bool started_ = false;
  bool stopped_ = false;
  /// Connected and logged in; read from any thread by connected().
  std::atomic<bool> connected_{false};
  std::chrono::milliseconds backoff_ = first_backoff;
  /// Why we are closing the context ourselves, reported instead of
  /// hiredis' own text.
  std::string failure_;

  uint64_t next_id_ = 1;
  std::map<uint64_t, reply_handler> pending_;

  /// A SUBSCRIBE went out on this context: commands are refused now.
  bool pubsub_mode_ = false;
  std::set<std::string> channels_;
  std::deque<pending_subscribe> pending_subscribes_;
};

async_connection::async_connection(boost::asio::io_context& io, endpoint where, callbacks cbs)
  : impl_(std::make_shared<impl>(io, std::move(where), std::move(cbs))) {
}

async_connection::~async_connection() {
  // Never waits: if the io_context does not run again, the posted stop is
  // destroyed with it and impl's destructor frees the hiredis context.
  stop();
}

void async_connection::start() {
  impl_->post_self([](impl& self) { self.do_start(); });
}

void async_connection::stop() {
  // On the strand (inside one of our callbacks) stop at once, so nothing
  // else is delivered after this call returns.
  if (impl_->strand_.running_in_this_thread())
    impl_->do_stop();
  else
    impl_->post_self([](impl& self) { self.do_stop(); });
}

void async_connection::restart(std::string why) {
  impl_->post_self([why = std::move(why)](impl& self) mutable { self.do_restart(std::move(why)); });
}

void async_connection::command(std::vector<std::string> argv, reply_handler on_reply) {
  impl_->post_self([argv = std::move(argv), h = std::move(on_reply)](impl& self) mutable {
    self.do_command(std::move(argv), std::move(h));
  });
}

void async_connection::subscribe(std::vector<std::string> channels, reply_handler on_done) {
  impl_->post_self([channels = std::move(channels), h = std::move(on_done)](impl& self) mutable {
    self.do_subscribe(std::move(channels), std::move(h));
  });
}

void async_connection::unsubscribe(std::vector<std::string> channels) {
  impl_->post_self([channels = std::move(channels)](impl& self) mutable {
    self.do_unsubscribe(std::move(channels));
  });
}

bool async_connection::connected() const {
  return impl_->connected_.load();
}

} // namespace goring::redis
