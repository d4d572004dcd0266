#include "net/http_session.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "admission/origin_policy.hpp"
#include "auth/dev_token.hpp"
#include "auth/token_source.hpp"
#include "config/log.hpp"
#include "metrics/instance_metrics.hpp"
#include "metrics/metrics.hpp"
#include "net/percent_encoding.hpp"
#include "net/static_files.hpp"
#include "net/websocket_session.hpp"

namespace goring {

namespace beast = boost::beast;
namespace http = beast::http;

namespace {

using net::hex_value;

/// The admin listener's time for a request (or between keep-alive
/// requests): scrapers keep connections open between scrapes.
constexpr auto admin_request_timeout = std::chrono::seconds(30);
/// No route of the public or admin port takes a body bigger than this.
constexpr std::size_t body_limit = 4 * 1024;
/// How long a refused client's further bytes are read and dropped before
/// the socket closes (closing with unread bytes would reset the connection
/// and could destroy the answer before the client reads it).
constexpr auto linger = std::chrono::seconds(1);

/// Compares without an early exit, so the time taken says nothing about
/// how much of a guess was right.
bool constant_time_equal(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i] ^ b[i % (b.empty() ? 1 : b.size())]);
  return diff == 0 && !b.empty();
}

/// The admin API is open when no ADMIN_TOKEN is set (loopback only, see
/// main); otherwise it wants `Authorization: Bearer <ADMIN_TOKEN>`.
template <class Request>
bool admin_authorized(const Request& req, const std::string& token) {
  if (token.empty())
    return true;
  auto it = req.find(http::field::authorization);
  if (it == req.end())
    return false;
  auto credentials =
    auth::bearer_credentials(std::string_view{it->value().data(), it->value().size()});
  return credentials && constant_time_equal(*credentials, token);
}

std::string_view path_of(std::string_view target) {
  return target.substr(0, target.find('?'));
}

/// Client text for a log line, cut short.
std::string_view clipped(std::string_view text) {
  return text.substr(0, 200);
}

/// The request's Origin, cut short, when ALLOWED_ORIGINS refuses it;
/// nothing when it is allowed or absent. Browsers always send Origin;
/// other clients send none or whatever they like, so this only keeps
/// other sites' pages out.
template <class Request>
std::optional<std::string> refused_origin(const Request& req,
                                          const std::vector<std::string>& allowed) {
  auto origin = req.find(http::field::origin);
  if (origin == req.end())
    return std::nullopt;
  std::string_view value{origin->value().data(), origin->value().size()};
  if (origin_allowed(allowed, value))
    return std::nullopt;
  return std::string{clipped(value)};
}

} // namespace

std::optional<std::string> query_parameter(std::string_view target, std::string_view name) {
  auto q = target.find('?');
  if (q == std::string_view::npos)
    return std::nullopt;
  auto query = target.substr(q + 1);
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) == name)
      return eq == std::string_view::npos ? std::string{} : net::percent_decode(pair.substr(eq + 1), true);
    if (amp == std::string_view::npos)
      break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

http_session::http_session(connection_socket socket, std::shared_ptr<const server_context> ctx,
                           admission::ticket ticket)
  : stream_(std::move(socket)), ctx_(std::move(ctx)), ticket_(std::move(ticket)) {
  // nop
}

void http_session::run() {
  boost::asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
    // Over MAX_CONNECTIONS_PER_IP: refused before anything is read, or a
    // client could hold sockets with requests other than upgrades.
    if (self->ticket_.over_ip_limit()) {
      beast::error_code ignored;
      GORING_LOG(info, "http",
                 "connection refused from " << self->stream_.socket().remote_endpoint(ignored)
                                            << ": over MAX_CONNECTIONS_PER_IP ("
                                            << self->ctx_->config.max_connections_per_ip << ")");
      goring_metrics().count_connection("ip_connections");
      self->refuse(11, http::status::too_many_requests, "too many connections from your address\n");
      return;
    }
    self->do_read();
  });
}

void http_session::do_read() {
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(ctx_->config.max_header_bytes));
  parser_->body_limit(body_limit);
  // The whole request within HANDSHAKE_TIMEOUT, however slowly it trickles
  // in (slowloris); between keep-alive requests too.
  stream_.expires_after(ctx_->admin ? admin_request_timeout : ctx_->config.handshake_timeout);
  http::async_read(stream_, buffer_, *parser_,
                   beast::bind_front_handler(&http_session::on_read, shared_from_this()));
}

void http_session::on_read(beast::error_code ec, std::size_t) {
  if (ec == http::error::end_of_stream) {
    stream_.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_send, ec);
    return;
  }
  if (ec == http::error::header_limit) {
    beast::error_code ignored;
    GORING_LOG(info, "http",
               "request from " << stream_.socket().remote_endpoint(ignored)
                               << " refused: header over MAX_HEADER_BYTES ("
                               << ctx_->config.max_header_bytes << ")");
    goring_metrics().http_refused->with({"header_too_large"}).inc();
    refuse(11, http::status::request_header_fields_too_large,
           "request header fields too large: at most "
             + std::to_string(ctx_->config.max_header_bytes) + " bytes\n");
    return;
  }
  if (ec == http::error::body_limit) {
    goring_metrics().http_refused->with({"body_too_large"}).inc();
    refuse(11, http::status::payload_too_large,
           "payload too large: at most " + std::to_string(body_limit) + " bytes\n");
    return;
  }
  if (ec == beast::error::timeout) {
    // Only a request begun and not finished is worth counting: an idle
    // keep-alive connection timing out is normal.
    if (parser_->got_some() && !ctx_->admin) {
      beast::error_code ignored;
      GORING_LOG(info, "http",
                 "request from " << stream_.socket().remote_endpoint(ignored)
                                 << " not complete within HANDSHAKE_TIMEOUT; closed");
      goring_metrics().http_refused->with({"handshake_timeout"}).inc();
    }
    return;
  }
  if (ec) {
    if (ec != boost::asio::error::operation_aborted && ec != boost::asio::error::connection_reset)
      GORING_LOG(debug, "http", "read failed: " << ec.message());
    return;
  }
  auto req = parser_->release();
  auto path = path_of(std::string_view{req.target().data(), req.target().size()});
  bool read_only = req.method() == http::verb::get || req.method() == http::verb::head;
  if (ctx_->admin) {
    auto* stopped = ctx_->runtime->stopped_actor();
    if (path == "/health" && read_only) {
      // Liveness: the process answers and its essential actors live.
      if (stopped == nullptr)
        respond(req, http::status::ok, "OK");
      else
        respond(req, http::status::service_unavailable,
                std::string{"the "} + stopped + " actor stopped; restart this process");
    } else if (path == "/ready" && read_only) {
      if (ctx_->runtime->ready())
        respond(req, http::status::ok, "ready");
      else
        respond(req, http::status::service_unavailable,
                stopped != nullptr          ? std::string{"the "} + stopped + " actor stopped"
                : ctx_->runtime->draining() ? std::string{"draining"}
                : !ctx_->verifier->keys_ready()
                  ? std::string{"no token keys yet (JWT_JWKS_URL not fetched)"}
                  : std::string{"Redis or pub/sub unavailable"});
    } else if (path == "/metrics" && read_only) {
      respond(req, http::status::ok, metrics::global().expose(),
              std::string{metrics::content_type});
    } else if (path.rfind("/admin/", 0) == 0 && !admin_authorized(req, ctx_->config.admin_token)) {
      respond(req, http::status::unauthorized, "unauthorized: admin token required\n");
    } else if (path == "/admin/drain" && req.method() == http::verb::post) {
      ctx_->runtime->start_drain();
      respond(req, http::status::accepted, "draining\n");
    } else if (path == "/admin/log-level" && req.method() == http::verb::put) {
      auto level =
        query_parameter(std::string_view{req.target().data(), req.target().size()}, "level");
      if (level && log::set_level(*level)) {
        GORING_LOG(info, "admin", "log level set to " << *level);
        respond(req, http::status::ok, "{\"level\":\"" + *level + "\"}", "application/json");
      } else {
        respond(req, http::status::bad_request,
                "{\"error\":\"level must be debug, info, warn, error or off\"}",
                "application/json");
      }
    } else if (path.rfind("/admin/", 0) == 0) {
      // Answered by the actors; the reply comes back on this session's strand.
      auto method = std::string{req.method_string()};
      auto target = std::string{req.target()};
      ctx_->runtime->admin(method, target,
                           [self = shared_from_this(), req](unsigned status, std::string body) {
                             boost::asio::post(self->stream_.get_executor(), [=]() mutable {
                               self->respond(req, static_cast<http::status>(status),
                                             std::move(body), "application/json");
                             });
                           });
    } else {
      respond(req, http::status::not_found, "not found\n");
    }
    return;
  }
  if (beast::websocket::is_upgrade(req)) {
    if (path != "/ws") {
      respond(req, http::status::not_found, "not found\n");
      return;
    }
    if (ctx_->runtime->draining() || ctx_->runtime->stopped_actor() != nullptr) {
      goring_metrics().count_connection(ctx_->runtime->draining() ? "draining" : "broken");
      respond(req, http::status::service_unavailable, "restarting; connect to another instance\n");
      return;
    }
    // Before the first key set no token could be checked: a 401 would
    // tell the client its token is bad, when it is only early.
    if (!ctx_->verifier->keys_ready()) {
      GORING_LOG(info, "http",
                 "upgrade refused: the token keys (JWT_JWKS_URL) are not fetched yet");
      goring_metrics().count_connection("keys_not_ready");
      refuse(req.version(), http::status::service_unavailable,
             "not ready: the token keys are not fetched yet; retry shortly\n");
      return;
    }
    upgrade(std::move(req));
    return;
  }
  if (path == "/health" && read_only) {
    if (auto* stopped = ctx_->runtime->stopped_actor())
      respond(req, http::status::service_unavailable,
              std::string{"the "} + stopped + " actor stopped");
    else if (ctx_->runtime->redis_healthy())
      respond(req, http::status::ok, "OK");
    else
      respond(req, http::status::service_unavailable, "Redis unavailable");
    return;
  }
  if (path == "/ws") {
    respond(req, http::status::upgrade_required, "WebSocket upgrade required\n");
    return;
  }
  if (path == "/dev/token" && ctx_->config.dev_mode) {
    mint_dev_token(req);
    return;
  }
  // Outside development mode /dev/token is an unknown path, never a file.
  if (!ctx_->config.web_root.empty() && path != "/health" && path != "/dev/token") {
    serve_static(req, path);
    return;
  }
  respond(req, http::status::not_found, "not found\n");
}

void http_session::serve_static(const request& req, std::string_view path) {
  if (req.method() != http::verb::get && req.method() != http::verb::head) {
    auto res = std::make_shared<response>(http::status::method_not_allowed, req.version());
    res->set(http::field::allow, "GET, HEAD");
    res->set(http::field::content_type, "text/plain; charset=utf-8");
    res->body() = "method not allowed: GET or HEAD\n";
    res->prepare_payload();
    send(req, std::move(res));
    return;
  }
  auto file = static_files::load(ctx_->config.web_root, path);
  if (!file.found) {
    beast::error_code ignored;
    // Probes for ../ and friends are worth seeing; a missing favicon is not.
    if (file.refused)
      GORING_LOG(info, "http",
                 "static path refused from " << stream_.socket().remote_endpoint(ignored) << ": '"
                                             << static_files::escaped(path)
                                             << "': " << file.refusal);
    else
      GORING_LOG(debug, "http",
                 "static path not found: '" << static_files::escaped(path)
                                            << "': " << file.refusal);
    goring_metrics().static_files->with({file.refused ? "refused" : "not_found"}).inc();
    respond(req, http::status::not_found, "not found\n");
    return;
  }
  goring_metrics().static_files->with({"served"}).inc();
  auto res = std::make_shared<response>(http::status::ok, req.version());
  res->set(http::field::content_type, file.content_type);
  res->set(http::field::cache_control, "no-cache");
  res->set("X-Content-Type-Options", "nosniff");
  res->set("Referrer-Policy", "no-referrer");
  res->set("Content-Security-Policy", std::string{static_files::csp});
  res->body() = std::move(file.body);
  res->prepare_payload();
  send(req, std::move(res));
}

void http_session::mint_dev_token(const request& req) {
  beast::error_code ignored;
  auto remote = stream_.socket().remote_endpoint(ignored);
  auto json_answer = [&](http::status status, std::string body) {
    respond(req, status, std::move(body), "application/json");
  };
  if (req.method() != http::verb::post) {
    auto res = std::make_shared<response>(http::status::method_not_allowed, req.version());
    res->set(http::field::allow, "POST");
    res->set(http::field::content_type, "application/json");
    res->body() = auth::encode_error_body("use POST");
    res->prepare_payload();
    send(req, std::move(res));
    return;
  }
  // The same gates as an upgrade: other sites' pages, and floods.
  if (auto origin = refused_origin(req, ctx_->config.allowed_origins)) {
    GORING_LOG(info, "http",
               "dev token refused from " << remote << ": origin '" << *origin
                                         << "' is not in ALLOWED_ORIGINS");
    json_answer(http::status::forbidden,
                auth::encode_error_body("origin '" + *origin + "' is not allowed"));
    return;
  }
  if (auto* gate = ctx_->admission_control.get();
      gate && gate->check_ip(ticket_, steady_ns()) != admission::verdict::admitted) {
    GORING_LOG(info, "http", "dev token refused from " << remote << ": over the per-IP limits");
    refuse(req.version(), http::status::too_many_requests,
           "too many requests from your address; retry later\n");
    return;
  }
  if (auto why = auth::dev_token_unavailable(ctx_->config); !why.empty()) {
    json_answer(http::status::not_implemented, auth::encode_error_body(why));
    return;
  }
  auto parsed = auth::parse_dev_token_request(req.body());
  if (!parsed.request) {
    GORING_LOG(info, "http", "dev token refused from " << remote << ": " << parsed.error);
    json_answer(http::status::bad_request, auth::encode_error_body(parsed.error));
    return;
  }
  auto token = auth::mint_dev_token(ctx_->config, *parsed.request,
                                    std::chrono::duration_cast<std::chrono::seconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count());
  // The user, never the token.
  GORING_LOG(info, "http",
             "dev token minted for user " << parsed.request->user_id << " from " << remote);
  json_answer(http::status::ok, auth::encode_dev_token(token, parsed.request->user_id));
}

void http_session::upgrade(request req) {
  beast::error_code ignored;
  auto remote = stream_.socket().remote_endpoint(ignored);
  // No admission table (a context built without one): no limits to apply.
  auto* gate = ctx_->admission_control.get();
  switch (gate ? gate->check_ip(ticket_, steady_ns()) : admission::verdict::admitted) {
    case admission::verdict::admitted:
      break;
    case admission::verdict::ip_rate_limited:
      GORING_LOG(info, "http",
                 "upgrade refused from " << remote << ": over UPGRADE_RATE_PER_IP ("
                                         << ctx_->config.upgrade_rate_per_ip << "/s)");
      goring_metrics().count_connection("ip_rate_limited");
      refuse(req.version(), http::status::too_many_requests,
             "too many connection attempts from your address; retry later\n");
      return;
    case admission::verdict::ip_connections:
      GORING_LOG(info, "http",
                 "upgrade refused from " << remote << ": over MAX_CONNECTIONS_PER_IP ("
                                         << ctx_->config.max_connections_per_ip << ")");
      goring_metrics().count_connection("ip_connections");
      refuse(req.version(), http::status::too_many_requests,
             "too many connections from your address\n");
      return;
  }
  if (auto origin = refused_origin(req, ctx_->config.allowed_origins)) {
    GORING_LOG(info, "http",
               "upgrade refused from " << remote << ": origin '" << *origin
                                       << "' is not in ALLOWED_ORIGINS");
    goring_metrics().count_connection("forbidden_origin");
    refuse(req.version(), http::status::forbidden,
           "forbidden: origin '" + *origin + "' is not allowed\n");
    return;
  }
  auto target = std::string_view{req.target().data(), req.target().size()};
  std::vector<std::string_view> authorization;
  for (auto [it, end] = req.equal_range(http::field::authorization); it != end; ++it)
    authorization.emplace_back(it->value().data(), it->value().size());
  std::vector<std::string_view> protocols;
  for (auto [it, end] = req.equal_range(http::field::sec_websocket_protocol); it != end; ++it)
    protocols.emplace_back(it->value().data(), it->value().size());
  auto source = auth::find_token(query_parameter(target, "token"), authorization, protocols);
  check_token(std::make_shared<request>(std::move(req)), std::move(source), true);
}

void http_session::check_token(std::shared_ptr<request> req, auth::token_source source,
                               bool may_refresh) {
  beast::error_code ignored;
  auto remote = stream_.socket().remote_endpoint(ignored);
  auto* gate = ctx_->admission_control.get();
  auto check = source.refusal.empty()
                 ? ctx_->verifier->verify(source.token ? *source.token : std::string_view{})
                 : auth::token_check{std::nullopt, source.refusal, auth::refusal_reason::malformed};
  if (!check.valid && check.reason == auth::refusal_reason::unknown_kid && may_refresh
      && source.token) {
    // A kid the key set lacks may be a key the provider just published:
    // the set is fetched again (at most every 10 s) and the token checked
    // once more, so the first client with a new key gets in. The fetch is
    // bounded (outbound/jwks_fetcher), well inside HANDSHAKE_TIMEOUT.
    ctx_->verifier->refresh_keys([self = shared_from_this(), req, source]() mutable {
      boost::asio::post(self->stream_.get_executor(), [self, req, source]() mutable {
        self->check_token(std::move(req), std::move(source), false);
      });
    });
    return;
  }
  if (!check.valid) {
    if (source.refusal.empty())
      goring_metrics().count_refused_token(auth::reason_name(check.reason));
    // The reason is logged and sent; the token itself never is.
    GORING_LOG(info, "http",
               "upgrade refused from " << remote << ": " << check.refusal
                                       << (source.where.empty() ? "" : " (token from ")
                                       << source.where << (source.where.empty() ? "" : ")"));
    goring_metrics().count_connection("unauthorized");
    respond(*req, http::status::unauthorized, "unauthorized: " + check.refusal + "\n");
    return;
  }
  if (gate && !gate->take_instance_slot(ticket_)) {
    GORING_LOG(warn, "http",
               "upgrade refused from " << remote << ": MAX_CONNECTIONS ("
                                       << ctx_->config.max_connections << ") WebSockets are open");
    goring_metrics().count_connection("instance_full");
    refuse(req->version(), http::status::service_unavailable,
           "instance full; connect to another instance\n");
    return;
  }
  goring_metrics().count_connection("accepted");
  stream_.expires_never();
  auto session = std::make_shared<websocket_session>(stream_.release_socket(), ctx_,
                                                     std::move(*check.valid), std::move(ticket_));
  session->select_subprotocol(std::move(source.subprotocol));
  session->run(std::move(*req));
}

void http_session::respond(const request& req, http::status status, std::string body,
                           std::string content_type) {
  auto res = std::make_shared<response>(status, req.version());
  res->set(http::field::content_type, content_type);
  res->body() = std::move(body);
  res->prepare_payload();
  send(req, std::move(res));
}

void http_session::send(const request& req, std::shared_ptr<response> res) {
  res->set(http::field::server, "goring");
  // HEAD: the length the GET would have, and no body (a body would be read
  // as the start of the next response on a kept-alive connection).
  if (req.method() == http::verb::head && !res->body().empty()) {
    res->content_length(res->body().size());
    res->body().clear();
  }
  res->keep_alive(req.keep_alive() && res->result() != http::status::unauthorized);
  http::async_write(stream_, *res,
                    [self = shared_from_this(), res](beast::error_code ec, std::size_t n) {
                      self->on_write(res->need_eof(), ec, n);
                    });
}

void http_session::refuse(unsigned version, http::status status, std::string body) {
  auto res = std::make_shared<response>(status, version);
  res->set(http::field::server, "goring");
  res->set(http::field::content_type, "text/plain; charset=utf-8");
  if (status == http::status::too_many_requests || status == http::status::service_unavailable)
    res->set(http::field::retry_after, "1");
  res->keep_alive(false);
  res->body() = std::move(body);
  res->prepare_payload();
  stream_.expires_after(linger);
  http::async_write(
    stream_, *res, [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
      if (ec)
        return;
      self->stream_.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_send, ec);
      self->drain_then_close();
    });
}

void http_session::drain_then_close() {
  buffer_.consume(buffer_.size());
  stream_.async_read_some(buffer_.prepare(4096),
                          [self = shared_from_this()](beast::error_code ec, std::size_t) {
                            // EOF, the linger timeout or an error: the
                            // session ends and the socket closes.
                            if (!ec)
                              self->drain_then_close();
                          });
}

void http_session::on_write(bool close, beast::error_code ec, std::size_t) {
  if (ec)
    return;
  if (close) {
    stream_.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_send, ec);
    return;
  }
  do_read();
}

} // namespace goring
