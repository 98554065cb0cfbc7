#include "common/status.h"

#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace cf {

const std::string& Status::message() const {
  static const std::string kEmpty;
  return rep_ ? rep_->msg : kEmpty;
}

std::string Status::ToString() const {
  if (!rep_) return "ok";
  if (rep_->err == 0) return rep_->msg;
  return rep_->msg + ": " + std::strerror(rep_->err);
}

Status Status::WithContext(const std::string& ctx) const {
  if (!rep_) return *this;
  return Status::Error(rep_->err, ctx + ": " + rep_->msg);
}

Status Error(std::string msg, int err) { return Status::Error(err, std::move(msg)); }

Status Errorf(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  return Status::Error(0, buf);
}

Status ErrnoStatus(int err, std::string ctx) {
  return Status::Error(err == 0 ? EIO : err, std::move(ctx));
}

}  // namespace cf
