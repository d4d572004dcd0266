/// A certificate authority made at test time with the openssl command, and
/// server certificates it signs, for tests of goring's outbound HTTPS.
/// Files live in a private temporary directory the destructor removes.
#pragma once

#include <string>
#include <vector>

namespace goring::test {

class test_ca {
public:
  /// Makes the CA (a P-256 key and a self-signed certificate, valid two
  /// days). The test stops (REQUIRE) when openssl fails.
  test_ca();
  ~test_ca();

  test_ca(const test_ca&) = delete;
  test_ca& operator=(const test_ca&) = delete;

  /// The CA certificate (PEM), for OUTBOUND_CA_FILE.
  const std::string& ca_file() const {
    return ca_cert_;
  }

  /// A certificate and key for a server, signed by this CA.
  struct server_files {
    std::string cert_file;
    std::string key_file;
  };
  /// `names` are subjectAltName entries such as "IP:127.0.0.1",
  /// "DNS:localhost".
  server_files issue(const std::string& stem, const std::vector<std::string>& names);

private:
  std::string dir_;
  std::string ca_cert_;
  std::string ca_key_;
};

} // namespace goring::test
