// Harness: `criu-fast show FILE` (engine/show.h ShowJson) on a file that is
// either one image file or a whole image stream (then engine/stream_input.h
// unpacks it and show prints the directory it stands for). Runs on the raw
// input and on the input with its checksums fixed; whatever show prints must
// be valid JSON.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <cstring>

#include "engine/show.h"
#include "streams/format.h"
#include "tests/fuzz/fuzz_util.h"

using namespace cf;

namespace {

void Show(const uint8_t* data, size_t size) {
  UniqueFd fd = fuzz::MemFile(data, size);
  bool incomplete = false;
  auto json = engine::ShowJson(fuzz::FdPath(fd.get()), &incomplete);
  if (!json.ok()) return;
  google::protobuf::Struct parsed;
  fuzz::Check(google::protobuf::util::JsonStringToMessage(*json, &parsed).ok(), "show prints valid JSON");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Init();
  Show(data, size);
  streams::FileHeader h{};
  if (size >= sizeof(h)) memcpy(&h, data, sizeof(h));
  const bool stream = h.kind == static_cast<uint16_t>(streams::FileKind::kStream);
  const std::vector<uint8_t> fixed =
      stream ? fuzz::FixStreamChecksums(data, size) : fuzz::FixImageChecksums(data, size);
  if (fixed != std::vector<uint8_t>(data, data + size)) Show(fixed.data(), fixed.size());
  return 0;
}
