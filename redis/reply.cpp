#include "redis/reply.hpp"

#include <hiredis/hiredis.h>

namespace goring::redis {

reply to_reply(const redisReply* r) {
  if (r == nullptr)
    return reply::make_error("connection lost");
  reply out;
  switch (r->type) {
    case REDIS_REPLY_INTEGER:
      out.type = reply::kind::integer;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_STRING:
      out.type = reply::kind::string;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = reply::kind::status;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = reply::kind::error;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ARRAY:
      out.type = reply::kind::array;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i)
        out.elements.push_back(to_reply(r->element[i]));
      break;
    default:
      break;
  }
  return out;
}

} // namespace goring::redis
