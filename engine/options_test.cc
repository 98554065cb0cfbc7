#include "engine/options.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

namespace cf::engine {
namespace {

Result<Options> Parse(std::initializer_list<const char*> args) {
  static std::vector<std::string> storage;
  storage.assign(args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  return ParseOptions(static_cast<int>(argv.size() - 1), argv.data());
}

TEST(OptionsTest, DumpWithCriuFlags) {
  auto o = Parse({"criu-fast", "dump", "-t", "123", "-D", "/tmp/x", "-R", "-v4", "-o", "d.log", "--display-stats",
                  "--jobs", "3", "--compress", "zstd:3"});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->command, Command::kDump);
  EXPECT_EQ(o->pid, 123);
  EXPECT_EQ(o->images_dir, "/tmp/x");
  EXPECT_TRUE(o->leave_running);
  EXPECT_EQ(o->verbosity, 4);
  EXPECT_EQ(o->log_file, "d.log");
  EXPECT_TRUE(o->display_stats);
  EXPECT_EQ(o->jobs, 3);
  EXPECT_EQ(o->compress, "zstd:3");
}

TEST(OptionsTest, LiveAndIterative) {
  auto o = Parse({"criu-fast", "dump", "-t", "1", "-R", "--live"});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_TRUE(o->live);
  EXPECT_EQ(o->iterative, 0);
  o = Parse({"criu-fast", "dump", "-t", "1", "--iterative"});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->iterative, 6);
  EXPECT_FALSE(o->live);
  o = Parse({"criu-fast", "dump", "-t", "1", "--iterative=3"});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->iterative, 3);
  EXPECT_FALSE(Parse({"criu-fast", "dump", "-t", "1", "--iterative=0"}).ok());
  EXPECT_FALSE(Parse({"criu-fast", "dump", "-t", "1", "--no-live"}).ok());
}

// CRIU's -R and -s choose one final state: the last one given wins.
TEST(OptionsTest, LeaveStoppedAndLeaveRunning) {
  auto s = Parse({"criu-fast", "dump", "-t", "1", "-R", "-s"});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->leave_running);
  EXPECT_TRUE(s->leave_stopped);
  auto r = Parse({"criu-fast", "dump", "-t", "1", "--leave-stopped", "--leave-running"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->leave_running);
  EXPECT_FALSE(r->leave_stopped);
  auto d = Parse({"criu-fast", "dump", "-t", "1"});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_FALSE(d->leave_running);
  EXPECT_FALSE(d->leave_stopped);
}

TEST(OptionsTest, RestoreLongForms) {
  auto o = Parse({"criu-fast", "restore", "--images-dir", "img", "--restore-detached", "--pidfile", "p",
                  "--verbosity=1", "--shell-job"});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->command, Command::kRestore);
  EXPECT_TRUE(o->restore_detached);
  EXPECT_EQ(o->pidfile, "p");
  EXPECT_EQ(o->verbosity, 1);
  EXPECT_TRUE(o->shell_job);
}

TEST(OptionsTest, BareVerboseMeansThree) {
  auto o = Parse({"criu-fast", "check", "-v"});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->verbosity, 3);
  EXPECT_EQ(o->images_dir, ".");
}

TEST(OptionsTest, ShowTakesAPath) {
  auto o = Parse({"criu-fast", "show", "/some/dir"});
  ASSERT_TRUE(o.ok());
  ASSERT_EQ(o->args.size(), 1u);
  EXPECT_EQ(o->args[0], "/some/dir");
}

TEST(OptionsTest, ErrorsAreOneLine) {
  struct Case {
    std::initializer_list<const char*> args;
    const char* want;
  };
  const Case cases[] = {
      {{"criu-fast"}, "no command"},
      {{"criu-fast", "frobnicate"}, "unknown command"},
      {{"criu-fast", "dump"}, "needs -t"},
      {{"criu-fast", "dump", "-t", "abc"}, "bad PID"},
      {{"criu-fast", "dump", "-t", "1", "--bogus"}, "unknown option"},
      {{"criu-fast", "dump", "-t", "1", "-Q"}, "unknown option"},
      {{"criu-fast", "dump", "-t"}, "needs an argument"},
      {{"criu-fast", "dump", "-t", "1", "-vx"}, "bad verbosity"},
      {{"criu-fast", "dump", "-t", "1", "--join-ns", "net:/x"}, "--join-ns is not supported"},
      {{"criu-fast", "restore", "--lazy-pages"}, "--lazy-pages is not supported"},
      {{"criu-fast", "restore", "--root", "/srv/c"}, "another root"},
      {{"criu-fast", "dump", "-t", "1", "--manage-cgroups=bogus"}, "bad --manage-cgroups"},
      {{"criu-fast", "dump", "-t", "1", "--cgroup-root", "cpu:rel"}, "bad --cgroup-root"},
      {{"criu-fast", "dump", "-t", "1", "--cgroup-root", ":/x"}, "bad --cgroup-root"},
      {{"criu-fast", "dump", "-t", "1", "--ghost-limit", "1X"}, "bad --ghost-limit"},
      {{"criu-fast", "dump", "-t", "1", "--feature", "userns"}, "--feature is for check"},
      {{"criu-fast", "--no-default-config"}, "no command"},
      {{"criu-fast", "dump", "-t", "1", "--jobs", "0"}, "bad --jobs"},
      {{"criu-fast", "dump", "-t", "1", "--drain", "magic"}, "bad --drain"},
      {{"criu-fast", "restore", "extra"}, "unexpected argument"},
      {{"criu-fast", "show"}, "show needs"},
  };
  for (const Case& c : cases) {
    auto o = Parse(c.args);
    ASSERT_FALSE(o.ok()) << *c.args.begin() << " ... " << c.want;
    const std::string msg = o.status().ToString();
    EXPECT_NE(msg.find(c.want), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(OptionsTest, HelpIsNotAnError) {
  auto o = Parse({"criu-fast", "--help"});
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.status().message(), "help");
}

TEST(OptionsTest, StreamFlags) {
  auto d = Parse({"criu-fast", "dump", "-t", "5", "--stream", "--compress", "lz4"});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_TRUE(d->stream);
  EXPECT_TRUE(d->stream_to.empty());
  auto to = Parse({"criu-fast", "dump", "-t", "5", "--stream-to", "/tmp/s"});
  ASSERT_TRUE(to.ok()) << to.status().ToString();
  EXPECT_TRUE(to->stream);
  EXPECT_EQ(to->stream_to, "/tmp/s");
  auto r = Parse({"criu-fast", "restore", "--stream-from", "/tmp/s", "-d"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->stream);
  EXPECT_EQ(r->stream_from, "/tmp/s");
  auto show = Parse({"criu-fast", "show", "--stream"});
  ASSERT_TRUE(show.ok()) << show.status().ToString();
  EXPECT_TRUE(show->stream);
}

TEST(OptionsTest, StreamConflicts) {
  EXPECT_FALSE(Parse({"criu-fast", "dump", "-t", "5", "--stream", "-D", "img"}).ok());
  EXPECT_FALSE(Parse({"criu-fast", "restore", "--stream", "-D", "img"}).ok());
  EXPECT_FALSE(Parse({"criu-fast", "dump", "-t", "5", "--stream-from", "x"}).ok());
  EXPECT_FALSE(Parse({"criu-fast", "restore", "--stream-to", "x"}).ok());
  EXPECT_FALSE(Parse({"criu-fast", "check", "--stream"}).ok());
  EXPECT_FALSE(Parse({"criu-fast", "show", "--stream", "img"}).ok());
}

// The forms CRIU's own tools use (zdtm.py's calls, among others).
TEST(OptionsTest, CriuCommandLines) {
  auto c = Parse({"criu-fast", "check", "--no-default-config", "--no-default-config", "-verbosity=0", "--feature",
                  "userns"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->command, Command::kCheck);
  EXPECT_EQ(c->verbosity, 0);
  ASSERT_EQ(c->features.size(), 1u);
  EXPECT_EQ(c->features[0], "userns");

  auto d = Parse({"criu-fast", "dump", "--no-default-config", "--log-file", "dump.log", "--images-dir", "/img",
                  "--verbosity=4", "--tree", "42", "--pidfile", "p", "--timeout", "10", "--pre-dump-mode", "splice",
                  "--file-locks", "--tcp-established", "--manage-cgroups", "--ext-unix-sk", "--link-remap"});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->pid, 42);
  EXPECT_EQ(d->images_dir, "/img");
  EXPECT_EQ(d->verbosity, 4);
  EXPECT_EQ(d->timeout, 10);
  EXPECT_EQ(d->InWorkDir(d->log_file), "/img/dump.log");
  EXPECT_GE(d->no_effect.size(), 1u);  // each logged with its reason
  EXPECT_EQ(d->manage_cgroups, "soft");
  EXPECT_TRUE(d->tcp_established);
  EXPECT_TRUE(d->link_remap);
  EXPECT_TRUE(d->network_lock);
  auto cg = Parse({"criu-fast", "restore", "--cgroup-root", "/new", "--cgroup-root=name=x:/prefix"});
  ASSERT_TRUE(cg.ok()) << cg.status().ToString();
  ASSERT_EQ(cg->cgroup_roots.size(), 2u);
  EXPECT_EQ(cg->cgroup_roots[0], std::make_pair(std::string(), std::string("/new")));
  EXPECT_EQ(cg->cgroup_roots[1], std::make_pair(std::string("name=x"), std::string("/prefix")));
  auto n = Parse({"criu-fast", "dump", "-t", "1", "--network-lock", "skip", "--skip-in-flight", "--tcp-close"});
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_FALSE(n->network_lock);
  EXPECT_TRUE(n->skip_in_flight);
  EXPECT_TRUE(n->tcp_close);
  EXPECT_FALSE(Parse({"criu-fast", "dump", "-t", "1", "--network-lock", "ebpf"}).ok());
  EXPECT_TRUE(d->ext_unix_sk);
  EXPECT_TRUE(d->ext_unix_sk_ids.empty());
  auto x = Parse({"criu-fast", "dump", "--no-default-config", "-t", "1", "--ext-unix-sk=12,345"});
  ASSERT_TRUE(x.ok()) << x.status().ToString();
  EXPECT_EQ(x->ext_unix_sk_ids, (std::vector<uint64_t>{12, 345}));
  EXPECT_FALSE(Parse({"criu-fast", "dump", "--no-default-config", "-t", "1", "--ext-unix-sk=12,x"}).ok());

  // The command anywhere; --daemon and --no- forms; -W for relative files.
  auto r = Parse({"criu-fast", "--images-dir", "img", "restore", "--daemon", "--no-shell-job", "-W", "/work",
                  "--pidfile", "rst.pid", "--status-fd", "7", "-vvv"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->command, Command::kRestore);
  EXPECT_TRUE(r->restore_detached);
  EXPECT_FALSE(r->shell_job);
  EXPECT_EQ(r->InWorkDir(r->pidfile), "/work/rst.pid");
  EXPECT_EQ(r->status_fd, 7);
  EXPECT_EQ(r->verbosity, 4);  // 2 + 3, at most 4
  auto no = Parse({"criu-fast", "restore", "-d", "--no-restore-detached"});
  ASSERT_TRUE(no.ok());
  EXPECT_FALSE(no->restore_detached);

  auto g = Parse({"criu-fast", "dump", "-t", "3", "--ghost-limit", "64M"});
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->ghost_limit, 64ull << 20);
  auto v = Parse({"criu-fast", "-V"});
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().message(), "version");
}

// Config files: CRIU's format (an option per line without its dashes), read
// before the command line, which wins; --config FILE replaces the defaults.
TEST(OptionsTest, ConfigFile) {
  char path[] = "/tmp/cf-config-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  const std::string text = "# a comment\nimages-dir /from/config\nverbosity=1\nshell-job\n\ntimeout \"20\"\n";
  ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  auto o = Parse({"criu-fast", "restore", "--config", path, "--timeout", "30"});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->images_dir, "/from/config");
  EXPECT_EQ(o->verbosity, 1);
  EXPECT_TRUE(o->shell_job);
  EXPECT_EQ(o->timeout, 30);  // the command line wins
  unlink(path);
  EXPECT_FALSE(Parse({"criu-fast", "restore", "--config", "/nonexistent/criu.conf"}).ok());
}

}  // namespace
}  // namespace cf::engine
