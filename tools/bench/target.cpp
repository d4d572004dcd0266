#include "tools/bench/target.hpp"

#include <stdexcept>

#include <boost/asio/io_context.hpp>

namespace goring::bench {

std::string target::request_target(const std::string& token) const {
  return path + (path.find('?') == std::string::npos ? "?token=" : "&token=") + token;
}

target resolve_target(const std::string& url) {
  constexpr std::string_view scheme = "ws://";
  if (url.compare(0, scheme.size(), scheme) != 0)
    throw std::runtime_error("URL " + url + " does not start with ws:// (wss is not supported)");
  auto rest = url.substr(scheme.size());
  auto slash = rest.find('/');
  auto authority = rest.substr(0, slash);
  target t;
  t.url = url;
  t.path = slash == std::string::npos ? "/ws" : rest.substr(slash);
  std::string host = authority;
  std::string port = "80";
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string::npos)
      throw std::runtime_error("URL " + url + " has an unclosed [IPv6] host");
    host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':')
      port = authority.substr(close + 2);
  } else if (auto colon = authority.rfind(':'); colon != std::string::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty() || port.empty())
    throw std::runtime_error("URL " + url + " has no host or port");
  t.host = authority;
  boost::asio::io_context io;
  boost::asio::ip::tcp::resolver resolver{io};
  boost::system::error_code ec;
  auto results = resolver.resolve(host, port, ec);
  if (ec || results.empty())
    throw std::runtime_error("cannot resolve " + host + ":" + port + ": " + ec.message());
  t.endpoint = results.begin()->endpoint();
  for (const auto& entry : results) {
    if (entry.endpoint().address().is_v4()) {
      t.endpoint = entry.endpoint();
      break;
    }
  }
  return t;
}

} // namespace goring::bench
