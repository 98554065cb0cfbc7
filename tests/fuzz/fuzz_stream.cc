// Harness: the stream reader (streams/stream.h ReadStream) and its trailer
// checks, and the unpacking of a stream into image files
// (streams/stream_stage.h), which restore and show use. The raw input goes
// through ReadStream; the input with its checksums and trailer fixed
// (fuzz_util.h) is unpacked, and then every file staged from a stream that
// passed must read back as a valid image file.
#include <dirent.h>

#include "streams/image_file.h"
#include "streams/stream.h"
#include "streams/stream_stage.h"
#include "tests/fuzz/fuzz_util.h"

using namespace cf;

namespace {

// Checks what ReadStream promises its visitor.
class Checker : public streams::StreamVisitor {
 public:
  Status BeginFile(uint32_t id, const std::string& name, streams::FileKind kind) override {
    fuzz::Check(id == files_ + 1, "file ids in sequence");
    fuzz::Check(streams::IsSafeFileName(name), "file names are safe");
    fuzz::Check(kind != streams::FileKind::kStream, "no stream inside a stream");
    files_ = id;
    return OkStatus();
  }
  Status FileRecord(uint32_t id, const streams::RecordHeader& h, std::span<const uint8_t> payload) override {
    fuzz::Check(id >= 1 && id <= files_ && h.flags == id, "records belong to a begun file");
    fuzz::Check(payload.size() == h.length, "payload has the record's length");
    return OkStatus();
  }

 private:
  uint32_t files_ = 0;
};

void Read(const uint8_t* data, size_t size) {
  UniqueFd fd = fuzz::MemFile(data, size);
  Checker c;
  auto sum = streams::ReadStream(fd.get(), "fuzz", &c);
  if (sum.ok() && sum->complete) fuzz::Check(sum->bytes == size, "a complete stream is read to its end");
}

void Unpack(const uint8_t* data, size_t size) {
  UniqueFd fd = fuzz::MemFile(data, size);
  auto staged = streams::StagedImage::Unpack(fd.get(), "fuzz");
  if (!staged.ok()) return;
  DIR* d = opendir(staged->dir().c_str());
  fuzz::Check(d != nullptr, "the staging directory exists");
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    auto r = streams::ImageReader::Open(staged->dir() + "/" + name, streams::FileKind{0});
    fuzz::Check(r.ok(), "a staged file opens as an image");
    streams::Record rec;
    for (;;) {
      auto more = r->Next(&rec);
      fuzz::Check(more.ok(), "a staged file reads back whole");
      if (!*more) break;
    }
  }
  closedir(d);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Init();
  Read(data, size);
  const std::vector<uint8_t> fixed = fuzz::FixStreamChecksums(data, size);
  Unpack(fixed.data(), fixed.size());
  return 0;
}
