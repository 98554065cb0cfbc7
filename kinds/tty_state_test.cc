// Queued bytes of a pseudo-terminal pair (kinds/tty_state.h) taken from one
// pair and put back into another, as a dump and a restore do: lines, an
// end-of-file mark alone and one ending a line, the line being typed, and
// output already processed (ONLCR) that must not be processed twice.
#include "kinds/tty_state.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <string>

#include "common/fd.h"

namespace cf::kinds {
namespace {

struct Pair {
  UniqueFd master, slave;
};

Pair OpenPair() {
  Pair p;
  p.master.reset(open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK));
  if (!p.master.valid()) return p;
  int zero = 0;
  ioctl(p.master.get(), TIOCSPTLCK, &zero);
  p.slave.reset(ioctl(p.master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK));
  return p;
}

// Reads what |fd| has now; "" on EAGAIN, "<0>" for a read of 0 bytes.
std::string ReadOnce(int fd) {
  char buf[256];
  for (int i = 0; i < 200; ++i) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n > 0) return std::string(buf, static_cast<size_t>(n));
    if (n == 0) return "<0>";
    usleep(1000);  // a write to the master reaches the slave a moment later
  }
  return "";
}

TEST(TtyState, QueuedBytesMoveToANewPairUnchanged) {
  Pair a = OpenPair();
  if (!a.slave.valid()) GTEST_SKIP() << "no pseudo-terminals here";
  termios t;
  ASSERT_EQ(tcgetattr(a.slave.get(), &t), 0);
  t.c_lflag &= ~ECHO;  // only what the slave writes comes back to the master
  ASSERT_EQ(tcsetattr(a.slave.get(), TCSANOW, &t), 0);
  // Typed: "one\n", "two" ended by ^D, ^D alone, "part" not finished.
  const std::string typed = std::string("one\ntwo") + '\x04' + '\x04' + "part";
  ASSERT_EQ(write(a.master.get(), typed.data(), typed.size()), static_cast<ssize_t>(typed.size()));
  ASSERT_EQ(write(a.slave.get(), "x\n", 2), 2);  // the master reads "x\r\n"
  usleep(20000);

  img::TtyPair saved;
  ASSERT_TRUE(ReadTermios(a.slave.get(), saved.mutable_termios()).ok());
  ASSERT_TRUE(TakeQueued(a.master.get(), a.slave.get(), &saved).ok());
  ASSERT_EQ(saved.input_lines_size(), 3);
  EXPECT_EQ(saved.input_lines(0), "one\n");
  EXPECT_EQ(saved.input_lines(1), "two");
  EXPECT_EQ(saved.input_lines(2), "");
  EXPECT_EQ(saved.input_tail(), "part");
  EXPECT_EQ(saved.output(), "x\r\n");
  // Taken: the old pair is empty, in canonical mode still.
  EXPECT_EQ(ReadOnce(a.master.get()), "");
  ASSERT_EQ(tcgetattr(a.slave.get(), &t), 0);
  EXPECT_TRUE(t.c_lflag & ICANON);

  Pair b = OpenPair();
  ASSERT_TRUE(b.slave.valid());
  ASSERT_TRUE(ApplyTermios(b.slave.get(), saved.termios()).ok());
  Status put = PutQueued(b.slave.get(), saved);
  if (!put.ok() && (put.err() == EPERM || put.err() == EIO)) GTEST_SKIP() << "no TIOCSTI here: " << put.ToString();
  ASSERT_TRUE(put.ok()) << put.ToString();
  EXPECT_EQ(ReadOnce(b.master.get()), "x\r\n");
  EXPECT_EQ(ReadOnce(b.slave.get()), "one\n");
  EXPECT_EQ(ReadOnce(b.slave.get()), "two");
  EXPECT_EQ(ReadOnce(b.slave.get()), "<0>");
  termios raw;
  ASSERT_EQ(tcgetattr(b.slave.get(), &raw), 0);
  EXPECT_EQ(raw.c_lflag, saved.termios().lflag());  // the settings are back
  raw.c_lflag &= ~ICANON;
  raw.c_cc[VMIN] = 0;
  raw.c_cc[VTIME] = 0;
  ASSERT_EQ(tcsetattr(b.slave.get(), TCSANOW, &raw), 0);
  EXPECT_EQ(ReadOnce(b.slave.get()), "part");
}

}  // namespace
}  // namespace cf::kinds
