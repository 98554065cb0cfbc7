// Sessions and terminals (see tty_session.h).
#include "kinds/tty_session.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <string>

#include "common/fd.h"
#include "common/log.h"

namespace cf::kinds {

Status SetControllingTty(int fd, bool master) {
  UniqueFd own;
  if (master) {
    int locked = 0;
    if (ioctl(fd, TIOCGPTLCK, &locked) != 0) return ErrnoStatus("TIOCGPTLCK");
    const int zero = 0, one = 1;
    if (locked && ioctl(fd, TIOCSPTLCK, &zero) != 0) return ErrnoStatus("unlock the pty");
    own.reset(ioctl(fd, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
    const int err = errno;
    if (locked && ioctl(fd, TIOCSPTLCK, &one) != 0) return ErrnoStatus("lock the pty again");
    if (!own.valid()) return ErrnoStatus(err, "open the slave (TIOCGPTPEER)");
    fd = own.get();
  }
  if (ioctl(fd, TIOCSCTTY, 0) != 0) return ErrnoStatus("make it the controlling terminal (TIOCSCTTY)");
  LOG_DEBUG("restore: process %d: controlling terminal set", getpid());
  return OkStatus();
}

Status SetForeground(const img::Process& core, pid_t sid, pid_t fg, bool external) {
  if (fg == 0 || sid == 0 || core.pid() != fg || core.sid() != sid) return OkStatus();
  if (core.pid() == sid) return OkStatus();  // TIOCSCTTY made it the foreground group
  Status st = [&]() -> Status {
    UniqueFd tty(open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!tty.valid()) return ErrnoStatus("open /dev/tty");
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTTOU);
    sigprocmask(SIG_BLOCK, &block, &old);
    const pid_t pgrp = getpgid(0);
    const int rc = ioctl(tty.get(), TIOCSPGRP, &pgrp);
    const int err = errno;
    sigprocmask(SIG_SETMASK, &old, nullptr);
    if (rc != 0) return ErrnoStatus(err, "make group " + std::to_string(pgrp) + " the foreground one (TIOCSPGRP)");
    return OkStatus();
  }();
  if (st.ok() || !external) return st;
  LOG_WARN("restore: process %d: the shell job stays in the background of criu-fast's terminal: %s", core.pid(),
           st.ToString().c_str());
  return OkStatus();
}

void MarkOutsideIds(const std::set<pid_t>& tree, img::Process* p) {
  const bool session = !tree.count(p->sid());
  const bool group = !tree.count(p->pgid());
  if (!session && !group) return;
  img::TtyProcess* t = p->mutable_tty();
  t->set_outside_session(session);
  t->set_outside_group(group);
}

}  // namespace cf::kinds
