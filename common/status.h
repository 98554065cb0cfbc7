// Status and Result: the error type of criu-fast.
//
// Our code does not throw. A function that can fail returns a Status (free on
// success: a null pointer) or a Result<T> (a value or a Status). Errors carry
// errno and a message with context (pid, path, VMA); errno becomes a Status in
// exactly one place, ErrnoStatus(). Propagate with RETURN_IF_ERROR and
// ASSIGN_OR_RETURN so the happy path stays readable.
#pragma once

#include <cerrno>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace cf {

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK

  static Status Error(int err, std::string msg) {
    Status s;
    s.rep_ = std::make_shared<const Rep>(Rep{err, std::move(msg)});
    return s;
  }

  bool ok() const { return rep_ == nullptr; }
  int err() const { return rep_ ? rep_->err : 0; }
  const std::string& message() const;
  // "message: strerror(err)" (or just the message when err is 0).
  std::string ToString() const;
  // Returns this error with "ctx: " put in front of the message.
  Status WithContext(const std::string& ctx) const;

 private:
  struct Rep {
    int err;
    std::string msg;
  };
  std::shared_ptr<const Rep> rep_;
};

inline Status OkStatus() { return Status(); }
// An error that is not a failed system call (bad input, unsupported state).
Status Error(std::string msg, int err = 0);
// printf-style variant of Error().
Status Errorf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// The one place where errno turns into a Status.
Status ErrnoStatus(int err, std::string ctx);
inline Status ErrnoStatus(std::string ctx) { return ErrnoStatus(errno, std::move(ctx)); }

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}           // NOLINT: implicit on purpose
  Result(Status status) : status_(std::move(status)) {}   // NOLINT: implicit on purpose

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace cf

#define CF_CONCAT_INNER(a, b) a##b
#define CF_CONCAT(a, b) CF_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)              \
  do {                                     \
    ::cf::Status cf_status_ = (expr);      \
    if (!cf_status_.ok()) return cf_status_; \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(CF_CONCAT(cf_result_, __LINE__), lhs, expr)
