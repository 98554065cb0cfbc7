// Planning shared objects (owners, checks) and creating each kind in this
// process from hand-made image records.
#include "restore/shared_files.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace cf::restore {
namespace {

img::Fd* AddFd(img::Process* p, int fd, img::Fd::KindCase kind, uint64_t inode, uint32_t file_id, uint32_t flags) {
  img::Fd* f = p->add_fds();
  f->set_fd(fd);
  f->GetReflection()->MutableMessage(f, f->GetDescriptor()->FindFieldByNumber(kind));
  f->set_dev(9);
  f->set_inode(inode);
  f->set_file_id(file_id);
  f->set_flags(flags);
  return f;
}

//   1 ─┬─ 2 ── 3
//      └─ 4
ImageSet Tree() {
  ImageSet set;
  for (auto [pid, ppid] : {std::pair{1, 0}, {2, 1}, {3, 2}, {4, 1}}) {
    ProcessImages p;
    p.core.set_pid(pid);
    p.core.set_ppid(ppid);
    set.processes.push_back(std::move(p));
  }
  return set;
}

img::Process& Core(ImageSet& set, int pid) { return set.processes[static_cast<size_t>(pid - 1)].core; }

// Creates |obj| by the kind of its first description, as its owner would.
Status Create(SharedObject& obj, CreatedFiles* out) {
  obj.kind = kinds::KindOf(*obj.files.begin()->second);
  kinds::RestoreContext ctx;
  return obj.kind->Create(obj, ctx, out);
}

const SharedObject* Find(const SharedFilePlan& plan, uint32_t file_id) {
  for (const SharedObject& o : plan.objects) {
    if (o.files.count(file_id)) return &o;
  }
  return nullptr;
}

TEST(PlanSharedFilesTest, OwnerIsTheLowestCommonAncestor) {
  ImageSet set = Tree();
  img::Pipe* p = Core(set, 3).add_file_objects()->mutable_pipe();  // saved with the first holder
  p->set_dev(9);
  p->set_inode(100);
  AddFd(&Core(set, 3), 5, img::Fd::kPipe, 100, 1, O_RDONLY);
  AddFd(&Core(set, 4), 7, img::Fd::kPipe, 100, 2, O_WRONLY);
  img::Pipe* q = Core(set, 2).add_file_objects()->mutable_pipe();
  q->set_dev(9);
  q->set_inode(101);
  AddFd(&Core(set, 2), 3, img::Fd::kPipe, 101, 3, O_RDONLY);
  AddFd(&Core(set, 3), 3, img::Fd::kPipe, 101, 3, O_RDONLY);
  AddFd(&Core(set, 3), 4, img::Fd::kPipe, 101, 3, O_RDONLY);  // dup in the same process
  AddFd(&Core(set, 4), 12, img::Fd::kEventfd, 7, 5, O_RDWR);
  AddFd(&Core(set, 4), 13, img::Fd::kEventfd, 7, 6, O_RDWR);
  AddFd(&Core(set, 1), 4, img::Fd::kReg, 55, 0, O_RDONLY);  // not shared: no file id

  auto plan = PlanSharedFiles(set);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->objects.size(), 4u);
  EXPECT_EQ(plan->temp_base, 14);
  const SharedObject* pp = Find(*plan, 1);
  ASSERT_NE(pp, nullptr);
  EXPECT_EQ(pp, Find(*plan, 2));
  EXPECT_EQ(pp->owner, 1);
  EXPECT_EQ(&pp->object->pipe(), p);
  EXPECT_EQ(pp->files.size(), 2u);
  const SharedObject* qq = Find(*plan, 3);
  ASSERT_NE(qq, nullptr);
  EXPECT_EQ(qq->owner, 2);
  EXPECT_EQ(qq->files.size(), 1u);
  const SharedObject* e5 = Find(*plan, 5);
  const SharedObject* e6 = Find(*plan, 6);
  ASSERT_TRUE(e5 && e6);
  EXPECT_NE(e5, e6);
  EXPECT_STREQ(e5->kind->name(), "eventfd");
  EXPECT_EQ(e5->owner, 4);
}

TEST(PlanSharedFilesTest, SharedRegularFileIsOpenedByTheCommonAncestor) {
  ImageSet set = Tree();
  AddFd(&Core(set, 3), 5, img::Fd::kReg, 55, 8, O_RDWR);
  AddFd(&Core(set, 4), 6, img::Fd::kReg, 55, 8, O_RDWR);
  AddFd(&Core(set, 4), 7, img::Fd::kDir, 56, 9, O_RDONLY);
  AddFd(&Core(set, 2), 7, img::Fd::kDir, 56, 9, O_RDONLY);
  auto plan = PlanSharedFiles(set);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->objects.size(), 2u);
  const SharedObject* f = Find(*plan, 8);
  const SharedObject* d = Find(*plan, 9);
  ASSERT_TRUE(f && d);
  EXPECT_STREQ(f->kind->name(), "regular file");
  EXPECT_EQ(f->owner, 1);
  EXPECT_STREQ(d->kind->name(), "directory");
  EXPECT_EQ(d->owner, 1);
}

// A pipe's read end in flight in process 3's socket pair while process 4
// holds the write end (zdtm scm00 across processes): the pipe's creator
// makes the in-flight description too, and is an ancestor of the pair's.
TEST(PlanSharedFilesTest, InFlightDescriptionOfATreePipe) {
  ImageSet set = Tree();
  img::Pipe* p = Core(set, 4).add_file_objects()->mutable_pipe();
  p->set_dev(9);
  p->set_inode(100);
  AddFd(&Core(set, 4), 5, img::Fd::kPipe, 100, 1, O_WRONLY);
  img::UnixPair* pair = Core(set, 3).add_file_objects()->mutable_unix_pair();
  pair->set_type(SOCK_DGRAM);
  pair->mutable_a()->set_inode(200);
  img::Fd* in_flight = pair->add_flight_fds();
  in_flight->mutable_pipe();
  in_flight->set_dev(9);
  in_flight->set_inode(100);
  in_flight->set_flags(O_RDONLY);
  in_flight->set_file_id(1);       // within the pair
  in_flight->set_tree_file_id(7);  // in the tree
  AddFd(&Core(set, 3), 6, img::Fd::kUnixSocket, 200, 2, O_RDWR);

  auto plan = PlanSharedFiles(set);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->objects.size(), 2u);
  const SharedObject* pipe = Find(*plan, 1);
  ASSERT_NE(pipe, nullptr);
  EXPECT_EQ(pipe, Find(*plan, 7));
  EXPECT_EQ(pipe->owner, 1);  // the common ancestor of 4 and the pair's creator
  EXPECT_TRUE(pipe->needs.empty());
  const SharedObject* sock = Find(*plan, 2);
  ASSERT_NE(sock, nullptr);
  EXPECT_EQ(sock->owner, 3);
  EXPECT_EQ(sock->needs, std::vector<uint32_t>{7});

  // The in-flight description must name an object of the tree.
  in_flight->set_inode(101);
  in_flight->set_tree_file_id(8);
  EXPECT_FALSE(PlanSharedFiles(set).ok());
}

TEST(CreateSharedFileTest, OpensWithFlagsAndOffset) {
  char path[] = "/tmp/cf-shared-file-XXXXXX";
  UniqueFd tmp(mkstemp(path));
  ASSERT_TRUE(tmp.valid());
  ASSERT_EQ(write(tmp.get(), "0123456789", 10), 10);
  img::Fd f;
  f.set_fd(5);
  f.mutable_reg();
  f.set_path(path);
  f.set_flags(O_RDWR | O_APPEND);
  f.set_pos(4);
  f.set_file_id(3);
  SharedObject obj;
  obj.files[3] = &f;
  CreatedFiles out;
  ASSERT_TRUE(Create(obj, &out).ok());
  ASSERT_EQ(out.size(), 1u);
  const int fd = out[3].get();
  EXPECT_EQ(lseek(fd, 0, SEEK_CUR), 4);
  EXPECT_TRUE(fcntl(fd, F_GETFL) & O_APPEND);
  f.set_path(std::string(path) + ".missing");
  CreatedFiles none;
  EXPECT_FALSE(Create(obj, &none).ok());
  unlink(path);
}

TEST(PlanSharedFilesTest, MissingPipe) {
  ImageSet set = Tree();
  AddFd(&Core(set, 2), 3, img::Fd::kPipe, 100, 1, O_RDONLY);
  auto plan = PlanSharedFiles(set);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("not in the image"), std::string::npos) << plan.status().ToString();
}

TEST(PlanSharedFilesTest, OneFileTwoObjects) {
  ImageSet set = Tree();
  for (uint64_t ino : {100, 101}) {
    img::Pipe* p = Core(set, 1).add_file_objects()->mutable_pipe();
    p->set_dev(9);
    p->set_inode(ino);
  }
  AddFd(&Core(set, 1), 3, img::Fd::kPipe, 100, 1, O_RDONLY);
  AddFd(&Core(set, 1), 4, img::Fd::kPipe, 101, 1, O_RDONLY);
  EXPECT_FALSE(PlanSharedFiles(set).ok());
}

TEST(PlanSharedFilesTest, PipeSavedTwice) {
  ImageSet set = Tree();
  for (int pid : {1, 2}) {
    img::Pipe* p = Core(set, pid).add_file_objects()->mutable_pipe();
    p->set_dev(9);
    p->set_inode(100);
  }
  AddFd(&Core(set, 1), 3, img::Fd::kPipe, 100, 1, O_RDONLY);
  EXPECT_FALSE(PlanSharedFiles(set).ok());
}

std::string ReadAvailable(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

TEST(CreateSharedFilesTest, PipeWithDataAndThreeDescriptions) {
  img::Pipe pipe;
  pipe.set_inode(100);
  pipe.set_size(256 << 10);
  std::string data(150000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 13);
  pipe.set_data(data);
  img::Process core;
  AddFd(&core, 3, img::Fd::kPipe, 100, 1, O_RDONLY | O_NONBLOCK);
  AddFd(&core, 4, img::Fd::kPipe, 100, 2, O_WRONLY);
  AddFd(&core, 5, img::Fd::kPipe, 100, 3, O_RDONLY);  // a second read description
  img::FileObject object;
  *object.mutable_pipe() = pipe;
  SharedObject obj;
  obj.object = &object;
  for (const img::Fd& f : core.fds()) obj.files[f.file_id()] = &f;
  CreatedFiles out;
  Status s = Create(obj, &out);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(fcntl(out[1].get(), F_GETFL) & (O_ACCMODE | O_NONBLOCK), O_RDONLY | O_NONBLOCK);
  EXPECT_EQ(fcntl(out[2].get(), F_GETFL) & (O_ACCMODE | O_NONBLOCK), O_WRONLY);
  EXPECT_EQ(fcntl(out[3].get(), F_GETFL) & (O_ACCMODE | O_NONBLOCK), O_RDONLY);
  EXPECT_EQ(fcntl(out[1].get(), F_GETPIPE_SZ), 256 << 10);
  struct stat a, b;
  ASSERT_EQ(fstat(out[1].get(), &a), 0);
  ASSERT_EQ(fstat(out[3].get(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);  // one pipe
  EXPECT_EQ(ReadAvailable(out[1].get()), data);
  ASSERT_EQ(write(out[2].get(), "z", 1), 1);
  char c = 0;
  ASSERT_EQ(read(out[3].get(), &c, 1), 1);
  EXPECT_EQ(c, 'z');
}

TEST(CreateSharedFilesTest, SocketPairQueuesAndClosedEnd) {
  img::UnixPair pair;
  pair.set_type(SOCK_SEQPACKET);
  pair.mutable_a()->set_inode(200);
  pair.mutable_a()->set_shutdown(3);
  pair.mutable_a()->set_peek_off(-1);
  pair.mutable_a()->add_queue("first");
  pair.mutable_a()->add_queue("");
  pair.mutable_a()->add_queue(std::string(3000, 'x'));
  img::Process core;
  AddFd(&core, 3, img::Fd::kUnixSocket, 200, 1, O_RDWR | O_NONBLOCK);
  img::FileObject object;
  *object.mutable_unix_pair() = pair;
  SharedObject obj;
  obj.object = &object;
  obj.files[1] = &core.fds(0);
  CreatedFiles out;
  Status s = Create(obj, &out);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(out.size(), 1u);
  const int fd = out[1].get();
  EXPECT_TRUE(fcntl(fd, F_GETFL) & O_NONBLOCK);
  char buf[4096];
  EXPECT_EQ(recv(fd, buf, sizeof(buf), 0), 5);
  EXPECT_EQ(recv(fd, buf, sizeof(buf), 0), 0);
  EXPECT_EQ(recv(fd, buf, sizeof(buf), 0), 3000);
  EXPECT_EQ(recv(fd, buf, sizeof(buf), 0), 0);  // the end: the peer is closed
  pollfd p{fd, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 0), 1);
  EXPECT_TRUE(p.revents & POLLHUP);
}

TEST(CreateSharedFilesTest, EventFd) {
  img::Process core;
  img::Fd* f = AddFd(&core, 3, img::Fd::kEventfd, 1, 1, O_RDWR);
  f->mutable_eventfd()->set_count(0x100000002ull);
  f->mutable_eventfd()->set_semaphore(true);
  SharedObject obj;
  obj.files[1] = f;
  CreatedFiles out;
  ASSERT_TRUE(Create(obj, &out).ok());
  const int fd = out[1].get();
  EXPECT_FALSE(fcntl(fd, F_GETFL) & O_NONBLOCK);
  uint64_t v = 0;
  ASSERT_EQ(read(fd, &v, 8), 8);
  EXPECT_EQ(v, 1u);  // a semaphore
  char path[64];
  snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
  FILE* fi = fopen(path, "r");
  ASSERT_NE(fi, nullptr);
  char line[256];
  bool seen = false;
  while (fgets(line, sizeof(line), fi)) {
    unsigned long long c;
    if (sscanf(line, "eventfd-count: %llx", &c) == 1) {
      EXPECT_EQ(c, 0x100000001ull);
      seen = true;
    }
  }
  fclose(fi);
  EXPECT_TRUE(seen);
}

TEST(PlanSharedFilesTest, DescriptionKinds) {
  ImageSet set = Tree();
  AddFd(&Core(set, 2), 5, img::Fd::kTimerfd, 7, 1, O_RDWR);
  AddFd(&Core(set, 3), 5, img::Fd::kTimerfd, 7, 1, O_RDWR);
  AddFd(&Core(set, 3), 6, img::Fd::kSignalfd, 7, 2, O_RDWR);
  AddFd(&Core(set, 4), 6, img::Fd::kInotify, 7, 3, O_RDONLY);
  AddFd(&Core(set, 3), 7, img::Fd::kEpoll, 7, 4, O_RDWR);
  AddFd(&Core(set, 4), 7, img::Fd::kEpoll, 7, 4, O_RDWR);
  auto plan = PlanSharedFiles(set);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->objects.size(), 4u);
  EXPECT_STREQ(Find(*plan, 1)->kind->name(), "timerfd");
  EXPECT_EQ(Find(*plan, 1)->owner, 2);
  EXPECT_STREQ(Find(*plan, 2)->kind->name(), "signalfd");
  EXPECT_STREQ(Find(*plan, 3)->kind->name(), "inotify instance");
  EXPECT_STREQ(Find(*plan, 4)->kind->name(), "epoll instance");
  EXPECT_EQ(Find(*plan, 4)->owner, 1);
}

uint64_t ReadU64(int fd) {
  uint64_t v = 0;
  return read(fd, &v, 8) == 8 ? v : ~0ull;
}

TEST(CreateSharedFilesTest, TimerFdExactTicks) {
  img::Process core;
  img::Fd* f = AddFd(&core, 3, img::Fd::kTimerfd, 1, 1, O_RDWR | O_NONBLOCK);
  f->mutable_timerfd()->set_clockid(CLOCK_MONOTONIC);
  f->mutable_timerfd()->set_ticks(5);
  f->mutable_timerfd()->set_value_ns(500ull * 1000000000);
  f->mutable_timerfd()->set_interval_ns(1000ull * 1000000000);
  SharedObject obj;
  obj.files[1] = f;
  CreatedFiles out;
  ASSERT_TRUE(Create(obj, &out).ok());
  const int fd = out[1].get();
  EXPECT_TRUE(fcntl(fd, F_GETFL) & O_NONBLOCK);
  itimerspec its{};
  ASSERT_EQ(timerfd_gettime(fd, &its), 0);
  EXPECT_EQ(its.it_interval.tv_sec, 1000);
  EXPECT_GT(its.it_value.tv_sec, 498);
  EXPECT_LE(its.it_value.tv_sec, 500);
  EXPECT_EQ(ReadU64(fd), 5u);
  EXPECT_EQ(ReadU64(fd), ~0ull);  // EAGAIN: nothing more
}

TEST(CreateSharedFilesTest, TimerFdExpiredOneShotIsDisarmed) {
  img::Process core;
  img::Fd* f = AddFd(&core, 3, img::Fd::kTimerfd, 1, 1, O_RDWR | O_NONBLOCK);
  f->mutable_timerfd()->set_clockid(CLOCK_REALTIME);
  f->mutable_timerfd()->set_ticks(1);
  SharedObject obj;
  obj.files[1] = f;
  CreatedFiles out;
  ASSERT_TRUE(Create(obj, &out).ok());
  itimerspec its{};
  ASSERT_EQ(timerfd_gettime(out[1].get(), &its), 0);
  EXPECT_EQ(its.it_value.tv_sec, 0);
  EXPECT_EQ(its.it_value.tv_nsec, 0);
  EXPECT_EQ(ReadU64(out[1].get()), 1u);
}

TEST(CreateSharedFilesTest, InotifySameWatchDescriptors) {
  char dir[] = "/tmp/cf-inotify-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string file = std::string(dir) + "/f";
  close(open(file.c_str(), O_WRONLY | O_CREAT, 0644));
  struct stat ds, fs;
  ASSERT_EQ(stat(dir, &ds), 0);
  ASSERT_EQ(stat(file.c_str(), &fs), 0);
  img::Process core;
  img::Fd* f = AddFd(&core, 3, img::Fd::kInotify, 1, 1, O_RDONLY | O_NONBLOCK);
  auto add = [&](uint32_t wd, const std::string& path, const struct stat& sb, uint32_t mask) {
    img::InotifyWatch* w = f->mutable_inotify()->add_watches();
    w->set_wd(wd);
    w->set_path(path);
    w->set_mask(mask);
    w->set_dev(sb.st_dev);
    w->set_inode(sb.st_ino);
  };
  add(3, dir, ds, IN_CREATE);
  add(7, file, fs, IN_MODIFY);
  SharedObject obj;
  obj.files[1] = f;
  CreatedFiles out;
  Status s = Create(obj, &out);
  ASSERT_TRUE(s.ok()) << s.ToString();
  const int fd = out[1].get();
  char buf[256];
  EXPECT_LT(read(fd, buf, sizeof(buf)), 0);  // the IN_IGNORED of removed watches are gone
  int w = open(file.c_str(), O_WRONLY);
  ASSERT_EQ(write(w, "x", 1), 1);
  close(w);
  alignas(inotify_event) char ev[256];
  ASSERT_GT(read(fd, ev, sizeof(ev)), 0);
  EXPECT_EQ(reinterpret_cast<inotify_event*>(ev)->wd, 7);
  EXPECT_EQ(reinterpret_cast<inotify_event*>(ev)->mask, static_cast<uint32_t>(IN_MODIFY));
  unlink(file.c_str());
  rmdir(dir);
}

TEST(CreateSharedFilesTest, SignalFdAndEpollTargets) {
  img::Process core;
  img::Fd* s = AddFd(&core, 3, img::Fd::kSignalfd, 1, 1, O_RDWR | O_NONBLOCK);
  s->mutable_signalfd()->set_mask(1ull << (SIGUSR2 - 1));
  SharedObject sobj;
  sobj.files[1] = s;
  CreatedFiles out;
  ASSERT_TRUE(Create(sobj, &out).ok());
  const int sfd = out[1].get();
  EXPECT_TRUE(fcntl(sfd, F_GETFL) & O_NONBLOCK);

  img::Fd* e = AddFd(&core, 4, img::Fd::kEpoll, 1, 2, O_RDWR);
  SharedObject eobj;
  eobj.files[2] = e;
  ASSERT_TRUE(Create(eobj, &out).ok());
  e->set_fd(out[2].get());  // as if placed at its number
  img::EpollTarget* t = e->mutable_epoll()->add_targets();
  UniqueFd ev(eventfd(1, 0));
  t->set_tfd(ev.get());
  t->set_events(EPOLLIN | EPOLLET | EPOLLERR | EPOLLHUP);
  t->set_data(0xabcdef0123456789ull);
  kinds::RestoreContext ctx;
  ASSERT_TRUE(kinds::KindOf(*e)->AfterPlacement(*e, ctx).ok());
  epoll_event got{};
  ASSERT_EQ(epoll_wait(e->fd(), &got, 1, 0), 1);
  EXPECT_EQ(got.data.u64, 0xabcdef0123456789ull);
  EXPECT_EQ(epoll_wait(e->fd(), &got, 1, 0), 0);  // edge-triggered: once
  t->set_tfd(9999);  // not open
  EXPECT_FALSE(kinds::KindOf(*e)->AfterPlacement(*e, ctx).ok());
}

}  // namespace
}  // namespace cf::restore
