#include "outbound/http_exchange.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

namespace goring::outbound {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = boost::asio::ssl;

namespace {

bool is_ip_literal(const std::string& host) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  return !ec;
}

} // namespace

http_exchange::http_exchange(boost::asio::io_context& io, std::shared_ptr<ssl::context> tls,
                             http_request request, std::function<void(http_result)> done)
  : strand_(boost::asio::make_strand(io)), tls_context_(std::move(tls)), resolver_(strand_),
    deadline_(strand_), stream_(strand_, *tls_context_), request_(std::move(request)),
    done_(std::move(done)) {
  // nop
}

void http_exchange::run() {
  boost::asio::post(strand_, [self = shared_from_this()] { self->on_start(); });
}

void http_exchange::on_start() {
  deadline_.expires_after(request_.timeout);
  deadline_.async_wait(beast::bind_front_handler(&http_exchange::on_deadline, shared_from_this()));
  resolver_.async_resolve(
    request_.where.host, std::to_string(request_.where.port),
    beast::bind_front_handler(&http_exchange::on_resolve, shared_from_this()));
}

void http_exchange::on_resolve(beast::error_code ec, tcp::resolver::results_type results) {
  if (finished_)
    return;
  if (ec)
    return fail(http_failure::resolve,
                "cannot resolve " + request_.where.host + ": " + ec.message());
  std::vector<tcp::endpoint> endpoints;
  for (auto& entry : results) {
    // Plain HTTP only to loopback, whatever the name resolved to (unless
    // the request allows it: a webhook receiver inside the cluster).
    if (!request_.where.tls() && !request_.allow_plain_http
        && !entry.endpoint().address().is_loopback())
      continue;
    endpoints.push_back(entry.endpoint());
  }
  if (endpoints.empty())
    return fail(http_failure::refused_url, request_.where.host
                                             + " resolves to no loopback address; http:// goes to "
                                               "loopback only");
  beast::get_lowest_layer(stream_).async_connect(
    endpoints, beast::bind_front_handler(&http_exchange::on_connect, shared_from_this()));
}

void http_exchange::on_connect(beast::error_code ec, const tcp::endpoint&) {
  if (finished_)
    return;
  if (ec)
    return fail(http_failure::connect,
                "cannot connect to " + request_.where.host_header() + ": " + ec.message());
  if (!request_.where.tls())
    return write();
  auto* native = stream_.native_handle();
  const auto& host = request_.where.host;
  auto* param = SSL_get0_param(native);
  bool ok = true;
  if (is_ip_literal(host)) {
    // No SNI for an address (RFC 6066); the certificate must name the IP.
    ok = X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) == 1;
  } else {
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    ok = SSL_set_tlsext_host_name(native, host.c_str()) == 1
         && X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0) == 1;
  }
  if (!ok)
    return fail(http_failure::tls, "cannot set up TLS for " + host);
  stream_.async_handshake(
    ssl::stream_base::client,
    beast::bind_front_handler(&http_exchange::on_handshake, shared_from_this()));
}

void http_exchange::on_handshake(beast::error_code ec) {
  if (finished_)
    return;
  if (ec) {
    // The verification result says more than "certificate verify failed".
    auto verify = SSL_get_verify_result(stream_.native_handle());
    std::string why = verify != X509_V_OK ? X509_verify_cert_error_string(verify) : ec.message();
    return fail(http_failure::tls, "TLS with " + request_.where.host_header() + " failed: " + why);
  }
  write();
}

void http_exchange::write() {
  wire_request_.method(http::string_to_verb(request_.method));
  wire_request_.target(request_.where.target);
  wire_request_.version(11);
  wire_request_.set(http::field::host, request_.where.host_header());
  wire_request_.set(http::field::connection, "close");
  for (auto& [name, value] : request_.headers)
    wire_request_.set(name, value);
  if (!request_.body.empty() || request_.method == "POST") {
    wire_request_.body() = std::move(request_.body);
    wire_request_.prepare_payload();
  }
  auto handler = beast::bind_front_handler(&http_exchange::on_write, shared_from_this());
  if (request_.where.tls())
    http::async_write(stream_, wire_request_, std::move(handler));
  else
    http::async_write(stream_.next_layer(), wire_request_, std::move(handler));
}

void http_exchange::on_write(beast::error_code ec, std::size_t) {
  if (finished_)
    return;
  if (ec)
    return fail(http_failure::protocol, "sending the request failed: " + ec.message());
  parser_.emplace();
  parser_->header_limit(max_response_header_bytes);
  parser_->body_limit(request_.max_body_bytes);
  // The header first: Beast 1.74's parser forgets the body limit of a
  // Content-Length that arrives together with body bytes, so the length
  // is checked here before any body is read.
  auto handler = beast::bind_front_handler(&http_exchange::on_header, shared_from_this());
  if (request_.where.tls())
    http::async_read_header(stream_, buffer_, *parser_, std::move(handler));
  else
    http::async_read_header(stream_.next_layer(), buffer_, *parser_, std::move(handler));
}

void http_exchange::on_header(beast::error_code ec, std::size_t) {
  if (finished_)
    return;
  if (!ec && parser_->content_length() && *parser_->content_length() > request_.max_body_bytes)
    ec = http::error::body_limit;
  if (ec || parser_->is_done())
    return on_read(ec, 0);
  auto handler = beast::bind_front_handler(&http_exchange::on_read, shared_from_this());
  if (request_.where.tls())
    http::async_read(stream_, buffer_, *parser_, std::move(handler));
  else
    http::async_read(stream_.next_layer(), buffer_, *parser_, std::move(handler));
}

void http_exchange::on_read(beast::error_code ec, std::size_t) {
  if (finished_)
    return;
  if (ec == ssl::error::stream_truncated && parser_->need_eof()) {
    // A body that ends with the connection, closed without TLS's
    // close_notify (common): complete when the parser says so.
    beast::error_code eof;
    parser_->put_eof(eof);
    ec = eof;
  }
  if (ec == http::error::body_limit)
    return fail(http_failure::too_large,
                "the response body is over " + std::to_string(request_.max_body_bytes) + " bytes");
  if (ec == http::error::header_limit)
    return fail(http_failure::too_large, "the response header is over "
                                           + std::to_string(max_response_header_bytes) + " bytes");
  if (ec || !parser_->is_done())
    return fail(http_failure::protocol,
                "reading the response failed: " + (ec ? ec.message() : std::string{"incomplete"}));
  auto message = parser_->release();
  http_response response;
  response.status = message.result_int();
  for (auto& field : message)
    response.headers.emplace_back(std::string{field.name_string()}, std::string{field.value()});
  response.body = std::move(message.body());
  finish(http_result{std::move(response), http_failure::none, {}});
}

void http_exchange::on_deadline(beast::error_code ec) {
  if (ec || finished_)
    return;
  fail(http_failure::timeout,
       "no complete answer within " + std::to_string(request_.timeout.count()) + " ms");
}

void http_exchange::fail(http_failure failure, std::string what) {
  finish(http_result{std::nullopt, failure, std::move(what)});
}

void http_exchange::finish(http_result result) {
  if (finished_)
    return;
  finished_ = true;
  // Whatever still runs ends now (their handlers see finished_).
  deadline_.cancel();
  resolver_.cancel();
  beast::get_lowest_layer(stream_).close();
  auto done = std::move(done_);
  done(std::move(result));
}

} // namespace goring::outbound
