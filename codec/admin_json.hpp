/// JSON rows and arrays for the admin API, built without I/O.
#pragma once

#include <initializer_list>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace goring {

using admin_value = std::variant<std::string, const char*, long long, bool, std::vector<std::string>>;

/// One JSON object from name/value pairs, in the order given.
std::string admin_row(std::initializer_list<std::pair<const char*, admin_value>> fields);

/// A JSON array of rows that are each already JSON.
std::string admin_array(const std::vector<std::string>& rows);

} // namespace goring
