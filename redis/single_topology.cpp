#include "redis/single_topology.hpp"

#include "metrics/instance_metrics.hpp"

namespace goring::redis {

namespace {

async_connection::callbacks callbacks_for(link_role role, const topology_events& events,
                                          const std::string& address) {
  async_connection::callbacks cbs;
  cbs.on_connected = [on_up = events.on_up, role, address] {
    if (role == link_role::commands)
      goring_metrics().redis_master_known(address);
    if (on_up)
      on_up(role, false);
  };
  cbs.on_disconnected = [on_down = events.on_down, role](const std::string& why) {
    if (role == link_role::commands)
      goring_metrics().redis_master_lost();
    if (on_down)
      on_down(role, why);
  };
  if (role == link_role::subscriber)
    cbs.on_message = events.on_message;
  return cbs;
}

} // namespace

single_topology::single_topology(boost::asio::io_context& io, endpoint commands,
                                 endpoint subscriber, topology_events events)
  : address_(commands.host + ":" + std::to_string(commands.port)),
    commands_(std::make_unique<async_connection>(
      io, std::move(commands), callbacks_for(link_role::commands, events, address_))),
    subscriber_(std::make_unique<async_connection>(
      io, std::move(subscriber), callbacks_for(link_role::subscriber, events, address_))) {
  // nop
}

single_topology::~single_topology() {
  stop();
}

void single_topology::start() {
  commands_->start();
  subscriber_->start();
}

void single_topology::stop() {
  subscriber_->stop();
  commands_->stop();
}

void single_topology::command(std::vector<std::string> argv, reply_handler on_reply) {
  commands_->command(std::move(argv), std::move(on_reply));
}

void single_topology::subscribe(std::vector<std::string> channels, reply_handler on_done) {
  subscriber_->subscribe(std::move(channels), std::move(on_done));
}

void single_topology::unsubscribe(std::vector<std::string> channels) {
  subscriber_->unsubscribe(std::move(channels));
}

bool single_topology::subscriber_connected() const {
  return subscriber_->connected();
}

void single_topology::restart_subscriber(std::string why) {
  subscriber_->restart(std::move(why));
}

std::string single_topology::describe() const {
  return address_;
}

void single_topology::suspect(std::string) {
  // nop
}

} // namespace goring::redis
