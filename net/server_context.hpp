/// What every HTTP and WebSocket session of the public listener shares.
#pragma once

#include <memory>

#include "actors/system.hpp"
#include "config/config.hpp"
#include "net/admission.hpp"
#include "net/jwt_auth.hpp"

namespace goring {

struct server_context {
  settings config;
  std::shared_ptr<const auth::jwt_verifier> verifier;
  actor_runtime* runtime;
  /// The admin listener: /health, /ready and /metrics, no WebSockets.
  bool admin = false;
  /// Connections per IP and per instance on the public port; shared by
  /// every session, null on the admin listener.
  std::shared_ptr<admission> admission_control;
};

} // namespace goring
