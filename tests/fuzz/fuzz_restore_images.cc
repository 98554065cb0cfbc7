// Harness: restore's loading of an image (restore/images.h LoadImages): the
// inventory, then each process's core and pagemap, and the checks that tie
// them together. The input is an image stream, as `restore --stream-from`
// reads it: its checksums and trailer are fixed (fuzz_util.h), it is unpacked
// (streams/stream_stage.h) and the directory it stands for is loaded.
#include "restore/images.h"
#include "streams/stream.h"
#include "streams/stream_stage.h"
#include "tests/fuzz/fuzz_util.h"

using namespace cf;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Init();
  const std::vector<uint8_t> fixed = fuzz::FixStreamChecksums(data, size);
  UniqueFd fd = fuzz::MemFile(fixed.data(), fixed.size());
  auto staged = streams::StagedImage::Unpack(fd.get(), "fuzz");
  if (!staged.ok()) return 0;
  auto set = restore::LoadImages(staged->dir());
  if (!set.ok()) return 0;
  fuzz::Check(!set->processes.empty(), "a loaded image has processes");
  for (const restore::ProcessImages& p : set->processes) {
    fuzz::Check(p.core.threads_size() > 0, "every process has a thread");
    // The pages file is named by the image: it must stay inside the image.
    const std::string prefix = set->dir + "/";
    fuzz::Check(p.pages_path.compare(0, prefix.size(), prefix) == 0 &&
                    streams::IsSafeFileName(p.pages_path.substr(prefix.size())),
                "the pages file lies in the image directory");
    // So do the further pages files of a large process, when chunks use them.
    if (p.pagemap.chunks_size() > 0) {
      for (const std::string& name : p.pagemap.extra_pages_files()) {
        fuzz::Check(streams::IsSafeFileName(name), "a further pages file lies in the image directory");
      }
    }
  }
  for (const auto& [id, shmem] : set->shmems) {
    fuzz::Check(streams::IsSafeFileName(shmem.pages().pages_file()), "a shmem's pages file lies in the image directory");
  }
  return 0;
}
