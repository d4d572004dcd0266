#include "outbound/http_client.hpp"

#include <atomic>
#include <cctype>

#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <openssl/ssl.h>

#include "outbound/http_exchange.hpp"

namespace goring::outbound {

namespace ssl = boost::asio::ssl;

struct http_client::impl {
  boost::asio::io_context& io;
  http_client_options options;
  std::shared_ptr<ssl::context> tls;
  std::atomic<std::size_t> in_flight{0};

  impl(boost::asio::io_context& io, http_client_options options)
    : io(io), options(std::move(options)) {
    // nop
  }
};

const char* failure_name(http_failure failure) {
  switch (failure) {
    case http_failure::none:
      return "none";
    case http_failure::refused_url:
      return "refused_url";
    case http_failure::busy:
      return "busy";
    case http_failure::resolve:
      return "resolve";
    case http_failure::connect:
      return "connect";
    case http_failure::tls:
      return "tls";
    case http_failure::timeout:
      return "timeout";
    case http_failure::too_large:
      return "too_large";
    case http_failure::protocol:
      return "protocol";
  }
  return "none";
}

std::optional<std::string> http_response::header(std::string_view name) const {
  for (auto& [key, value] : headers) {
    if (key.size() == name.size()
        && std::equal(key.begin(), key.end(), name.begin(), [](char a, char b) {
             return std::tolower(static_cast<unsigned char>(a))
                    == std::tolower(static_cast<unsigned char>(b));
           }))
      return value;
  }
  return std::nullopt;
}

http_client_setup make_http_client(boost::asio::io_context& io, http_client_options options) {
  auto state = std::make_shared<http_client::impl>(io, std::move(options));
  try {
    state->tls = std::make_shared<ssl::context>(ssl::context::tls_client);
    // TLS 1.2 at least; the server's certificate must chain to a trusted CA.
    SSL_CTX_set_min_proto_version(state->tls->native_handle(), TLS1_2_VERSION);
    state->tls->set_verify_mode(ssl::verify_peer);
    if (state->options.ca_file.empty())
      state->tls->set_default_verify_paths();
    else
      state->tls->load_verify_file(state->options.ca_file);
  } catch (const std::exception& e) {
    return {nullptr,
            "cannot load the CA certificates"
              + (state->options.ca_file.empty() ? std::string{} : " of " + state->options.ca_file)
              + ": " + e.what()};
  }
  return {std::shared_ptr<http_client>{new http_client{std::move(state)}}, {}};
}

http_client::http_client(std::shared_ptr<impl> state) : impl_(std::move(state)) {
  // nop
}

http_client::~http_client() = default;

std::size_t http_client::in_flight() const {
  return impl_->in_flight.load();
}

void http_client::send(http_request request, std::function<void(http_result)> done) {
  auto& state = *impl_;
  auto refuse = [&](http_failure failure, std::string why) {
    boost::asio::post(state.io, [done = std::move(done), failure, why = std::move(why)] {
      done(http_result{std::nullopt, failure, why});
    });
  };
  if (auto problem = outbound_url_problem(request.where, "the URL");
      !problem.empty() && !request.allow_plain_http)
    return refuse(http_failure::refused_url, problem);
  if (request.method != "GET" && request.method != "POST")
    return refuse(http_failure::protocol, "method " + request.method + " is not GET or POST");
  if (state.in_flight.fetch_add(1) >= state.options.max_in_flight) {
    --state.in_flight;
    return refuse(http_failure::busy,
                  std::to_string(state.options.max_in_flight) + " requests are already running");
  }
  request.headers.insert(request.headers.begin(), {"User-Agent", state.options.user_agent});
  // The counter outlives the client: an exchange may end after it.
  auto counted = [state = impl_, done = std::move(done)](http_result result) {
    --state->in_flight;
    done(std::move(result));
  };
  std::make_shared<http_exchange>(state.io, state.tls, std::move(request), std::move(counted))
    ->run();
}

} // namespace goring::outbound
