#include "tests/support/http_test_server.hpp"

#include <atomic>
#include <cctype>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <doctest/doctest.h>

#include "tests/support/process.hpp"

namespace goring::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

std::string recorded_request::header(const std::string& name) const {
  for (auto& [key, value] : headers) {
    if (key.size() == name.size()
        && std::equal(key.begin(), key.end(), name.begin(), [](char a, char b) {
             return std::tolower(static_cast<unsigned char>(a))
                    == std::tolower(static_cast<unsigned char>(b));
           }))
      return value;
  }
  return {};
}

struct http_test_server::impl {
  asio::io_context io;
  /// Keeps io.run() going while the acceptor is closed and no one connects.
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::optional<ssl::context> tls;
  tcp::acceptor acceptor{io};
  uint16_t port = 0;
  std::thread thread;

  mutable std::mutex mutex;
  std::condition_variable changed;
  unsigned status = 200;
  std::string body = R"({"keys":[]})";
  std::vector<std::pair<std::string, std::string>> headers{{"Content-Type", "application/json"}};
  behaviour how = behaviour::answer;
  std::size_t count = 0;
  recorded_request last;
  std::vector<recorded_request> all;

  void open() {
    tcp::endpoint where{asio::ip::make_address("127.0.0.1"), port};
    acceptor.open(where.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    acceptor.bind(where);
    acceptor.listen();
    port = acceptor.local_endpoint().port();
    accept();
  }

  void accept();
};

namespace {

/// One connection: reads a request, then does what the server is told.
class session : public std::enable_shared_from_this<session> {
public:
  session(tcp::socket socket, http_test_server::impl& server)
    : server_(server), timer_(socket.get_executor()),
      stream_(std::move(socket), server.tls ? *server.tls : fallback_context()) {
    // nop
  }

  void run() {
    if (!server_.tls)
      return read();
    stream_.async_handshake(ssl::stream_base::server,
                            [self = shared_from_this()](beast::error_code ec) {
                              if (!ec)
                                self->read();
                            });
  }

private:
  /// An ssl_stream needs a context even for plain HTTP, where it is unused.
  static ssl::context& fallback_context() {
    static ssl::context ctx{ssl::context::tls_server};
    return ctx;
  }

  template <class F>
  void with_stream(F f) {
    if (server_.tls)
      f(stream_);
    else
      f(stream_.next_layer());
  }

  void read() {
    parser_.emplace();
    parser_->body_limit(1u << 20);
    with_stream([&](auto& s) {
      http::async_read(s, buffer_, *parser_,
                       [self = shared_from_this()](beast::error_code ec, std::size_t) {
                         if (!ec)
                           self->on_request();
                       });
    });
  }

  void on_request() {
    auto req = parser_->release();
    recorded_request seen;
    seen.method = std::string{req.method_string()};
    seen.target = std::string{req.target()};
    for (auto& field : req)
      seen.headers.emplace_back(std::string{field.name_string()}, std::string{field.value()});
    seen.body = req.body();
    http_test_server::behaviour how;
    {
      std::lock_guard<std::mutex> guard{server_.mutex};
      ++server_.count;
      server_.all.push_back(seen);
      server_.last = std::move(seen);
      how = server_.how;
      status_ = server_.status;
      body_ = server_.body;
      headers_ = server_.headers;
    }
    server_.changed.notify_all();
    switch (how) {
      case http_test_server::behaviour::answer:
        return answer();
      case http_test_server::behaviour::stall:
        return send_raw("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                        "100000\r\n\r\n{",
                        &session::drip);
      case http_test_server::behaviour::flood:
        return send_raw("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: "
                        "chunked\r\n\r\n",
                        &session::flood);
      case http_test_server::behaviour::hang_up:
        beast::get_lowest_layer(stream_).close();
        return;
    }
  }

  void answer() {
    res_.result(status_);
    res_.version(11);
    for (auto& [name, value] : headers_)
      res_.set(name, value);
    res_.keep_alive(false);
    res_.body() = body_;
    res_.prepare_payload();
    with_stream([&](auto& s) {
      http::async_write(s, res_, [self = shared_from_this()](beast::error_code, std::size_t) {
        beast::get_lowest_layer(self->stream_).close();
      });
    });
  }

  void send_raw(std::string bytes, void (session::*next)()) {
    raw_ = std::move(bytes);
    with_stream([&](auto& s) {
      asio::async_write(s, asio::buffer(raw_),
                        [self = shared_from_this(), next](beast::error_code ec, std::size_t) {
                          if (!ec)
                            ((*self).*next)();
                        });
    });
  }

  /// One space every 200 ms: a body that comes, but never all of it.
  void drip() {
    timer_.expires_after(std::chrono::milliseconds(200));
    timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec)
        self->send_raw(" ", &session::drip);
    });
  }

  /// 64 KiB chunks until the client gives up.
  void flood() {
    static const std::string chunk = "10000\r\n" + std::string(0x10000, ' ') + "\r\n";
    send_raw(chunk, &session::flood);
  }

  http_test_server::impl& server_;
  asio::steady_timer timer_;
  beast::ssl_stream<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  std::string raw_;
  unsigned status_ = 200;
  std::string body_;
  std::vector<std::pair<std::string, std::string>> headers_;
};

} // namespace

void http_test_server::impl::accept() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec)
      return;
    std::make_shared<session>(std::move(socket), *this)->run();
    accept();
  });
}

http_test_server::http_test_server() : impl_(std::make_unique<impl>()) {
  impl_->open();
  impl_->thread = std::thread{[this] { impl_->io.run(); }};
}

http_test_server::http_test_server(const std::string& cert_chain_file, const std::string& key_file)
  : impl_(std::make_unique<impl>()) {
  impl_->tls.emplace(ssl::context::tls_server);
  impl_->tls->use_certificate_chain_file(cert_chain_file);
  impl_->tls->use_private_key_file(key_file, ssl::context::pem);
  impl_->open();
  impl_->thread = std::thread{[this] { impl_->io.run(); }};
}

http_test_server::~http_test_server() {
  impl_->io.stop();
  impl_->thread.join();
}

uint16_t http_test_server::port() const {
  return impl_->port;
}

std::string http_test_server::url(const std::string& path) const {
  return std::string{impl_->tls ? "https" : "http"} + "://127.0.0.1:" + std::to_string(port())
         + path;
}

void http_test_server::answer(unsigned status, std::string body,
                              std::vector<std::pair<std::string, std::string>> headers) {
  std::lock_guard<std::mutex> guard{impl_->mutex};
  impl_->how = behaviour::answer;
  impl_->status = status;
  impl_->body = std::move(body);
  impl_->headers = std::move(headers);
}

void http_test_server::misbehave(behaviour how) {
  std::lock_guard<std::mutex> guard{impl_->mutex};
  impl_->how = how;
}

std::size_t http_test_server::requests() const {
  std::lock_guard<std::mutex> guard{impl_->mutex};
  return impl_->count;
}

bool http_test_server::wait_requests(std::size_t count, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock{impl_->mutex};
  return impl_->changed.wait_for(lock, timeout, [&] { return impl_->count >= count; });
}

recorded_request http_test_server::last_request() const {
  std::lock_guard<std::mutex> guard{impl_->mutex};
  return impl_->last;
}

std::vector<recorded_request> http_test_server::all_requests() const {
  std::lock_guard<std::mutex> guard{impl_->mutex};
  return impl_->all;
}

namespace {

/// Runs `f` on the server's thread and waits for it (at most 5 s).
template <class F>
void on_server_thread(http_test_server::impl& server, F f) {
  auto done = std::make_shared<std::promise<void>>();
  auto ready = done->get_future();
  asio::post(server.io, [f, done] {
    f();
    done->set_value();
  });
  REQUIRE(ready.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
}

} // namespace

void http_test_server::close() {
  on_server_thread(*impl_, [this] {
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
  });
}

void http_test_server::listen() {
  on_server_thread(*impl_, [this] { impl_->open(); });
}

} // namespace goring::test
