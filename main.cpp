// goring: starts the actors, the public listener, and drains on SIGINT/SIGTERM.
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>

#include "actors/system.hpp"
#include "auth/key_store.hpp"
#include "config/config.hpp"
#include "config/log.hpp"
#include "net/listener.hpp"
#include "outbound/http_client.hpp"
#include "outbound/jwks_fetcher.hpp"
#include "redis/keys.hpp"
#include "webhooks/delivery_worker.hpp"

extern char** environ;

namespace {

/// Where Redis is, for the start line.
std::string redis_summary(const goring::settings& config) {
  if (config.redis_sentinels.empty())
    return "at " + config.redis_host + ":" + std::to_string(config.redis_port);
  std::string out = "master " + config.redis_sentinel_master + " through sentinels ";
  for (std::size_t i = 0; i < config.redis_sentinels.size(); ++i)
    out += (i > 0 ? "," : "") + config.redis_sentinels[i].to_string();
  return out;
}

} // namespace

int main(int argc, char** argv) {
  using namespace goring;
  auto parsed = parse_settings(argc, argv, environ);
  if (parsed.show_help) {
    std::cout << help_text();
    return 0;
  }
  if (!parsed.error.empty()) {
    std::cerr << "goring: " << parsed.error << "\n";
    return 2;
  }
  auto& config = parsed.values;
  // Every thread started from here on inherits the blocked signals, so only
  // the sigwait below receives SIGINT and SIGTERM.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  log::set_level(config.log_level);
  log::set_format(config.log_format);
  log::set_server_id(config.server_id);
  for (auto& warning : parsed.warnings)
    GORING_LOG(warn, "main", warning);
  auto admin_on_loopback = config.admin_addr == "127.0.0.1" || config.admin_addr == "::1"
                           || config.admin_addr == "localhost";
  if (config.admin_port != 0 && !admin_on_loopback && config.admin_token.empty()) {
    GORING_LOG(error, "main",
               "refusing to bind the admin listener to " << config.admin_addr
                                                         << " without ADMIN_TOKEN");
    return 2;
  }
  auto verifier = auth::make_verifier(config);
  if (!verifier.verifier) {
    GORING_LOG(error, "main", "refusing to start: " << verifier.error);
    std::cerr << "goring: " << verifier.error << "\n";
    return 2;
  }
  if (!verifier.warning.empty())
    GORING_LOG(warn, "main", verifier.warning);
  std::optional<outbound::url> jwks_url;
  if (verifier.jwks) {
    auto parsed_url = outbound::parse_url(config.jwt_jwks_url);
    auto problem = parsed_url.value
                     ? outbound::outbound_url_problem(*parsed_url.value, "JWT_JWKS_URL")
                     : "JWT_JWKS_URL is no http(s) URL: " + parsed_url.error;
    if (!problem.empty()) {
      GORING_LOG(error, "main", "refusing to start: " << problem);
      std::cerr << "goring: " << problem << "\n";
      return 2;
    }
    jwks_url = parsed_url.value;
  }
  std::optional<outbound::url> webhook_url;
  if (!config.webhook_url.empty()) {
    // http:// is allowed anywhere: the bodies are signed, and the receiver
    // often sits beside goring in a private network.
    auto parsed_url = outbound::parse_url(config.webhook_url);
    if (!parsed_url.value) {
      auto problem = "WEBHOOK_URL is no http(s) URL: " + parsed_url.error;
      GORING_LOG(error, "main", "refusing to start: " << problem);
      std::cerr << "goring: " << problem << "\n";
      return 2;
    }
    webhook_url = parsed_url.value;
  }
  if (config.allowed_origins.empty())
    GORING_LOG(warn, "main",
               "ALLOWED_ORIGINS is not set: web pages of any site may open WebSockets here. "
               "Set ALLOWED_ORIGINS to the origins of your web app.");

  boost::asio::io_context io{static_cast<int>(config.io_threads)};
  // Keeps the io_context running while no socket is open.
  auto work = boost::asio::make_work_guard(io);
  std::vector<std::thread> io_threads;
  for (unsigned i = 0; i < config.io_threads; ++i)
    io_threads.emplace_back([&io] { io.run(); });
  auto join_io = [&] {
    work.reset();
    io.stop();
    for (auto& t : io_threads)
      t.join();
  };

  // The identity provider's keys, fetched on the I/O threads; until the
  // first set arrives upgrades get 503 and /ready says no.
  std::unique_ptr<outbound::jwks_fetcher> jwks;
  if (jwks_url) {
    auto client = outbound::make_http_client(
      io, {config.outbound_ca_file, 16, std::string{"goring/"} + GORING_VERSION});
    if (!client.client) {
      GORING_LOG(error, "main", "refusing to start: " << client.error);
      std::cerr << "goring: " << client.error << "\n";
      join_io();
      return 2;
    }
    auto keys = verifier.jwks;
    jwks = std::make_unique<outbound::jwks_fetcher>(
      io, client.client, *jwks_url, config.jwt_jwks_refresh, [keys](std::string_view body) {
        auto update = keys->take_jwks(body);
        return outbound::jwks_verdict{update.error, update.keys, update.change};
      });
    keys->set_refresher([fetcher = jwks.get()](std::function<void()> done) {
      fetcher->refresh_soon(std::move(done));
    });
    jwks->start();
  }

  // Webhooks' own client: their requests never take the JWKS fetcher's
  // places, nor the other way round.
  std::shared_ptr<outbound::http_client> webhook_client;
  if (webhook_url) {
    auto client = outbound::make_http_client(io, {config.outbound_ca_file,
                                                  webhooks::worker_options{}.max_in_flight + 4,
                                                  std::string{"goring/"} + GORING_VERSION});
    if (!client.client) {
      GORING_LOG(error, "main", "refusing to start: " << client.error);
      std::cerr << "goring: " << client.error << "\n";
      join_io();
      return 2;
    }
    webhook_client = client.client;
  }

  webhooks::register_metrics();

  int exit_code = 0;
  {
    actor_runtime runtime{config, io};
    runtime.set_verifier(verifier.verifier);
    // Declared after the runtime, so it stops before the runtime goes: it
    // sends its Redis commands through the runtime's bridge.
    std::unique_ptr<webhooks::delivery_worker> webhook_worker;
    if (webhook_url) {
      webhooks::worker_options options;
      options.target = *webhook_url;
      options.secret = config.webhook_secret;
      options.max_age = config.webhook_max_age;
      options.claim_idle = config.webhook_claim_timeout;
      // Look for dead instances' events a few times per claim timeout.
      options.claim_interval = std::min(options.claim_interval, config.webhook_claim_timeout / 3);
      options.consumer = runtime.instance_id();
      // On a cluster, one stream per session partition (redis/keys.hpp).
      if (config.redis_cluster.empty())
        options.streams = {std::string{redis::keys::webhook_stream}};
      else
        for (unsigned p = 0; p < redis::keys::cluster_partitions; ++p)
          options.streams.push_back(redis::keys::partition_webhook_stream(p));
      options.group = std::string{redis::keys::webhook_group};
      webhook_worker = std::make_unique<webhooks::delivery_worker>(
        io, webhook_client,
        [&runtime](std::vector<std::string> argv, std::function<void(redis::reply)> done) {
          runtime.redis_command(std::move(argv), std::move(done));
        },
        std::move(options));
      webhook_worker->start();
    }
    auto gate = std::make_shared<admission>(
      admission::limits{static_cast<double>(config.upgrade_rate_per_ip),
                        static_cast<double>(config.upgrade_burst_per_ip),
                        config.max_connections_per_ip, config.max_connections});
    auto ctx = std::make_shared<server_context>(
      server_context{config, verifier.verifier, &runtime, false, gate});
    auto admin_ctx = std::make_shared<server_context>(*ctx);
    admin_ctx->admin = true;
    admin_ctx->admission_control = nullptr;
    // Binds one listener; logs and returns nothing on failure.
    auto open_listener = [&](const std::string& addr, uint16_t port,
                             std::shared_ptr<const server_context> routes) {
      std::shared_ptr<listener> l;
      try {
        boost::asio::ip::tcp::endpoint where{boost::asio::ip::make_address(addr), port};
        l = std::make_shared<listener>(io, where, std::move(routes));
      } catch (const std::exception& e) {
        GORING_LOG(error, "main", "cannot listen on " << addr << ":" << port << ": " << e.what());
      }
      return l;
    };
    auto public_listener = open_listener(config.bind_addr, config.port, ctx);
    std::shared_ptr<listener> admin_listener;
    if (config.admin_port != 0) {
      admin_listener = open_listener(config.admin_addr, config.admin_port, admin_ctx);
      if (admin_listener)
        runtime.set_admin_addr(config.admin_addr + ":" + std::to_string(admin_listener->port()));
    }
    if (!public_listener || (config.admin_port != 0 && !admin_listener)) {
      exit_code = 1;
    } else {
      public_listener->run();
      if (admin_listener)
        admin_listener->run();
      GORING_LOG(info, "main",
                 "goring " << GORING_VERSION << " (" << config.server_id << ") listening on "
                           << config.bind_addr << ":" << public_listener->port()
                           << (admin_listener ? ", admin on " + config.admin_addr + ":"
                                                  + std::to_string(admin_listener->port())
                                              : std::string{})
                           << ", Redis " << redis_summary(config));
      int sig = 0;
      sigwait(&signals, &sig);
      GORING_LOG(info, "main", "signal " << sig << ": draining");
      auto started = std::chrono::steady_clock::now();
      public_listener->stop();
      runtime.drain(config.shutdown_grace);
      // Give the close frames (1012) the rest of the grace to go out.
      while (runtime.live_sessions() > 0
             && std::chrono::steady_clock::now() - started < config.shutdown_grace)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (admin_listener)
        admin_listener->stop();
    }
    if (webhook_worker)
      webhook_worker->stop();
    if (jwks) {
      verifier.jwks->set_refresher({});
      jwks->stop();
    }
    // I/O threads end before the actor system does: a thread that spawned
    // actors holds a reference to CAF's logger until it exits, and the
    // actor system's destructor waits for that reference.
    join_io();
  }
  GORING_LOG(info, "main", "stopped");
  return exit_code;
}
