#include "webhooks/retry.hpp"

#include <algorithm>

namespace goring::webhooks {

std::chrono::milliseconds retry_delay(unsigned retry, double unit) {
  constexpr long long first = 1'000;
  long long full = first;
  for (unsigned i = 1; i < retry && full < max_retry_delay.count(); ++i)
    full *= 2;
  full = std::min(full, static_cast<long long>(max_retry_delay.count()));
  unit = std::clamp(unit, 0.0, 1.0);
  auto wait = full - static_cast<long long>(unit * static_cast<double>(full / 2));
  return std::chrono::milliseconds{std::max(wait, full / 2)};
}

} // namespace goring::webhooks
