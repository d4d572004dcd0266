/// The bench's client threads: one io_context per thread, so everything a
/// connection (or a caller/callee pair) does runs on one thread, unlocked.
#pragma once

#include <cstddef>
#include <memory>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

namespace goring::bench {

class io_pool {
public:
  /// Starts `threads` threads, each running its own io_context.
  explicit io_pool(std::size_t threads);
  /// Stops and joins (see stop()).
  ~io_pool();

  io_pool(const io_pool&) = delete;
  io_pool& operator=(const io_pool&) = delete;

  std::size_t size() const {
    return contexts_.size();
  }
  boost::asio::io_context& context(std::size_t i) {
    return *contexts_[i];
  }

  /// Stops every io_context and joins its thread; handlers still pending
  /// never run. Objects that handlers point to may be destroyed after this.
  void stop();

private:
  using work_guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;

  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<work_guard> guards_;
  std::vector<std::thread> threads_;
};

} // namespace goring::bench
