#include "redis/command_runner.hpp"

#include <cctype>

#include "config/log.hpp"
#include "redis/cluster_calls.hpp"
#include "metrics/instance_metrics.hpp"

namespace goring::redis {

namespace {
constexpr const char* component = "redis_bridge";
} // namespace

command_runner::command_runner(topology& redis, post_back post)
  : redis_(redis), post_(std::move(post)) {
  // nop
}

void command_runner::send(std::vector<std::string> argv, continuation k, std::string label) {
  auto id = next_id_++;
  if (label.empty()) {
    label = argv.empty() ? "none" : argv[0];
    for (auto& c : label)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  auto timer = timers_.find(label);
  if (timer == timers_.end()) {
    auto& m = goring_metrics();
    timer = timers_
              .emplace(label, std::make_pair(&m.redis_command->with({label}),
                                             &m.redis_commands_failed->with({label})))
              .first;
  }
  waiting_.emplace(
    id, waiting_command{std::move(k), timer->second.first, timer->second.second, steady_ns()});
  redis_.command(std::move(argv), [post = post_, id](reply r) { post(id, std::move(r)); });
}

void command_runner::run(script_call call, continuation k) {
  if (redis_.one_slot_per_script() && cluster_calls::runs_in_steps(call.id)) {
    cluster_calls::run(*this, std::move(call), std::move(k));
    return;
  }
  run_script(std::move(call), std::move(k));
}

void command_runner::run_script(script_call call, continuation k) {
  auto& sha = shas_[static_cast<std::size_t>(call.id)];
  auto argv = eval_argv(call, sha);
  auto label = std::string{script_name(call.id)};
  if (sha.empty()) {
    send(std::move(argv), std::move(k), label);
    return;
  }
  send(
    std::move(argv),
    [this, call = std::move(call), k = std::move(k)](reply r) {
      if (r.is_error() && r.str.rfind("NOSCRIPT", 0) == 0) {
        GORING_LOG(info, component,
                   "script " << script_name(call.id) << " missing in Redis, sending its text");
        send(eval_argv(call, ""), k, std::string{script_name(call.id)});
        return;
      }
      k(std::move(r));
    },
    label);
}

void command_runner::load_scripts() {
  for (std::size_t i = 0; i < script_count; ++i) {
    auto id = static_cast<script>(i);
    send({"SCRIPT", "LOAD", script_text(id)}, [this, i](reply r) {
      if (r.type == reply::kind::string)
        shas_[i] = r.str;
      else
        GORING_LOG(warn, component, "SCRIPT LOAD failed: " << r.str);
    });
  }
}

void command_runner::complete(uint64_t id, reply r) {
  auto it = waiting_.find(id);
  if (it == waiting_.end())
    return;
  auto w = std::move(it->second);
  waiting_.erase(it);
  w.timer->observe(seconds_since(w.started_ns));
  if (r.is_error()) {
    w.errors->inc();
    // A master demoted under us answers writes with READONLY.
    if (r.str.rfind("READONLY", 0) == 0)
      redis_.suspect("a READONLY reply: the server is a replica now");
  }
  w.k(std::move(r));
}

std::size_t command_runner::fail_late() {
  auto oldest =
    steady_ns() - std::chrono::duration_cast<std::chrono::nanoseconds>(command_timeout).count();
  std::vector<uint64_t> late;
  for (auto& [id, w] : waiting_)
    if (w.started_ns < oldest)
      late.push_back(id);
  if (late.empty())
    return 0;
  GORING_LOG(warn, component,
             late.size() << " Redis commands got no answer within " << command_timeout.count()
                         << " s; failing them");
  redis_.suspect(std::to_string(late.size()) + " commands unanswered");
  for (auto id : late) {
    auto it = waiting_.find(id);
    if (it == waiting_.end())
      continue; // answered by a continuation of an earlier one
    auto w = std::move(it->second);
    waiting_.erase(it);
    w.errors->inc();
    w.k(reply::make_error("Redis did not answer in time"));
  }
  return late.size();
}

} // namespace goring::redis
