// The per-kind readers of the shared-files pass, on real objects of this
// process: what they read, and that they leave every byte where it was.
#include "engine/shared_files.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <tuple>

#include "common/fd.h"

namespace cf::engine {
namespace {

uint64_t Inode(int fd) {
  struct stat sb;
  EXPECT_EQ(fstat(fd, &sb), 0);
  return sb.st_ino;
}

std::string Bytes(size_t n, int seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i * 7 + seed);
  return s;
}

TEST(ReadPipeTest, CopiesQueuedBytesWithoutConsumingThem) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  UniqueFd r(p[0]), w(p[1]);
  ASSERT_GT(fcntl(w.get(), F_SETPIPE_SZ, 256 << 10), 0);
  const std::string data = Bytes(200000, 3);
  ASSERT_EQ(write(w.get(), data.data(), data.size()), static_cast<ssize_t>(data.size()));
  // Through the read end (pidfd_getfd) and through the write end (/proc).
  for (int fd : {r.get(), w.get()}) {
    img::Pipe pipe;
    const uint32_t flags = fd == r.get() ? O_RDONLY : O_WRONLY;
    ASSERT_TRUE(ReadPipe(getpid(), fd, flags, &pipe).ok());
    EXPECT_EQ(pipe.size(), 256u << 10);
    EXPECT_EQ(pipe.data(), data);
  }
  int queued = 0;
  ASSERT_EQ(ioctl(r.get(), FIONREAD, &queued), 0);
  EXPECT_EQ(queued, static_cast<int>(data.size()));
  std::string back(data.size(), '\0');
  ASSERT_EQ(read(r.get(), back.data(), back.size()), static_cast<ssize_t>(back.size()));
  EXPECT_EQ(back, data);
}

TEST(ReadPipeTest, EmptyPipe) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  UniqueFd r(p[0]), w(p[1]);
  img::Pipe pipe;
  ASSERT_TRUE(ReadPipe(getpid(), r.get(), O_RDONLY, &pipe).ok());
  EXPECT_EQ(pipe.size(), 65536u);
  EXPECT_TRUE(pipe.data().empty());
}

TEST(UnixSocketTest, DiagSeesPairAndShutdown) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  ASSERT_EQ(shutdown(a.get(), SHUT_WR), 0);
  auto ia = QueryUnixSocket(Inode(a.get()));
  auto ib = QueryUnixSocket(Inode(b.get()));
  ASSERT_TRUE(ia.ok()) << ia.status().ToString();
  ASSERT_TRUE(ib.ok()) << ib.status().ToString();
  EXPECT_EQ(ia->type, static_cast<uint32_t>(SOCK_STREAM));
  EXPECT_TRUE(ia->connected);
  EXPECT_TRUE(ia->name.empty());
  EXPECT_EQ(ia->peer, Inode(b.get()));
  EXPECT_EQ(ib->peer, Inode(a.get()));
  EXPECT_EQ(ia->shutdown, 2u);  // SEND_SHUTDOWN
  EXPECT_EQ(ib->shutdown, 1u);  // RCV_SHUTDOWN, mirrored
}

TEST(UnixSocketTest, NoSuchSocket) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  const uint64_t ino = Inode(sv[0]);
  close(sv[0]);
  close(sv[1]);
  auto r = QueryUnixSocket(ino);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().err(), ENOENT);
}

// Datagrams keep their boundaries (an empty one included), the queue stays,
// and the socket's own peek offset is put back.
TEST(UnixSocketTest, DatagramQueueMessageByMessage) {
  for (int type : {SOCK_DGRAM, SOCK_SEQPACKET}) {
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, type, 0, sv), 0);
    UniqueFd a(sv[0]), b(sv[1]);
    const std::string msgs[] = {Bytes(10, 1), "", Bytes(5000, 2), Bytes(1, 3)};
    for (const std::string& m : msgs) ASSERT_EQ(send(a.get(), m.data(), m.size(), 0), static_cast<ssize_t>(m.size()));
    const int peek_off = 3;
    ASSERT_EQ(setsockopt(b.get(), SOL_SOCKET, SO_PEEK_OFF, &peek_off, sizeof(peek_off)), 0);
    auto info = QueryUnixSocket(Inode(b.get()));
    ASSERT_TRUE(info.ok());
    img::UnixEnd end;
    Status s = ReadUnixEnd(b.get(), *info, &end);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_EQ(end.queue_size(), 4) << "type " << type;
    for (int i = 0; i < 4; ++i) EXPECT_EQ(end.queue(i), msgs[i]) << "type " << type << " message " << i;
    EXPECT_EQ(end.peek_off(), 3);
    int now = 0;
    socklen_t len = sizeof(now);
    ASSERT_EQ(getsockopt(b.get(), SOL_SOCKET, SO_PEEK_OFF, &now, &len), 0);
    EXPECT_EQ(now, 3);
    const int off = -1;
    ASSERT_EQ(setsockopt(b.get(), SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off)), 0);
    char buf[8192];
    for (const std::string& m : msgs) {
      ASSERT_EQ(recv(b.get(), buf, sizeof(buf), MSG_DONTWAIT), static_cast<ssize_t>(m.size()));
      EXPECT_EQ(std::string(buf, m.size()), m);
    }
  }
}

TEST(UnixSocketTest, StreamQueueWhole) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  const std::string data = Bytes(150000, 5);
  for (size_t off = 0; off < data.size(); off += 30000) {
    ASSERT_EQ(send(a.get(), data.data() + off, 30000, 0), 30000);
  }
  ASSERT_EQ(shutdown(a.get(), SHUT_WR), 0);
  auto info = QueryUnixSocket(Inode(b.get()));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->rqueue, data.size());
  img::UnixEnd end;
  Status s = ReadUnixEnd(b.get(), *info, &end);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(end.queue_size(), 1);
  EXPECT_EQ(end.queue(0), data);
  EXPECT_EQ(end.peek_off(), -1);
  EXPECT_EQ(end.shutdown(), 1u);
  int queued = 0;
  ASSERT_EQ(ioctl(b.get(), FIONREAD, &queued), 0);
  EXPECT_EQ(queued, static_cast<int>(data.size()));
}

TEST(UnixSocketTest, RefusesDescriptorsInFlight) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  int passed = a.get();
  char cbuf[CMSG_SPACE(sizeof(int))] = {};
  iovec iov{const_cast<char*>("x"), 1};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf;
  msg.msg_controllen = sizeof(cbuf);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &passed, sizeof(int));
  ASSERT_EQ(sendmsg(a.get(), &msg, 0), 1);
  auto info = QueryUnixSocket(Inode(b.get()));
  ASSERT_TRUE(info.ok());
  img::UnixEnd end;
  Status s = ReadUnixEnd(b.get(), *info, &end);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("SCM_RIGHTS"), std::string::npos) << s.ToString();
}

TEST(EventFdTest, CounterAndSemaphore) {
  UniqueFd counter(eventfd(0, EFD_NONBLOCK));
  UniqueFd sem(eventfd(5, EFD_SEMAPHORE));
  ASSERT_TRUE(counter.valid() && sem.valid());
  const uint64_t big = 0x123456789ull;
  ASSERT_EQ(write(counter.get(), &big, 8), 8);
  for (auto [fd, count, semaphore] :
       {std::tuple{counter.get(), big, false}, std::tuple{sem.get(), uint64_t{5}, true}}) {
    auto info = ReadFdInfo(getpid(), fd);
    ASSERT_TRUE(info.ok());
    img::Fd f;
    ASSERT_TRUE(ReadEventFd(getpid(), fd, *info, &f).ok());
    EXPECT_EQ(f.eventfd_count(), count);
    EXPECT_EQ(f.eventfd_semaphore(), semaphore);
  }
  // Without the eventfd-semaphore line (older kernels) one read tells.
  auto info = ReadFdInfo(getpid(), sem.get());
  ASSERT_TRUE(info.ok());
  std::erase_if(info->extra, [](const auto& kv) { return kv.first == "eventfd-semaphore"; });
  img::Fd f;
  ASSERT_TRUE(ReadEventFd(getpid(), sem.get(), *info, &f).ok());
  EXPECT_TRUE(f.eventfd_semaphore());
  // ... and puts the counter back.
  auto after = ReadFdInfo(getpid(), sem.get());
  ASSERT_TRUE(after.ok());
  img::Fd g;
  ASSERT_TRUE(ReadEventFd(getpid(), sem.get(), *after, &g).ok());
  EXPECT_EQ(g.eventfd_count(), 5u);
  uint64_t v = 0;
  ASSERT_EQ(read(counter.get(), &v, 8), 8);
  EXPECT_EQ(v, big);
}

}  // namespace
}  // namespace cf::engine
