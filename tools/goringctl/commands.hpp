/// goringctl's commands: the table of them, and running one command line.
#pragma once

#include <ostream>

namespace goringctl {

/// Runs the command line `argv` (GORING_ADMIN_TOKEN, JWT_SECRET and
/// REDIS_PASSWORD read from the environment), writing answers to `out` and
/// one line per error to `err`. Returns the exit status: 0, 1 on a failure,
/// 2 on a command line it cannot run.
int run(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

} // namespace goringctl
