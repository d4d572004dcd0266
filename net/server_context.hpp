/// What every HTTP and WebSocket session of the public listener shares.
#pragma once

#include <memory>

#include "config/config.hpp"
#include "admission/admission.hpp"
#include "auth/jwt_auth.hpp"
#include "net/runtime_port.hpp"

namespace goring {

struct server_context {
  settings config;
  std::shared_ptr<const auth::jwt_verifier> verifier;
  runtime_port* runtime;
  /// The admin listener: /health, /ready and /metrics, no WebSockets.
  bool admin = false;
  /// Connections per IP and per instance on the public port; shared by
  /// every session, null on the admin listener.
  std::shared_ptr<admission> admission_control;
};

} // namespace goring
