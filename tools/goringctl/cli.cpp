#include "tools/goringctl/cli.hpp"

#include "tools/goringctl/error.hpp"

namespace goringctl {

std::string invocation::option(const std::string& name) const {
  auto it = options.find(name);
  return it == options.end() ? std::string{} : it->second;
}

invocation parse_command_line(int argc, const char* const* argv, const char* env_token) {
  invocation in;
  bool options_done = false;
  bool admin_given = false;
  bool token_given = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (options_done || arg.size() < 2 || arg[0] != '-') {
      if (in.command.empty())
        in.command = arg;
      else
        in.args.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      in.help = true;
      continue;
    }
    if (arg == "--json") {
      in.json = true;
      continue;
    }
    if (arg.compare(0, 2, "--") != 0)
      throw usage_error("unknown option '" + arg + "' (see goringctl --help)");
    auto name = arg.substr(2);
    std::string value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.erase(eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      throw usage_error("option --" + name + " needs a value");
    }
    if (name == "admin") {
      if (admin_given)
        throw usage_error("option --admin given twice");
      admin_given = true;
      in.admin_url = value;
    } else if (name == "redis") {
      if (!in.redis_addr.empty())
        throw usage_error("option --redis given twice");
      if (value.empty())
        throw usage_error("option --redis needs an address (HOST:PORT)");
      in.redis_addr = value;
    } else if (name == "sentinels") {
      if (!in.sentinels.empty())
        throw usage_error("option --sentinels given twice");
      if (value.empty())
        throw usage_error("option --sentinels needs a list (HOST:PORT,HOST:PORT,...)");
      in.sentinels = value;
    } else if (name == "cluster") {
      if (!in.cluster.empty())
        throw usage_error("option --cluster given twice");
      if (value.empty())
        throw usage_error("option --cluster needs a list of seed nodes (HOST:PORT,HOST:PORT,...)");
      in.cluster = value;
    } else if (name == "sentinel-master") {
      if (!in.sentinel_master.empty())
        throw usage_error("option --sentinel-master given twice");
      if (value.empty())
        throw usage_error("option --sentinel-master needs the master's name");
      in.sentinel_master = value;
    } else if (name == "token") {
      if (token_given)
        throw usage_error("option --token given twice");
      token_given = true;
      in.token = value;
    } else if (!in.options.emplace(name, value).second) {
      throw usage_error("option --" + name + " given twice");
    }
  }
  if (admin_given + !in.redis_addr.empty() + !in.sentinels.empty() + !in.cluster.empty() > 1)
    throw usage_error("use one of --admin (one instance), --redis, --sentinels or --cluster "
                      "(every instance)");
  if (!in.sentinel_master.empty() && in.sentinels.empty())
    throw usage_error("--sentinel-master goes with --sentinels");
  if (admin_given && in.admin_url.empty())
    throw usage_error("option --admin needs a URL");
  if (!admin_given && !in.use_redis())
    in.admin_url = default_admin_url;
  if (!token_given && env_token != nullptr)
    in.token = env_token;
  return in;
}

} // namespace goringctl
