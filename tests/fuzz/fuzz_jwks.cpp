/// Fuzz target for reading a JWKS document, as the identity provider's URL
/// may send anything: parse_jwks either refuses the document with a reason
/// or gives keys that each suit one of the algorithms goring checks, and a
/// key never verifies a signature it did not make.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "auth/jwks.hpp"

namespace {

void check(bool ok) {
  if (!ok)
    std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view document{reinterpret_cast<const char*>(data), size};
  auto parsed = goring::auth::parse_jwks(document);
  check(parsed.keys.has_value() == parsed.error.empty());
  if (!parsed.keys)
    return 0;
  check(!parsed.keys->keys().empty());
  check(parsed.keys->keys().size() <= goring::auth::max_jwks_keys);
  for (auto& key : parsed.keys->keys()) {
    bool usable = false;
    for (const char* alg : {"RS256", "RS384", "RS512", "PS256", "ES256", "ES384"}) {
      if (!key.accepts(alg))
        continue;
      usable = true;
      // A signature made of the document's own bytes is no signature.
      check(!key.key.verify(alg, "header.payload", document.substr(0, 512)));
    }
    check(usable);
    check(!key.key.pem().empty());
  }
  return 0;
}
