#include "proc/fdinfo_kinds.h"

#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <csignal>
#include <string>

#include "common/fd.h"

namespace cf::proc {
namespace {

// Texts as this kernel prints them.
constexpr char kTimer[] =
    "pos:\t0\nflags:\t04002\nmnt_id:\t17\nino:\t1039\nclockid: 1\nticks: 8\nsettime flags: 03\n"
    "it_value: (0, 22806462)\nit_interval: (1000, 5)\n";
constexpr char kSignal[] = "pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1039\nsigmask:\t0000000000000801\n";
constexpr char kInotify[] =
    "pos:\t0\nflags:\t00\nmnt_id:\t17\nino:\t1039\n"
    "inotify wd:1a ino:35d sdev:fe00000 mask:84000002 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 "
    "f_handle:5d03000000000000\n"
    "inotify wd:2 ino:3c51a sdev:800001 mask:100 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 "
    "f_handle:1ac5030000000000\n";
constexpr char kEpoll[] =
    "pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1039\n"
    "tfd:        7 events: 80000019 data:  123456789abcdef  pos:0 ino:40f sdev:10\n"
    "tfd:       12 events:       19 data:                0  pos:0 ino:40f sdev:10\n";

FdInfo Parse(const char* text) {
  auto r = ParseFdInfo(text);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : FdInfo{};
}

TEST(FdInfoKinds, Timer) {
  auto t = ParseTimerFdInfo(Parse(kTimer));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->clockid, 1);
  EXPECT_EQ(t->ticks, 8u);
  EXPECT_EQ(t->settime_flags, 3u);
  EXPECT_EQ(t->value_ns, 22806462u);
  EXPECT_EQ(t->interval_ns, 1000000000005ull);
}

TEST(FdInfoKinds, TimerBadOrMissing) {
  std::string bad = kTimer;
  bad.replace(bad.find("(1000, 5)"), 9, "(1000 5)");
  EXPECT_FALSE(ParseTimerFdInfo(Parse(bad.c_str())).ok());
  EXPECT_FALSE(ParseTimerFdInfo(Parse(kSignal)).ok());
}

TEST(FdInfoKinds, Signal) {
  auto m = ParseSignalFdMask(Parse(kSignal));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(*m, 0x801u);
  EXPECT_FALSE(ParseSignalFdMask(Parse(kTimer)).ok());
}

TEST(FdInfoKinds, InotifySortedByWd) {
  auto w = ParseInotifyWatches(Parse(kInotify));
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  ASSERT_EQ(w->size(), 2u);
  EXPECT_EQ((*w)[0].wd, 2u);
  EXPECT_EQ((*w)[0].ino, 0x3c51au);
  EXPECT_EQ((*w)[0].sdev, 0x800001u);
  EXPECT_EQ((*w)[0].mask, 0x100u);
  EXPECT_EQ((*w)[1].wd, 0x1au);
  EXPECT_EQ((*w)[1].mask, 0x84000002u);
  EXPECT_EQ((*w)[1].fhandle_type, 1);
  EXPECT_EQ((*w)[1].fhandle, std::string("\x5d\x03\0\0\0\0\0\0", 8));
}

TEST(FdInfoKinds, InotifyBad) {
  std::string bad = kInotify;
  bad.replace(bad.find("f_handle:5d03"), 13, "f_handle:5d0");  // odd length
  EXPECT_FALSE(ParseInotifyWatches(Parse(bad.c_str())).ok());
}

TEST(FdInfoKinds, Epoll) {
  auto t = ParseEpollTargets(Parse(kEpoll));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->size(), 2u);
  EXPECT_EQ((*t)[0].tfd, 7);
  EXPECT_EQ((*t)[0].events, 0x80000019u);
  EXPECT_EQ((*t)[0].data, 0x123456789abcdefull);
  EXPECT_EQ((*t)[0].ino, 0x40fu);
  EXPECT_EQ((*t)[1].tfd, 12);
  EXPECT_EQ((*t)[1].data, 0u);
}

TEST(FdInfoKinds, EpollBad) {
  std::string bad = kEpoll;
  bad.replace(bad.find("data:  1234"), 11, "data:  zz34");
  EXPECT_FALSE(ParseEpollTargets(Parse(bad.c_str())).ok());
}

// The live kernel's fdinfo of real objects parses, with the values we set.
FdInfo Info(const std::string& lines) { return Parse(("pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1039\n" + lines).c_str()); }

TEST(FdInfoKinds, Fanotify) {
  auto f = ParseFanotify(Info(
      "fanotify flags:10 event-flags:8000\n"
      "fanotify ino:35d sdev:fe00001 mflags:0 mask:3b ignored_mask:0 fhandle-bytes:8 fhandle-type:1 "
      "f_handle:5d0300000a0b0c0d\n"
      "fanotify mnt_id:1a mflags:40 mask:40000030 ignored_mask:3\n"));
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->flags, 0x10u);
  EXPECT_EQ(f->event_flags, 0x8000u);
  ASSERT_EQ(f->marks.size(), 2u);
  EXPECT_EQ(f->marks[0].kind, FanotifyMarkInfo::kInode);
  EXPECT_EQ(f->marks[0].ino, 0x35du);
  EXPECT_EQ(f->marks[0].sdev, 0xfe00001u);
  EXPECT_EQ(f->marks[0].mask, 0x3bu);
  EXPECT_EQ(f->marks[0].fhandle_type, 1);
  EXPECT_EQ(f->marks[0].fhandle, std::string("\x5d\x03\x00\x00\x0a\x0b\x0c\x0d", 8));
  EXPECT_EQ(f->marks[1].kind, FanotifyMarkInfo::kMount);
  EXPECT_EQ(f->marks[1].mnt_id, 0x1au);
  EXPECT_EQ(f->marks[1].mflags, 0x40u);
  EXPECT_EQ(f->marks[1].mask, 0x40000030u);
  EXPECT_EQ(f->marks[1].ignored_mask, 3u);
}

TEST(FdInfoKinds, FanotifyBad) {
  EXPECT_FALSE(ParseFanotify(Info("fanotify mnt_id:1a mflags:40 mask:30 ignored_mask:3\n")).ok());  // no flags line
  EXPECT_FALSE(ParseFanotify(Info("fanotify flags:10 event-flags:0\nfanotify mnt_id:zz mflags:0 mask:1 ignored_mask:0\n")).ok());
  EXPECT_FALSE(ParseFanotify(Info("fanotify flags:10\n")).ok());
}

TEST(FdInfoKinds, LiveObjects) {
  UniqueFd tfd(timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK));
  itimerspec its{{2, 0}, {100, 0}};
  ASSERT_EQ(timerfd_settime(tfd.get(), 0, &its, nullptr), 0);
  auto info = ReadFdInfo(getpid(), tfd.get());
  ASSERT_TRUE(info.ok());
  auto t = ParseTimerFdInfo(*info);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->clockid, CLOCK_BOOTTIME);
  EXPECT_EQ(t->interval_ns, 2000000000u);
  EXPECT_GT(t->value_ns, 99000000000u);

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR2);
  UniqueFd sfd(signalfd(-1, &set, 0));
  info = ReadFdInfo(getpid(), sfd.get());
  ASSERT_TRUE(info.ok());
  auto m = ParseSignalFdMask(*info);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(*m, 1ull << (SIGUSR2 - 1));

  UniqueFd ifd(inotify_init1(0));
  const int wd = inotify_add_watch(ifd.get(), "/", IN_CREATE | IN_ONESHOT);
  ASSERT_GT(wd, 0);
  info = ReadFdInfo(getpid(), ifd.get());
  ASSERT_TRUE(info.ok());
  auto w = ParseInotifyWatches(*info);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  ASSERT_EQ(w->size(), 1u);
  EXPECT_EQ((*w)[0].wd, static_cast<uint32_t>(wd));
  EXPECT_EQ((*w)[0].mask, static_cast<uint32_t>(IN_CREATE | IN_ONESHOT));

  UniqueFd efd(epoll_create1(0)), ev(eventfd(0, 0));
  epoll_event e{};
  e.events = EPOLLIN | EPOLLET;
  e.data.u64 = 0xfeedfacecafebeefull;
  ASSERT_EQ(epoll_ctl(efd.get(), EPOLL_CTL_ADD, ev.get(), &e), 0);
  info = ReadFdInfo(getpid(), efd.get());
  ASSERT_TRUE(info.ok());
  auto targets = ParseEpollTargets(*info);
  ASSERT_TRUE(targets.ok()) << targets.status().ToString();
  ASSERT_EQ(targets->size(), 1u);
  EXPECT_EQ((*targets)[0].tfd, ev.get());
  EXPECT_EQ((*targets)[0].events, static_cast<uint32_t>(EPOLLIN | EPOLLET | EPOLLERR | EPOLLHUP));
  EXPECT_EQ((*targets)[0].data, 0xfeedfacecafebeefull);
}

}  // namespace
}  // namespace cf::proc
