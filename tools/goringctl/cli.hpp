/// goringctl's command line, split into what goringctl itself takes (where
/// to find instances, the token, the output form) and what the command takes.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace goringctl {

/// The admin listener goring binds when ADMIN_ADDR and ADMIN_PORT are unset.
inline constexpr const char* default_admin_url = "http://127.0.0.1:9090";

/// One parsed command line.
struct invocation {
  std::string admin_url;  ///< --admin; the default when neither it nor --redis is given
  std::string redis_addr; ///< --redis
  std::string token;      ///< --token, else GORING_ADMIN_TOKEN
  bool json = false;      ///< --json
  bool help = false;      ///< --help or -h
  std::string command;    ///< "" when none was given
  std::vector<std::string> args;
  /// Command options by name without the dashes ("kind", "secret", ...).
  std::map<std::string, std::string> options;
  /// --sentinels: Redis found through these sentinels ("host:port,...").
  std::string sentinels;
  /// --sentinel-master; "" means $REDIS_SENTINEL_MASTER.
  std::string sentinel_master;
  /// --cluster: a Redis Cluster's seed nodes ("host:port,...").
  std::string cluster;

  bool use_redis() const {
    return !redis_addr.empty() || !sentinels.empty() || !cluster.empty();
  }
  /// The option's value, "" when it was not given.
  std::string option(const std::string& name) const;
};

/// Splits `argv`. Options may stand before or after the command, as
/// `--name value` or `--name=value`; `--json` and `--help` take no value;
/// after `--` everything is an argument. `env_token` is GORING_ADMIN_TOKEN
/// (nullptr when unset). Throws a usage error on a missing value, an option
/// given twice, or more than one of --admin, --redis, --sentinels and
/// --cluster.
invocation parse_command_line(int argc, const char* const* argv, const char* env_token);

} // namespace goringctl
