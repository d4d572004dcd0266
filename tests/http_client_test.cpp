/// goring's outbound HTTP(S) client against a real server in this process
/// (tests/support/http_test_server), plain and TLS with a CA made at test
/// time: answers of every kind, and servers that stall, flood, hang up, are
/// gone or present the wrong certificate. Every request ends by itself.
#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "outbound/http_client.hpp"
#include "tests/support/http_test_server.hpp"
#include "tests/support/process.hpp"
#include "tests/support/test_ca.hpp"

namespace {

using namespace goring::outbound;
using goring::test::http_test_server;
using goring::test::test_ca;

/// An io_context on its own thread, as goring runs its I/O.
struct io_thread {
  boost::asio::io_context io;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{io.get_executor()};
  std::thread thread{[this] { io.run(); }};
  ~io_thread() {
    work.reset();
    io.stop();
    thread.join();
  }
};

/// A client on `loop`, the test stops when there is none.
std::shared_ptr<http_client> client_on(io_thread& loop, http_client_options options = {}) {
  auto setup = make_http_client(loop.io, std::move(options));
  CAPTURE(setup.error);
  REQUIRE(setup.client);
  return setup.client;
}

/// Sends and waits for the answer; the test stops when none comes within
/// 20 s (the client's own timeouts are shorter, so one always comes).
http_result send_and_wait(http_client& client, http_request request) {
  auto result = std::make_shared<std::promise<http_result>>();
  auto answer = result->get_future();
  client.send(std::move(request), [result](http_result r) { result->set_value(std::move(r)); });
  REQUIRE(answer.wait_for(std::chrono::seconds(20)) == std::future_status::ready);
  return answer.get();
}

http_request get(const std::string& text) {
  auto parsed = parse_url(text);
  REQUIRE(parsed.value.has_value());
  http_request request;
  request.where = *parsed.value;
  request.timeout = std::chrono::seconds(3);
  return request;
}

} // namespace

TEST_CASE("GET returns status, headers and body, the server sees Host, User-Agent and ours") {
  io_thread loop;
  auto client = client_on(loop, {{}, 8, "goring-test/1"});
  http_test_server server;
  server.answer(200, R"({"keys":[]})",
                {{"Content-Type", "application/json"}, {"Cache-Control", "max-age=60"}});
  auto request = get(server.url("/jwks?x=1"));
  request.headers = {{"Accept", "application/json"}};
  auto result = send_and_wait(*client, request);
  CAPTURE(result.error);
  REQUIRE(result.response.has_value());
  CHECK(result.response->status == 200);
  CHECK(result.response->body == R"({"keys":[]})");
  CHECK(result.response->header("cache-control") == std::string{"max-age=60"});
  CHECK_FALSE(result.response->header("X-Nothing").has_value());
  auto seen = server.last_request();
  CHECK(seen.method == "GET");
  CHECK(seen.target == "/jwks?x=1");
  CHECK(seen.header("Host") == "127.0.0.1:" + std::to_string(server.port()));
  CHECK(seen.header("User-Agent") == "goring-test/1");
  CHECK(seen.header("Accept") == "application/json");
  CHECK(client->in_flight() == 0);
}

TEST_CASE("POST sends its body with its length, any status comes back as it is") {
  io_thread loop;
  auto client = client_on(loop);
  http_test_server server;
  server.answer(503, "try later", {{"Retry-After", "5"}});
  auto request = get(server.url("/events"));
  request.method = "POST";
  request.headers = {{"Content-Type", "application/json"}};
  request.body = R"({"type":"call.started"})";
  auto result = send_and_wait(*client, request);
  REQUIRE(result.response.has_value());
  CHECK(result.response->status == 503);
  CHECK(result.response->body == "try later");
  auto seen = server.last_request();
  CHECK(seen.method == "POST");
  CHECK(seen.body == R"({"type":"call.started"})");
  CHECK(seen.header("Content-Length") == "23");
}

TEST_CASE("a server that stalls its body fails the request at its timeout") {
  io_thread loop;
  auto client = client_on(loop);
  http_test_server server;
  server.misbehave(http_test_server::behaviour::stall);
  auto request = get(server.url());
  request.timeout = std::chrono::milliseconds(700);
  auto result = send_and_wait(*client, request);
  CHECK_FALSE(result.response.has_value());
  CHECK(result.failure == http_failure::timeout);
  CHECK(std::string{failure_name(result.failure)} == "timeout");
  CHECK(server.requests() == 1);
}

TEST_CASE("a body over the limit fails the request, streamed or announced") {
  io_thread loop;
  auto client = client_on(loop);
  http_test_server server;
  server.misbehave(http_test_server::behaviour::flood);
  auto request = get(server.url());
  request.max_body_bytes = 256 * 1024;
  auto result = send_and_wait(*client, request);
  CAPTURE(result.error);
  CHECK(result.failure == http_failure::too_large);

  server.answer(200, std::string(300 * 1024, 'x'));
  result = send_and_wait(*client, request);
  CAPTURE(result.error);
  CAPTURE((result.response ? result.response->body.size() : 0));
  CAPTURE((result.response ? result.response->status : 0));
  CHECK(result.failure == http_failure::too_large);
  // Just under the limit is fine.
  server.answer(200, std::string(256 * 1024, 'x'));
  result = send_and_wait(*client, request);
  REQUIRE(result.response.has_value());
  CHECK(result.response->body.size() == 256 * 1024);
}

TEST_CASE("a server that hangs up, or is gone, fails the request with a reason") {
  io_thread loop;
  auto client = client_on(loop);
  http_test_server server;
  server.misbehave(http_test_server::behaviour::hang_up);
  auto result = send_and_wait(*client, get(server.url()));
  CHECK(result.failure == http_failure::protocol);
  CHECK_FALSE(result.error.empty());
  server.close();
  result = send_and_wait(*client, get(server.url()));
  CHECK(result.failure == http_failure::connect);
  CHECK(result.error.find("127.0.0.1") != std::string::npos);
  server.listen();
  server.answer(200, "back");
  result = send_and_wait(*client, get(server.url()));
  REQUIRE(result.response.has_value());
  CHECK(result.response->body == "back");
}

TEST_CASE("plain http to an address that is not loopback is refused before any connection") {
  io_thread loop;
  auto client = client_on(loop);
  // 192.0.2.0/24 is TEST-NET-1: nothing is sent anyway.
  auto result = send_and_wait(*client, get("http://192.0.2.10/jwks"));
  CHECK(result.failure == http_failure::refused_url);
  CHECK(result.error.find("https://") != std::string::npos);
}

TEST_CASE("more requests than max_in_flight at once: the extra one is busy") {
  io_thread loop;
  auto client = client_on(loop, {{}, 1, "goring"});
  http_test_server server;
  server.misbehave(http_test_server::behaviour::stall);
  auto first = std::make_shared<std::promise<http_result>>();
  auto first_answer = first->get_future();
  auto request = get(server.url());
  request.timeout = std::chrono::seconds(2);
  client->send(request, [first](http_result r) { first->set_value(std::move(r)); });
  CHECK(client->in_flight() == 1);
  auto second = send_and_wait(*client, request);
  CHECK(second.failure == http_failure::busy);
  REQUIRE(first_answer.wait_for(std::chrono::seconds(20)) == std::future_status::ready);
  CHECK(first_answer.get().failure == http_failure::timeout);
  CHECK(
    goring::test::wait_until([&] { return client->in_flight() == 0; }, std::chrono::seconds(5)));
}

TEST_CASE("https verifies the server's certificate: its CA, its name, or no answer") {
  test_ca ca;
  auto by_ip = ca.issue("by-ip", {"IP:127.0.0.1", "DNS:localhost"});
  auto other_name = ca.issue("other-name", {"DNS:idp.example.com"});
  io_thread loop;
  auto trusting = client_on(loop, {ca.ca_file(), 8, "goring"});
  {
    http_test_server server{by_ip.cert_file, by_ip.key_file};
    server.answer(200, "over tls");
    auto result = send_and_wait(*trusting, get(server.url()));
    CAPTURE(result.error);
    REQUIRE(result.response.has_value());
    CHECK(result.response->body == "over tls");
    // By name: SNI and the name check.
    result =
      send_and_wait(*trusting, get("https://localhost:" + std::to_string(server.port()) + "/jwks"));
    CAPTURE(result.error);
    REQUIRE(result.response.has_value());
    CHECK(result.response->body == "over tls");

    // The system CAs do not know the test CA.
    auto system = client_on(loop);
    result = send_and_wait(*system, get(server.url()));
    CHECK(result.failure == http_failure::tls);
    CAPTURE(result.error);
    CHECK(result.error.find("issuer certificate") != std::string::npos);
    // Plain HTTP to a TLS port gets no HTTP answer.
    result = send_and_wait(*trusting, get("http://127.0.0.1:" + std::to_string(server.port())));
    CHECK_FALSE(result.response.has_value());
  }
  {
    // A good chain for another name.
    http_test_server server{other_name.cert_file, other_name.key_file};
    auto result = send_and_wait(*trusting, get(server.url()));
    CHECK(result.failure == http_failure::tls);
    CAPTURE(result.error);
    CHECK(result.error.find("mismatch") != std::string::npos);
    result =
      send_and_wait(*trusting, get("https://localhost:" + std::to_string(server.port()) + "/jwks"));
    CHECK(result.failure == http_failure::tls);
    CHECK(server.requests() == 0);
  }
}

TEST_CASE("a CA file that does not load gives no client, with the reason") {
  io_thread loop;
  auto setup = make_http_client(loop.io, {"/nonexistent/ca.pem", 8, "goring"});
  CHECK_FALSE(setup.client);
  CHECK(setup.error.find("/nonexistent/ca.pem") != std::string::npos);
}
