/// goring's Prometheus client: what each kind of family exposes, what registration refuses,
/// and exact totals under concurrent updates.
#include <doctest/doctest.h>

#include <cmath>
#include <ctime>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "metrics/metrics.hpp"

namespace {

using goring::metrics::registry;

constexpr double inf = std::numeric_limits<double>::infinity();

/// Sample lines of an exposition, by everything left of the value: `name{labels}` -> value.
std::map<std::string, std::string> samples_of(const std::string& text) {
  std::map<std::string, std::string> samples;
  std::istringstream lines{text};
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#')
      continue;
    auto space = line.rfind(' ');
    samples[line.substr(0, space)] = line.substr(space + 1);
  }
  return samples;
}

double sample(const std::string& text, const std::string& series) {
  auto samples = samples_of(text);
  auto i = samples.find(series);
  REQUIRE_MESSAGE(i != samples.end(), "no sample " << series << " in\n" << text);
  return std::stod(i->second);
}

/// Starts `threads` threads that each run `body` `rounds` times, and joins them.
template <class Body>
void hammer(int threads, int rounds, Body body) {
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&] {
      for (int i = 0; i < rounds; ++i)
        body();
    });
  for (auto& worker : workers)
    worker.join();
}

} // namespace

TEST_CASE("an unlabelled counter is exposed from the start, then with its total") {
  registry r;
  auto& errors = r.counter("goring_redis_errors_total", "Redis commands that failed.").with();
  CHECK(r.expose()
        == "# HELP goring_redis_errors_total Redis commands that failed.\n"
           "# TYPE goring_redis_errors_total counter\n"
           "goring_redis_errors_total 0\n");
  errors.inc();
  errors.inc(2);
  CHECK(r.expose()
        == "# HELP goring_redis_errors_total Redis commands that failed.\n"
           "# TYPE goring_redis_errors_total counter\n"
           "goring_redis_errors_total 3\n");
}

TEST_CASE("a labelled counter has one sample per label value, sorted, once each is used") {
  registry r;
  auto& received =
    r.counter("goring_messages_received_total", "Frames received from clients, by type.", {"type"});
  CHECK(r.expose().empty());
  auto& start = received.with({"call.start"});
  auto& accept = received.with({"call.accept"});
  start.inc();
  start.inc();
  accept.inc();
  CHECK(&received.with({"call.start"}) == &start);
  CHECK(r.expose()
        == "# HELP goring_messages_received_total Frames received from clients, by type.\n"
           "# TYPE goring_messages_received_total counter\n"
           "goring_messages_received_total{type=\"call.accept\"} 1\n"
           "goring_messages_received_total{type=\"call.start\"} 2\n");
}

TEST_CASE("a counter keeps fractions, ignores negative and NaN amounts") {
  registry r;
  auto& c = r.counter("work_seconds_total", "Seconds of work.").with();
  c.inc(0.5);
  c.inc(1);
  c.inc(0.25);
  c.inc(-4);
  c.inc(std::numeric_limits<double>::quiet_NaN());
  CHECK(c.value() == 1.75);
  CHECK(sample(r.expose(), "work_seconds_total") == 1.75);
}

TEST_CASE("a gauge goes up, down and is set, with several labels") {
  registry r;
  auto& actors = r.gauge("goring_actors", "Live actors, by kind.", {"kind", "instance"});
  auto& calls = actors.with({"call", "a"});
  auto& connections = actors.with({"connection", "a"});
  calls.inc();
  calls.inc();
  calls.dec();
  connections.set(7);
  connections.dec(0.5);
  CHECK(r.expose()
        == "# HELP goring_actors Live actors, by kind.\n"
           "# TYPE goring_actors gauge\n"
           "goring_actors{kind=\"call\",instance=\"a\"} 1\n"
           "goring_actors{kind=\"connection\",instance=\"a\"} 6.5\n");
  calls.set(-3);
  CHECK(calls.value() == -3);
  calls.set(inf);
  CHECK(sample(r.expose(), "goring_actors{kind=\"call\",instance=\"a\"}") == inf);
  calls.set(2);
  CHECK(calls.value() == 2);
}

TEST_CASE("a histogram's buckets are cumulative and end in +Inf, with sum and count") {
  registry r;
  auto& setup =
    r.histogram("goring_call_setup_seconds", "Start to accepted.", {}, {0.5, 1, 2.5}).with();
  setup.observe(0.25);
  setup.observe(0.5); // a bound is inclusive: le means less or equal
  setup.observe(2);
  setup.observe(8);
  CHECK(r.expose()
        == "# HELP goring_call_setup_seconds Start to accepted.\n"
           "# TYPE goring_call_setup_seconds histogram\n"
           "goring_call_setup_seconds_bucket{le=\"0.5\"} 2\n"
           "goring_call_setup_seconds_bucket{le=\"1\"} 2\n"
           "goring_call_setup_seconds_bucket{le=\"2.5\"} 3\n"
           "goring_call_setup_seconds_bucket{le=\"+Inf\"} 4\n"
           "goring_call_setup_seconds_sum 10.75\n"
           "goring_call_setup_seconds_count 4\n");
}

TEST_CASE("a labelled histogram puts le after its own labels") {
  registry r;
  auto& redis = r.histogram("goring_redis_command_seconds", "Redis round trips.", {"command"},
                            {0.001, 0.01, inf});
  CHECK(redis.bounds() == std::vector<double>{0.001, 0.01});
  redis.with({"EVALSHA"}).observe(0.005);
  redis.with({"PUBLISH"}).observe(0.0001);
  CHECK(r.expose()
        == "# HELP goring_redis_command_seconds Redis round trips.\n"
           "# TYPE goring_redis_command_seconds histogram\n"
           "goring_redis_command_seconds_bucket{command=\"EVALSHA\",le=\"0.001\"} 0\n"
           "goring_redis_command_seconds_bucket{command=\"EVALSHA\",le=\"0.01\"} 1\n"
           "goring_redis_command_seconds_bucket{command=\"EVALSHA\",le=\"+Inf\"} 1\n"
           "goring_redis_command_seconds_sum{command=\"EVALSHA\"} 0.005\n"
           "goring_redis_command_seconds_count{command=\"EVALSHA\"} 1\n"
           "goring_redis_command_seconds_bucket{command=\"PUBLISH\",le=\"0.001\"} 1\n"
           "goring_redis_command_seconds_bucket{command=\"PUBLISH\",le=\"0.01\"} 1\n"
           "goring_redis_command_seconds_bucket{command=\"PUBLISH\",le=\"+Inf\"} 1\n"
           "goring_redis_command_seconds_sum{command=\"PUBLISH\"} 0.0001\n"
           "goring_redis_command_seconds_count{command=\"PUBLISH\"} 1\n");
}

TEST_CASE("a NaN observation is counted in +Inf only") {
  registry r;
  auto& h = r.histogram("odd_seconds", "Odd values.", {}, {1}).with();
  h.observe(std::numeric_limits<double>::quiet_NaN());
  auto snap = h.collect();
  CHECK(snap.cumulative == std::vector<std::uint64_t>{0, 1});
  CHECK(snap.count == 1);
  CHECK(std::isnan(snap.sum));
}

TEST_CASE("the default buckets span 100 microseconds to 10 seconds") {
  auto bounds = goring::metrics::default_seconds_buckets();
  REQUIRE(bounds.size() >= 10);
  CHECK(bounds.front() == 0.0001);
  CHECK(bounds.back() == 10);
  for (std::size_t i = 1; i < bounds.size(); ++i)
    CHECK(bounds[i - 1] < bounds[i]);
  registry r;
  CHECK(r.histogram("goring_relay_seconds", "Relay time.").bounds() == bounds);
}

TEST_CASE("exponential buckets multiply from the start, and refuse what cannot grow") {
  using goring::metrics::exponential_buckets;
  CHECK(exponential_buckets(0.001, 2, 4) == std::vector<double>{0.001, 0.002, 0.004, 0.008});
  CHECK(exponential_buckets(1, 10, 1) == std::vector<double>{1});
  CHECK_THROWS_AS(exponential_buckets(0, 2, 3), std::invalid_argument);
  CHECK_THROWS_AS(exponential_buckets(1, 1, 3), std::invalid_argument);
  CHECK_THROWS_AS(exponential_buckets(1, 2, 0), std::invalid_argument);
}

TEST_CASE("values print as Prometheus spells them") {
  using goring::metrics::format_value;
  CHECK(format_value(0) == "0");
  CHECK(format_value(-0.0) == "0");
  CHECK(format_value(42) == "42");
  CHECK(format_value(-7) == "-7");
  CHECK(format_value(1e15) == "1000000000000000");
  CHECK(format_value(12345678901234567.0) == "12345678901234568");
  CHECK(format_value(0.005) == "0.005");
  CHECK(format_value(0.0001) == "0.0001");
  CHECK(format_value(2.5) == "2.5");
  CHECK(format_value(1e-05) == "1e-05");
  CHECK(format_value(1e300) == "1e+300");
  CHECK(format_value(inf) == "+Inf");
  CHECK(format_value(-inf) == "-Inf");
  CHECK(format_value(std::numeric_limits<double>::quiet_NaN()) == "NaN");
  // Shortest form that reads back to the same double.
  CHECK(std::stod(format_value(0.1 + 0.2)) == 0.1 + 0.2);
}

TEST_CASE("help escapes backslash and newline, label values also escape quotes") {
  registry r;
  r.gauge("escaped", "A \\ backslash, a \"quote\" and a\nnewline.", {"path"})
    .with({"C:\\dir \"x\"\nnext"})
    .set(1);
  CHECK(r.expose()
        == "# HELP escaped A \\\\ backslash, a \"quote\" and a\\nnewline.\n"
           "# TYPE escaped gauge\n"
           "escaped{path=\"C:\\\\dir \\\"x\\\"\\nnext\"} 1\n");
}

TEST_CASE("families are exposed sorted by name, each once") {
  registry r;
  r.gauge("b_value", "B.").with().set(1);
  r.counter("a_total", "A.").with().inc();
  r.counter("a_total", "A.").with().inc();
  r.gauge("c_value", "C.", {"x"});
  auto text = r.expose();
  CHECK(text
        == "# HELP a_total A.\n# TYPE a_total counter\na_total 2\n"
           "# HELP b_value B.\n# TYPE b_value gauge\nb_value 1\n");
}

TEST_CASE("8 threads x 100000 updates give exact totals") {
  registry r;
  auto& counted = r.counter("hammered_total", "Hammered.").with();
  auto& halves = r.counter("halves_total", "Counted in halves.").with();
  auto& level = r.gauge("level", "Up and down.").with();
  auto& timed = r.histogram("timed_seconds", "Observed.", {}, {0.5, 1, 2}).with();
  hammer(8, 100000, [&] {
    counted.inc();
    halves.inc(0.5);
    level.inc(3);
    level.dec(2);
    timed.observe(1);
  });
  CHECK(counted.value() == 800000);
  CHECK(halves.value() == 400000);
  CHECK(level.value() == 800000);
  auto snap = timed.collect();
  CHECK(snap.count == 800000);
  CHECK(snap.sum == 800000);
  CHECK(snap.cumulative == std::vector<std::uint64_t>{0, 800000, 800000, 800000});
  auto text = r.expose();
  CHECK(sample(text, "hammered_total") == 800000);
  CHECK(sample(text, "timed_seconds_count") == 800000);
  CHECK(sample(text, "timed_seconds_bucket{le=\"+Inf\"}") == 800000);
}

TEST_CASE("children created from many threads at once are each created once") {
  registry r;
  auto& family = r.counter("per_user_total", "Per user.", {"user"});
  hammer(8, 1000, [&] {
    for (int user = 0; user < 10; ++user)
      family.with({std::to_string(user)}).inc();
  });
  auto samples = samples_of(r.expose());
  CHECK(samples.size() == 10);
  for (int user = 0; user < 10; ++user)
    CHECK(samples["per_user_total{user=\"" + std::to_string(user) + "\"}"] == "8000");
}

TEST_CASE("a child's reference stays valid while more children are created") {
  registry r;
  auto& family = r.counter("sent_total", "Sent.", {"type"});
  auto& first = family.with({"first"});
  for (int i = 0; i < 1000; ++i)
    family.with({"t" + std::to_string(i)}).inc();
  first.inc(5);
  CHECK(&family.with({"first"}) == &first);
  CHECK(sample(r.expose(), "sent_total{type=\"first\"}") == 5);
}

TEST_CASE("callback gauges are read at scrape time, with and without labels") {
  registry r;
  int connections = 3;
  r.gauge_callback("goring_connections", "Open WebSocket connections.",
                   [&] { return double(connections); });
  std::vector<goring::metrics::labelled_value> actors{{{"call"}, 2}, {{"connection"}, 5}};
  r.gauge_callback("goring_actors", "Live actors, by kind.", {"kind"}, [&] { return actors; });
  r.counter_callback("goring_polls_total", "Polls.", [] { return 12.0; });
  auto text = r.expose();
  CHECK(text
        == "# HELP goring_actors Live actors, by kind.\n"
           "# TYPE goring_actors gauge\n"
           "goring_actors{kind=\"call\"} 2\n"
           "goring_actors{kind=\"connection\"} 5\n"
           "# HELP goring_connections Open WebSocket connections.\n"
           "# TYPE goring_connections gauge\n"
           "goring_connections 3\n"
           "# HELP goring_polls_total Polls.\n"
           "# TYPE goring_polls_total counter\n"
           "goring_polls_total 12\n");
  connections = 4;
  actors.clear();
  text = r.expose();
  CHECK(sample(text, "goring_connections") == 4);
  CHECK(text.find("goring_actors") == std::string::npos);
  actors = {{{"call", "extra"}, 1}};
  CHECK_THROWS_AS(r.expose(), std::logic_error);
}

TEST_CASE("a callback may use the registry while it is scraped") {
  registry r;
  r.gauge_callback("families_seen", "Reads the registry from inside a scrape.", [&] {
    return double(r.gauge("lazily_added", "Registered during a scrape.").with().value());
  });
  CHECK(sample(r.expose(), "families_seen") == 0);
  CHECK(sample(r.expose(), "lazily_added") == 0);
}

TEST_CASE("process metrics are present and plausible") {
  registry r;
  goring::metrics::register_process_metrics(r);
  auto text = r.expose();
  CAPTURE(text);
  CHECK(text.find("# TYPE process_cpu_seconds_total counter\n") != std::string::npos);
  CHECK(text.find("# TYPE process_resident_memory_bytes gauge\n") != std::string::npos);
  CHECK(sample(text, "process_resident_memory_bytes") > 1024 * 1024);
  CHECK(sample(text, "process_virtual_memory_bytes")
        >= sample(text, "process_resident_memory_bytes"));
  CHECK(sample(text, "process_cpu_seconds_total") >= 0);
  CHECK(sample(text, "process_open_fds") >= 3); // at least stdin, stdout, stderr
  CHECK(sample(text, "process_max_fds") >= sample(text, "process_open_fds"));
  auto now = static_cast<double>(std::time(nullptr));
  auto start = sample(text, "process_start_time_seconds");
  CHECK(start <= now + 2); // boot time has a one-second resolution
  CHECK(start > now - 3600);
}

TEST_CASE("the global registry is one registry with the process metrics") {
  auto& global = goring::metrics::global();
  CHECK(&global == &goring::metrics::global());
  CHECK(samples_of(global.expose()).count("process_open_fds") == 1);
}

TEST_CASE("invalid names are refused") {
  registry r;
  CHECK_THROWS_AS(r.counter("goring_messages", "No _total."), std::invalid_argument);
  CHECK_THROWS_AS(r.counter_callback("polls", "No _total.", [] { return 0.0; }),
                  std::invalid_argument);
  CHECK_THROWS_AS(r.gauge("goring_calls_total", "A gauge in counter's clothes."),
                  std::invalid_argument);
  CHECK_THROWS_AS(r.gauge("queue_count", "Looks like a histogram's count."), std::invalid_argument);
  CHECK_THROWS_AS(r.gauge("1st", "Starts with a digit."), std::invalid_argument);
  CHECK_THROWS_AS(r.gauge("with-dash", "Dash."), std::invalid_argument);
  CHECK_THROWS_AS(r.gauge("with space", "Space."), std::invalid_argument);
  CHECK_THROWS_AS(r.gauge("", "Empty."), std::invalid_argument);
  CHECK_THROWS_AS(r.gauge("no_help", ""), std::invalid_argument);
  CHECK_THROWS_AS(r.gauge("x", "Reserved label.", {"__name"}), std::invalid_argument);
  CHECK_THROWS_AS(r.gauge("x", "Colon in label.", {"a:b"}), std::invalid_argument);
  CHECK_THROWS_AS(r.gauge("x", "Digit first.", {"9lives"}), std::invalid_argument);
  CHECK_THROWS_AS(r.gauge("x", "Twice.", {"a", "a"}), std::invalid_argument);
  CHECK_THROWS_AS(r.histogram("h_seconds", "le is the bucket's.", {"le"}), std::invalid_argument);
  CHECK_THROWS_AS(r.histogram("h_seconds", "Unordered.", {}, {1, 0.5}), std::invalid_argument);
  CHECK_THROWS_AS(r.histogram("h_seconds", "Repeated.", {}, {1, 1}), std::invalid_argument);
  CHECK_THROWS_AS(r.histogram("h_seconds", "NaN.", {}, {std::nan("")}), std::invalid_argument);
  // What the rules allow.
  CHECK_NOTHROW(r.gauge("ns:sub_system_value", "Colons are allowed in names.", {"_a", "b9"}));
  CHECK_NOTHROW(r.histogram("h_seconds", "Only +Inf.", {}, {}));
  CHECK(r.expose().find("h_seconds_bucket{le=\"+Inf\"} 0\n") != std::string::npos);
}

TEST_CASE("a wrong number of label values is refused") {
  registry r;
  auto& family = r.counter("sent_total", "Sent.", {"type", "code"});
  CHECK_THROWS_AS(family.with({"only-one"}), std::invalid_argument);
  CHECK_THROWS_AS(family.with(), std::invalid_argument);
  CHECK_THROWS_AS(r.counter("plain_total", "Plain.").with({"extra"}), std::invalid_argument);
}

TEST_CASE("registering a family again returns it only when nothing differs") {
  registry r;
  auto& calls = r.counter("goring_calls_total", "Calls, by outcome.", {"outcome"});
  CHECK(&r.counter("goring_calls_total", "Calls, by outcome.", {"outcome"}) == &calls);
  CHECK_THROWS_AS(r.counter("goring_calls_total", "Calls.", {"result"}), std::invalid_argument);
  CHECK_THROWS_AS(r.counter("goring_calls_total", "Calls."), std::invalid_argument);
  CHECK_THROWS_AS(r.histogram("goring_calls_total", "Calls.", {"outcome"}), std::invalid_argument);

  auto& level = r.gauge("goring_calls_active", "Live calls.");
  CHECK(&r.gauge("goring_calls_active", "Live calls.") == &level);
  CHECK_THROWS_AS(r.gauge_callback("goring_calls_active", "Live calls.", [] { return 0.0; }),
                  std::invalid_argument);

  auto& setup = r.histogram("goring_call_setup_seconds", "Setup.", {}, {1, 2});
  CHECK(&r.histogram("goring_call_setup_seconds", "Setup.", {}, {1, 2, inf}) == &setup);
  CHECK_THROWS_AS(r.histogram("goring_call_setup_seconds", "Setup.", {}, {1, 3}),
                  std::invalid_argument);

  r.gauge_callback("goring_connections", "Connections.", [] { return 1.0; });
  CHECK_THROWS_AS(r.gauge_callback("goring_connections", "Connections.", [] { return 2.0; }),
                  std::invalid_argument);
  CHECK_THROWS_AS(r.gauge("goring_connections", "Connections."), std::invalid_argument);
}

TEST_CASE("families whose samples would share a name are refused") {
  registry r;
  r.histogram("goring_relay_seconds", "Relay.");
  // goring_relay_seconds already writes goring_relay_seconds_count and _sum.
  CHECK_THROWS_AS(r.histogram("goring_relay_seconds_count", "Clash.", {}, {1}),
                  std::invalid_argument);
  CHECK_THROWS_AS(r.histogram("goring_relay_seconds_sum", "Clash.", {}, {1}),
                  std::invalid_argument);
  // And the other way round: a histogram named after another one's samples.
  r.histogram("queue_wait_seconds_bucket", "Odd, but its own name.", {}, {1});
  CHECK_THROWS_AS(r.histogram("queue_wait_seconds", "Clash.", {}, {1}), std::invalid_argument);
}
