// Terminal settings and queued bytes (see tty_state.h).
#include "kinds/tty_state.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "common/fd.h"

namespace cf::kinds {
namespace {

// A bound on the bytes one queue may hold in an image (a tty's queues hold
// a few KiB; this is far above).
constexpr size_t kMaxQueued = 1 << 20;
constexpr int kMaxLines = 1 << 16;

termios ToTermios(const img::TtyTermios& t) {
  termios out{};
  out.c_iflag = t.iflag();
  out.c_oflag = t.oflag();
  out.c_cflag = t.cflag();
  out.c_lflag = t.lflag();
  out.c_line = static_cast<cc_t>(t.line());
  memcpy(out.c_cc, t.cc().data(), std::min(t.cc().size(), sizeof(out.c_cc)));
  cfsetispeed(&out, t.ispeed());
  cfsetospeed(&out, t.ospeed());
  return out;
}

// With SIGTTOU blocked: a restored process may be in the background of
// the terminal (a shell job's, before its group is the foreground one).
Status SetTermios(int fd, const termios& t) {
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGTTOU);
  sigprocmask(SIG_BLOCK, &block, &old);
  const int rc = tcsetattr(fd, TCSANOW, &t);
  const int err = errno;
  sigprocmask(SIG_SETMASK, &old, nullptr);
  if (rc != 0) return ErrnoStatus(err, "tcsetattr");
  return OkStatus();
}

// Sets O_NONBLOCK on a description for as long as it lives, then its flags
// back (the description may be the program's own).
class NonBlocking {
 public:
  explicit NonBlocking(int fd) : fd_(fd), flags_(fcntl(fd, F_GETFL)) {
    if (flags_ >= 0 && !(flags_ & O_NONBLOCK)) (void)fcntl(fd, F_SETFL, flags_ | O_NONBLOCK);
  }
  ~NonBlocking() {
    if (flags_ >= 0 && !(flags_ & O_NONBLOCK)) (void)fcntl(fd_, F_SETFL, flags_);
  }
  bool ok() const { return flags_ >= 0; }

 private:
  int fd_;
  int flags_;
};

// Reads |fd| until it has nothing more (EAGAIN, or EIO: the other side is
// closed and the queue empty; 0 when |zero_ends|).
Status ReadAll(int fd, bool zero_ends, std::string* out) {
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EIO)) return OkStatus();
    if (n < 0) return ErrnoStatus("read the queued bytes");
    if (n == 0 && zero_ends) return OkStatus();
    out->append(buf, static_cast<size_t>(n));
    if (out->size() > kMaxQueued) return Errorf("more than %zu bytes queued", kMaxQueued);
  }
}

// The input queue of a slave in canonical mode: one complete line per
// read(), then the rest with canonical mode off.
Status TakeInput(int slave, img::TtyPair* pair) {
  const termios saved = ToTermios(pair->termios());
  if (saved.c_lflag & ICANON) {
    char buf[4096];
    for (int i = 0;; ++i) {
      if (i == kMaxLines) return Errorf("more than %d lines queued", kMaxLines);
      const ssize_t n = read(slave, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EIO)) break;
      if (n < 0) return ErrnoStatus("read a queued line");
      pair->add_input_lines(std::string(buf, static_cast<size_t>(n)));
    }
    termios raw = saved;
    raw.c_lflag &= ~ICANON;
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    RETURN_IF_ERROR(SetTermios(slave, raw));
    std::string tail;
    Status st = ReadAll(slave, true, &tail);
    RETURN_IF_ERROR(SetTermios(slave, saved));
    RETURN_IF_ERROR(st);
    pair->set_input_tail(std::move(tail));
    return OkStatus();
  }
  std::string all;
  RETURN_IF_ERROR(ReadAll(slave, saved.c_cc[VMIN] == 0 && saved.c_cc[VTIME] == 0, &all));
  pair->set_input_tail(std::move(all));
  return OkStatus();
}

// Pushes |c| into the slave's input, processed by |t| (set already).
Status Inject(int slave, char c) {
  if (ioctl(slave, TIOCSTI, &c) != 0) return ErrnoStatus("TIOCSTI (put back queued input)");
  return OkStatus();
}

bool EndsLine(const std::string& line, const termios& t) {
  if (line.empty()) return false;
  const cc_t c = static_cast<cc_t>(line.back());
  return c == '\n' || (c != 0 && (c == t.c_cc[VEOL] || c == t.c_cc[VEOL2]));
}

Status PutInput(int slave, const img::TtyPair& pair, const termios& saved) {
  termios t = saved;
  t.c_lflag &= ~(ECHO | ECHOE | ECHOK | ECHONL | ECHOCTL | ECHOPRT | ECHOKE | ISIG | IEXTEN);
  t.c_iflag &= ~(ICRNL | INLCR | IGNCR | ISTRIP | IUCLC | IXON | IXOFF | PARMRK | BRKINT | INPCK | IMAXBEL);
  for (int c : {VERASE, VKILL, VWERASE, VREPRINT, VLNEXT, VEOF}) t.c_cc[c] = 0;
  RETURN_IF_ERROR(SetTermios(slave, t));
  termios eof = t;
  eof.c_cc[VEOF] = 4;
  for (const std::string& line : pair.input_lines()) {
    for (char c : line) RETURN_IF_ERROR(Inject(slave, c));
    if (EndsLine(line, saved)) continue;
    RETURN_IF_ERROR(SetTermios(slave, eof));
    RETURN_IF_ERROR(Inject(slave, 4));
    RETURN_IF_ERROR(SetTermios(slave, t));
  }
  for (char c : pair.input_tail()) RETURN_IF_ERROR(Inject(slave, c));
  return OkStatus();
}

Status PutOutput(int slave, const std::string& data, const termios& saved) {
  termios t = saved;
  t.c_oflag &= ~OPOST;
  RETURN_IF_ERROR(SetTermios(slave, t));
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = write(slave, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoStatus("write back the bytes queued for the master");
    off += static_cast<size_t>(n);
  }
  return OkStatus();
}

}  // namespace

Status ReadTermios(int fd, img::TtyTermios* out) {
  termios t{};
  if (tcgetattr(fd, &t) != 0) return ErrnoStatus("tcgetattr");
  out->set_iflag(t.c_iflag);
  out->set_oflag(t.c_oflag);
  out->set_cflag(t.c_cflag);
  out->set_lflag(t.c_lflag);
  out->set_line(t.c_line);
  out->set_cc(std::string(reinterpret_cast<const char*>(t.c_cc), sizeof(t.c_cc)));
  out->set_ispeed(cfgetispeed(&t));
  out->set_ospeed(cfgetospeed(&t));
  return OkStatus();
}

Status ApplyTermios(int fd, const img::TtyTermios& t) { return SetTermios(fd, ToTermios(t)); }

Status ReadWinsize(int fd, img::TtyWinsize* out) {
  winsize w{};
  if (ioctl(fd, TIOCGWINSZ, &w) != 0) return ErrnoStatus("TIOCGWINSZ");
  out->set_row(w.ws_row);
  out->set_col(w.ws_col);
  out->set_xpixel(w.ws_xpixel);
  out->set_ypixel(w.ws_ypixel);
  return OkStatus();
}

Status ApplyWinsize(int fd, const img::TtyWinsize& w) {
  winsize ws{};
  ws.ws_row = static_cast<unsigned short>(w.row());
  ws.ws_col = static_cast<unsigned short>(w.col());
  ws.ws_xpixel = static_cast<unsigned short>(w.xpixel());
  ws.ws_ypixel = static_cast<unsigned short>(w.ypixel());
  if (ioctl(fd, TIOCSWINSZ, &ws) != 0) return ErrnoStatus("TIOCSWINSZ");
  return OkStatus();
}

bool HasQueued(const img::TtyPair& pair) {
  return pair.input_lines_size() > 0 || !pair.input_tail().empty() || !pair.output().empty();
}

Status TakeQueued(int master, int slave, img::TtyPair* pair) {
  {
    NonBlocking nb(master);
    if (!nb.ok()) return ErrnoStatus("F_GETFL of the master");
    std::string out;
    RETURN_IF_ERROR(ReadAll(master, false, &out).WithContext("master"));
    pair->set_output(std::move(out));
  }
  if (slave < 0) return OkStatus();
  NonBlocking nb(slave);
  if (!nb.ok()) return ErrnoStatus("F_GETFL of the slave");
  return TakeInput(slave, pair).WithContext("slave");
}

Status PutQueued(int slave, const img::TtyPair& pair) {
  const termios saved = ToTermios(pair.termios());
  Status st = OkStatus();
  if (pair.input_lines_size() > 0 || !pair.input_tail().empty()) st = PutInput(slave, pair, saved);
  if (st.ok() && !pair.output().empty()) st = PutOutput(slave, pair.output(), saved);
  Status set = SetTermios(slave, saved);
  RETURN_IF_ERROR(st);
  return set;
}

}  // namespace cf::kinds
