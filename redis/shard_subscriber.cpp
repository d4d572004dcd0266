/// RESP over an Asio TCP socket for one sharded-pub/sub connection: login,
/// SSUBSCRIBE batches matched to their confirmations, and the pushes
/// ("smessage", server-sent "sunsubscribe") handed to the owner.
#include "redis/shard_subscriber.hpp"

#include <array>
#include <chrono>
#include <deque>
#include <set>

#include <strings.h>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <hiredis/hiredis.h>

namespace goring::redis {

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

/// A connect plus login that takes longer is given up (the owner retries).
constexpr std::chrono::seconds connect_timeout{3};

std::string format(const std::vector<std::string>& argv) {
  std::vector<const char*> args;
  std::vector<size_t> lens;
  for (auto& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  char* raw = nullptr;
  int len = redisFormatCommandArgv(&raw, static_cast<int>(args.size()), args.data(), lens.data());
  if (len < 0 || raw == nullptr)
    return {};
  std::string out(raw, static_cast<std::size_t>(len));
  redisFreeCommand(raw);
  return out;
}

bool kind_is(const reply& r, const char* word) {
  return !r.elements.empty() && r.elements[0].type == reply::kind::string
         && strcasecmp(r.elements[0].str.c_str(), word) == 0;
}

} // namespace

struct shard_subscriber::impl : std::enable_shared_from_this<impl> {
  /// A command whose reply is still to come: a plain one (AUTH, CLIENT
  /// SETNAME) gets one reply; an SSUBSCRIBE one confirmation per channel or
  /// one error.
  struct pending {
    bool ssubscribe = false;
    std::size_t remaining = 1;
    reply_handler on_done;
  };

  impl(strand_type strand, endpoint where, callbacks cbs)
    : strand_(std::move(strand)), where_(std::move(where)), cbs_(std::move(cbs)), socket_(strand_),
      resolver_(strand_), timer_(strand_), reader_(redisReaderCreate()) {
  }

  ~impl() {
    if (reader_ != nullptr)
      redisReaderFree(reader_);
  }

  /// Runs `f` later on the strand unless stopped by then.
  template <class F>
  void later(F f) {
    asio::post(strand_, [self = shared_from_this(), f = std::move(f)]() mutable {
      if (!self->stopped_)
        f();
    });
  }

  void start() {
    if (started_ || stopped_)
      return;
    started_ = true;
    timer_.expires_after(connect_timeout);
    timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
      auto self = weak.lock();
      if (self && !ec && !self->connected_)
        self->fail("connect timed out");
    });
    resolver_.async_resolve(
      where_.host, std::to_string(where_.port),
      [self = shared_from_this()](const boost::system::error_code& ec,
                                  const tcp::resolver::results_type& results) {
        if (self->closed_)
          return;
        if (ec) {
          self->fail("cannot resolve " + self->where_.host + ": " + ec.message());
          return;
        }
        asio::async_connect(self->socket_, results,
                            [self](const boost::system::error_code& ec, const tcp::endpoint&) {
                              self->on_connect(ec);
                            });
      });
  }

  void on_connect(const boost::system::error_code& ec) {
    if (closed_)
      return;
    if (ec) {
      fail("connect failed: " + ec.message());
      return;
    }
    boost::system::error_code ignored;
    socket_.set_option(asio::socket_base::keep_alive(true), ignored);
    read();
    std::size_t logins = 0;
    auto logged_in_step = [weak = weak_from_this()](reply r) {
      auto self = weak.lock();
      if (!self || self->closed_)
        return;
      if (r.is_error() && self->awaiting_auth_) {
        self->fail("redis AUTH failed: " + r.str);
        return;
      }
      self->awaiting_auth_ = false;
      if (--self->logins_left_ == 0)
        self->logged_in();
    };
    if (!where_.password.empty()) {
      std::vector<std::string> auth{"AUTH"};
      if (!where_.username.empty())
        auth.push_back(where_.username);
      auth.push_back(where_.password);
      awaiting_auth_ = true;
      send(auth, {false, 1, logged_in_step});
      ++logins;
    }
    if (!where_.client_name.empty()) {
      std::string name = where_.client_name;
      for (auto& c : name)
        if (c <= ' ' || c > '~')
          c = '_';
      // An error (a proxy without CLIENT) changes nothing.
      send({"CLIENT", "SETNAME", std::move(name)}, {false, 1, logged_in_step});
      ++logins;
    }
    logins_left_ = logins;
    if (logins == 0)
      logged_in();
  }

  void logged_in() {
    connected_ = true;
    timer_.cancel();
    later([this] {
      if (cbs_.on_connected)
        cbs_.on_connected();
    });
  }

  void send(const std::vector<std::string>& argv, pending p) {
    if (closed_) {
      if (p.on_done) // posted even after stop(): whoever waits must hear
        asio::post(strand_,
                   [h = std::move(p.on_done)] { h(reply::make_error("redis connection lost")); });
      return;
    }
    if (p.remaining > 0)
      pending_.push_back(std::move(p));
    out_.push_back(format(argv));
    write();
  }

  void write() {
    if (writing_ || out_.empty() || closed_)
      return;
    writing_ = true;
    asio::async_write(
      socket_, asio::buffer(out_.front()),
      [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
        self->writing_ = false;
        if (self->closed_)
          return;
        if (ec) {
          self->fail("write failed: " + ec.message());
          return;
        }
        self->out_.pop_front();
        self->write();
      });
  }

  void read() {
    socket_.async_read_some(
      asio::buffer(buffer_),
      [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
        if (self->closed_)
          return;
        if (ec) {
          self->fail(ec == asio::error::eof ? "connection closed" : "read failed: " + ec.message());
          return;
        }
        if (redisReaderFeed(self->reader_, self->buffer_.data(), n) != REDIS_OK) {
          self->fail("cannot parse the redis reply");
          return;
        }
        for (;;) {
          void* raw = nullptr;
          if (redisReaderGetReply(self->reader_, &raw) != REDIS_OK) {
            self->fail("redis protocol error");
            return;
          }
          if (raw == nullptr)
            break;
          auto r = to_reply(static_cast<redisReply*>(raw));
          freeReplyObject(raw);
          self->dispatch(std::move(r));
          if (self->closed_)
            return;
        }
        self->read();
      });
  }

  void dispatch(reply r) {
    if (r.type == reply::kind::array && r.elements.size() >= 3) {
      if (kind_is(r, "smessage")) {
        later([this, channel = r.elements[1].str, payload = r.elements[2].str] {
          if (cbs_.on_message)
            cbs_.on_message(channel, payload);
        });
        return;
      }
      if (kind_is(r, "sunsubscribe")) {
        auto channel = r.elements[1].str;
        if (leaving_.erase(channel) == 0)
          later([this, channel] {
            if (cbs_.on_dropped)
              cbs_.on_dropped(channel);
          });
        return;
      }
      if (kind_is(r, "ssubscribe")) {
        if (pending_.empty() || !pending_.front().ssubscribe)
          return;
        auto& front = pending_.front();
        if (--front.remaining > 0)
          return;
        complete(std::move(r));
        return;
      }
    }
    // A plain reply, or an SSUBSCRIBE refused as a whole (MOVED, CROSSSLOT).
    if (!pending_.empty())
      complete(std::move(r));
  }

  void complete(reply r) {
    auto h = std::move(pending_.front().on_done);
    pending_.pop_front();
    // Posted even after stop(), as close() does for what is still pending:
    // the entry has left pending_, so nobody else would answer it.
    if (h)
      asio::post(strand_, [h = std::move(h), r = std::move(r)]() mutable { h(std::move(r)); });
  }

  /// Closes the socket and fails whatever waits; `report` says whether the
  /// owner hears of it (not after its own stop()).
  void close(const std::string& why, bool report) {
    if (closed_)
      return;
    closed_ = true;
    connected_ = false;
    timer_.cancel();
    resolver_.cancel();
    boost::system::error_code ignored;
    socket_.close(ignored);
    auto error = reply::make_error("redis connection lost: " + why);
    for (auto& p : pending_)
      if (p.on_done)
        asio::post(strand_, [h = std::move(p.on_done), error] { h(error); });
    pending_.clear();
    out_.clear();
    if (report)
      later([this, why] {
        if (cbs_.on_lost)
          cbs_.on_lost(why);
      });
  }

  void fail(const std::string& why) {
    close(why, true);
  }

  strand_type strand_;
  const endpoint where_;
  const callbacks cbs_;
  tcp::socket socket_;
  tcp::resolver resolver_;
  asio::steady_timer timer_;
  redisReader* reader_;
  std::array<char, 16384> buffer_{};
  std::deque<std::string> out_;
  bool writing_ = false;
  std::deque<pending> pending_;
  std::set<std::string> leaving_;
  std::size_t logins_left_ = 0;
  bool awaiting_auth_ = false;
  bool started_ = false;
  bool connected_ = false;
  bool closed_ = false;
  bool stopped_ = false;
};

shard_subscriber::shard_subscriber(strand_type strand, endpoint where, callbacks cbs)
  : impl_(std::make_shared<impl>(std::move(strand), std::move(where), std::move(cbs))) {
  // nop
}

shard_subscriber::~shard_subscriber() {
  stop();
}

void shard_subscriber::start() {
  impl_->start();
}

void shard_subscriber::stop() {
  impl_->stopped_ = true;
  impl_->close("stopped", false);
}

void shard_subscriber::subscribe(std::vector<std::string> channels, reply_handler on_done) {
  if (!impl_->connected_ || channels.empty()) {
    if (on_done)
      asio::post(impl_->strand_, [h = std::move(on_done), empty = channels.empty()] {
        h(reply::make_error(empty ? "no channels" : "redis not connected"));
      });
    return;
  }
  for (auto& c : channels)
    impl_->leaving_.erase(c);
  auto count = channels.size();
  channels.insert(channels.begin(), "SSUBSCRIBE");
  impl_->send(channels, {true, count, std::move(on_done)});
}

void shard_subscriber::unsubscribe(std::vector<std::string> channels) {
  if (!impl_->connected_ || channels.empty())
    return;
  for (auto& c : channels)
    impl_->leaving_.insert(c);
  channels.insert(channels.begin(), "SUNSUBSCRIBE");
  impl_->send(channels, {false, 0, {}});
}

bool shard_subscriber::connected() const {
  return impl_->connected_;
}

} // namespace goring::redis
