#include "codec/admin_json.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace goring {

std::string admin_row(std::initializer_list<std::pair<const char*, admin_value>> fields) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w{buf};
  w.StartObject();
  for (auto& [name, value] : fields) {
    w.Key(name);
    if (auto s = std::get_if<std::string>(&value))
      w.String(s->data(), static_cast<rapidjson::SizeType>(s->size()));
    else if (auto c = std::get_if<const char*>(&value))
      w.String(*c);
    else if (auto n = std::get_if<long long>(&value))
      w.Int64(*n);
    else if (auto b = std::get_if<bool>(&value))
      w.Bool(*b);
    else if (auto list = std::get_if<std::vector<std::string>>(&value)) {
      w.StartArray();
      for (auto& item : *list)
        w.String(item.data(), static_cast<rapidjson::SizeType>(item.size()));
      w.EndArray();
    }
  }
  w.EndObject();
  return std::string{buf.GetString(), buf.GetSize()};
}

std::string admin_array(const std::vector<std::string>& rows) {
  std::string out = "[";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (i > 0)
      out += ",";
    out += rows[i];
  }
  out += "]";
  return out;
}

} // namespace goring
