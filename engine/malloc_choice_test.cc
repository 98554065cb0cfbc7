#include "engine/malloc_choice.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <vector>

namespace cf::engine {
namespace {

class MallocChoiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cf-malloc-choice.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Touch(const std::string& name) {
    const int fd = open((dir_ + "/" + name).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    close(fd);
  }

  static const char* Choose(std::initializer_list<std::string> args) {
    static std::vector<std::string> storage;
    storage.assign(args.begin(), args.end());
    std::vector<const char*> argv;
    for (const auto& s : storage) argv.push_back(s.c_str());
    return ChooseMallocConf(static_cast<int>(argv.size()), argv.data());
  }

  std::string dir_;
};

TEST_F(MallocChoiceTest, CountsProcessImagesOnly) {
  Touch("inventory.img");
  Touch("core-12.img");
  Touch("pagemap-12.img");
  Touch("core-.img");
  Touch("core-13.img.tmp");
  EXPECT_TRUE(HasProcessImages(dir_.c_str(), 1));
  EXPECT_FALSE(HasProcessImages(dir_.c_str(), 2));
  Touch("core-14.img");
  EXPECT_TRUE(HasProcessImages(dir_.c_str(), 2));
  EXPECT_FALSE(HasProcessImages((dir_ + "/none").c_str(), 1));
}

TEST_F(MallocChoiceTest, ManyImagesNeedSeveralReads) {
  // More names than one 8 KiB getdents64 buffer holds.
  for (int i = 0; i < 600; ++i) Touch("pages-" + std::to_string(i) + ".img");
  Touch("core-1.img");
  Touch("core-2.img");
  EXPECT_TRUE(HasProcessImages(dir_.c_str(), 2));
}

TEST_F(MallocChoiceTest, SmallPagesOnlyForTheRestoreOfATree) {
  Touch("core-1.img");
  EXPECT_STREQ(Choose({"criu-fast", "restore", "-D", dir_}), kMallocConfHuge);  // one process
  Touch("core-2.img");
  EXPECT_STREQ(Choose({"criu-fast", "restore", "-D", dir_, "-d"}), kMallocConfSmall);
  EXPECT_STREQ(Choose({"criu-fast", "restore", "-D" + dir_}), kMallocConfSmall);
  EXPECT_STREQ(Choose({"criu-fast", "-v4", "--images-dir", dir_, "restore"}), kMallocConfSmall);
  EXPECT_STREQ(Choose({"criu-fast", "restore", "--images-dir=" + dir_}), kMallocConfSmall);
  EXPECT_STREQ(Choose({"criu-fast", "dump", "-t", "1", "-D", dir_}), kMallocConfHuge);
  EXPECT_STREQ(Choose({"criu-fast", "show", "-D", dir_}), kMallocConfHuge);
  EXPECT_STREQ(Choose({"criu-fast", "restore", "--stream", "-D", dir_}), kMallocConfHuge);
  EXPECT_STREQ(Choose({"criu-fast", "restore", "-D"}), kMallocConfHuge);  // no value: "."
  // No -D: the current directory, as for criu.
  char cwd[4096];
  ASSERT_NE(getcwd(cwd, sizeof(cwd)), nullptr);
  ASSERT_EQ(chdir(dir_.c_str()), 0);
  const char* here = Choose({"criu-fast", "restore", "-d"});
  ASSERT_EQ(chdir(cwd), 0);
  EXPECT_STREQ(here, kMallocConfSmall);
}

}  // namespace
}  // namespace cf::engine
