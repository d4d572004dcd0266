// make_topology: the settings pick the topology; nothing else in goring
// knows which one it talks to.
#include "redis/topology.hpp"

#include "config/config.hpp"
#include "redis/cluster_topology.hpp"
#include "redis/sentinel_topology.hpp"
#include "redis/single_topology.hpp"

namespace goring::redis {

std::unique_ptr<topology> make_topology(boost::asio::io_context& io, const settings& config,
                                        topology_events events) {
  auto named = [&](const char* role) {
    endpoint where;
    where.host = config.redis_host;
    where.port = config.redis_port;
    where.username = config.redis_username;
    where.password = config.redis_password;
    where.client_name = "goring:" + config.server_id + ":" + role;
    return where;
  };
  if (!config.redis_cluster.empty()) {
    cluster_topology::options opts;
    for (auto& s : config.redis_cluster) {
      endpoint seed;
      seed.host = s.host;
      seed.port = s.port;
      opts.seeds.push_back(std::move(seed));
    }
    opts.commands = named("commands");
    opts.subscriber = named("subscriber");
    opts.control = named("cluster");
    return std::make_unique<cluster_topology>(io, std::move(opts), std::move(events));
  }
  if (config.redis_sentinels.empty())
    return std::make_unique<single_topology>(io, named("commands"), named("subscriber"),
                                             std::move(events));
  sentinel_topology::options opts;
  opts.master_name = config.redis_sentinel_master;
  for (auto& s : config.redis_sentinels) {
    endpoint where;
    where.host = s.host;
    where.port = s.port;
    where.username = config.redis_sentinel_username;
    where.password = config.redis_sentinel_password;
    where.client_name = "goring:" + config.server_id + ":sentinel";
    opts.sentinels.push_back(std::move(where));
  }
  opts.commands = named("commands");
  opts.subscriber = named("subscriber");
  return std::make_unique<sentinel_topology>(io, std::move(opts), std::move(events));
}

} // namespace goring::redis
