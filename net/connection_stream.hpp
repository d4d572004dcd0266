/// The executor, socket and stream types of client connections.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/tcp_stream.hpp>

namespace goring {

/// Each connection's strand, as its concrete type. asio::any_io_executor
/// (what tcp::socket and beast::tcp_stream use) holds a strand on the heap
/// behind a shared_ptr: every asynchronous operation copies its executor,
/// and those copies were ~20 % of the instructions of a keep-alive ping
/// (callgrind).
using connection_executor = boost::asio::strand<boost::asio::io_context::executor_type>;
using connection_socket =
  boost::asio::basic_stream_socket<boost::asio::ip::tcp, connection_executor>;
using connection_stream = boost::beast::basic_stream<boost::asio::ip::tcp, connection_executor>;
using connection_timer =
  boost::asio::basic_waitable_timer<std::chrono::steady_clock,
                                    boost::asio::wait_traits<std::chrono::steady_clock>,
                                    connection_executor>;

} // namespace goring
