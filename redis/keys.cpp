#include "redis/keys.hpp"

#include <array>

namespace goring::redis::keys {

namespace {

/// The partitions' tags, found once (about 32 CRC16s each).
const std::array<std::string, cluster_partitions>& partition_tags() {
  static const auto tags = [] {
    std::array<std::string, cluster_partitions> out;
    for (unsigned p = 0; p < cluster_partitions; ++p)
      out[p] = cluster::partition_tag(p, cluster_partitions);
    return out;
  }();
  return tags;
}

const std::string& tag_of_session(std::string_view session_id) {
  return partition_tags()[cluster::partition_of(session_id, cluster_partitions)];
}

} // namespace

std::string partition_webhook_stream(unsigned p) {
  std::string key{webhook_stream};
  key.append(":{").append(partition_tags().at(p)).append("}");
  return key;
}

std::string tagged_session(std::string_view session_id) {
  const auto& tag = tag_of_session(session_id);
  std::string key;
  key.reserve(session_prefix.size() + tag.size() + 3 + session_id.size());
  key.append(session_prefix).append("{").append(tag).append("}:").append(session_id);
  return key;
}

std::string tagged_webhook_stream(std::string_view session_id) {
  return partition_webhook_stream(cluster::partition_of(session_id, cluster_partitions));
}

} // namespace goring::redis::keys
