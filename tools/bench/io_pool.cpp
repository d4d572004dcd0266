#include "tools/bench/io_pool.hpp"

namespace goring::bench {

io_pool::io_pool(std::size_t threads) {
  for (std::size_t i = 0; i < threads; ++i) {
    // Concurrency hint 1: each context is run by exactly one thread.
    contexts_.push_back(std::make_unique<boost::asio::io_context>(1));
    guards_.emplace_back(contexts_.back()->get_executor());
  }
  for (auto& io : contexts_)
    threads_.emplace_back([ctx = io.get()] { ctx->run(); });
}

io_pool::~io_pool() {
  stop();
}

void io_pool::stop() {
  for (auto& io : contexts_)
    io->stop();
  for (auto& t : threads_)
    if (t.joinable())
      t.join();
  guards_.clear();
}

} // namespace goring::bench
