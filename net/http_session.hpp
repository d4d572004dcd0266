/// One HTTP connection on the public port: serves /health, upgrades
/// /ws?token=JWT to a WebSocket (401 without a valid token; 403, 429, 503
/// when an origin or limit refuses it), mints development tokens on
/// POST /dev/token (development mode only) and serves the files under
/// WEB_ROOT (when set). The admin listener's routes too.
#pragma once

#include <memory>
#include <optional>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "admission/admission.hpp"
#include "auth/token_source.hpp"
#include "net/connection_stream.hpp"
#include "net/server_context.hpp"

namespace goring {

class http_session : public std::enable_shared_from_this<http_session> {
public:
  /// `ticket` counts the connection for its IP (empty on the admin port).
  http_session(connection_socket socket, std::shared_ptr<const server_context> ctx,
               admission::ticket ticket = {});

  void run();

private:
  using request = boost::beast::http::request<boost::beast::http::string_body>;
  using response = boost::beast::http::response<boost::beast::http::string_body>;

  void do_read();
  void on_read(boost::beast::error_code ec, std::size_t bytes);
  void upgrade(request req);
  /// Checks the upgrade's token and opens the WebSocket, or answers 401.
  /// With `may_refresh`, a token of an unknown kid waits for the key set to
  /// be fetched again and is checked once more.
  void check_token(std::shared_ptr<request> req, auth::token_source source, bool may_refresh);
  void respond(const request& req, boost::beast::http::status status, std::string body,
               std::string content_type = "text/plain; charset=utf-8");
  /// Writes `res` (Server and keep-alive set here; no body for HEAD) and
  /// reads the next request.
  void send(const request& req, std::shared_ptr<response> res);
  /// GET/HEAD of a file under WEB_ROOT; 405 for other methods.
  void serve_static(const request& req, std::string_view path);
  /// POST /dev/token: a development token for the user the body names.
  void mint_dev_token(const request& req);
  void on_write(bool close, boost::beast::error_code ec, std::size_t bytes);
  /// Answers `status` and closes, reading (and dropping) what the client
  /// still sends for a moment, so it gets the answer rather than a reset.
  void refuse(unsigned version, boost::beast::http::status status, std::string body);
  void drain_then_close();

  connection_stream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  std::shared_ptr<const server_context> ctx_;
  admission::ticket ticket_;
};

/// The value of `name` in the target's query string, percent-decoded.
std::optional<std::string> query_parameter(std::string_view target, std::string_view name);

} // namespace goring
