#include "tests/support/test_ca.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/process.hpp"

namespace goring::test {

namespace {

/// Runs openssl with `args`; its output goes to `log`. The test stops when
/// it fails or takes over 30 s.
void openssl(const std::vector<std::string>& args, const std::string& log) {
  std::vector<std::string> argv{"openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  child_process run{argv, {}, log};
  auto pid = run.pid();
  int status = -1;
  bool exited = wait_until(
    [&] {
      int s = 0;
      auto r = ::waitpid(pid, &s, WNOHANG);
      if (r == pid)
        status = s;
      return r != 0;
    },
    std::chrono::seconds(30));
  std::ifstream in{log};
  std::stringstream text;
  text << in.rdbuf();
  INFO("openssl ", args.front(), ": ", text.str());
  REQUIRE(exited);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
}

} // namespace

test_ca::test_ca() {
  namespace fs = std::filesystem;
  auto dir = fs::temp_directory_path()
             / ("goring-test-ca." + std::to_string(::getpid()) + "." + std::to_string(std::rand()));
  fs::create_directories(dir);
  dir_ = dir.string();
  ca_cert_ = (dir / "ca.pem").string();
  ca_key_ = (dir / "ca.key").string();
  openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
           "-keyout", ca_key_, "-out", ca_cert_, "-days", "2", "-subj", "/CN=goring test CA",
           "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
           "keyUsage=critical,keyCertSign,cRLSign"},
          (dir / "ca.log").string());
}

test_ca::~test_ca() {
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

test_ca::server_files test_ca::issue(const std::string& stem,
                                     const std::vector<std::string>& names) {
  namespace fs = std::filesystem;
  fs::path dir{dir_};
  server_files out{(dir / (stem + ".pem")).string(), (dir / (stem + ".key")).string()};
  auto csr = (dir / (stem + ".csr")).string();
  auto ext = (dir / (stem + ".ext")).string();
  std::string san;
  for (auto& n : names)
    san += (san.empty() ? "" : ",") + n;
  {
    std::ofstream e{ext};
    e << "subjectAltName=" << san << "\nbasicConstraints=CA:FALSE\n"
      << "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n";
  }
  auto log = (dir / (stem + ".log")).string();
  openssl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
           out.key_file, "-out", csr, "-subj", "/CN=" + stem},
          log);
  openssl({"x509", "-req", "-in", csr, "-CA", ca_cert_, "-CAkey", ca_key_, "-CAcreateserial",
           "-out", out.cert_file, "-days", "2", "-extfile", ext},
          log);
  return out;
}

} // namespace goring::test
