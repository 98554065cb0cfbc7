// Harness: one image file (streams/format.h, streams/image_file.h) read the
// way restore and show read them: the header, every record in order with its
// checksum, each message parsed as the type its file kind holds, each chunk
// decoded, and the first chunk read again by offset (ReadAt).
#include <memory>

#include "criu_fast.pb.h"
#include "streams/image_file.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace cf;

std::unique_ptr<google::protobuf::MessageLite> MessageOf(streams::FileKind kind) {
  switch (kind) {
    case streams::FileKind::kInventory: return std::make_unique<img::Inventory>();
    case streams::FileKind::kCore: return std::make_unique<img::Process>();
    case streams::FileKind::kPageMap: return std::make_unique<img::PageMap>();
    case streams::FileKind::kStats: return std::make_unique<img::DumpStats>();
    default: return nullptr;
  }
}

void ReadImage(const uint8_t* data, size_t size) {
  UniqueFd fd = fuzz::MemFile(data, size);
  const std::string path = fuzz::FdPath(fd.get());
  auto r = streams::ImageReader::Open(path, streams::FileKind{0});
  if (!r.ok()) return;
  // A reader that names a kind checks it.
  auto typed = streams::ImageReader::Open(path, r->kind());
  fuzz::Check(typed.ok(), "an image opens with its own kind");
  streams::Record rec;
  std::vector<uint8_t> raw;
  bool first_chunk = true;
  for (;;) {
    auto more = r->Next(&rec);
    if (!more.ok() || !*more) break;
    if (rec.type == streams::RecordType::kChunk) {
      (void)streams::DecodeChunk(rec, &raw, path);
      if (first_chunk) {
        first_chunk = false;
        streams::Record again;
        fuzz::Check(r->ReadAt(rec.offset, &again).ok(), "ReadAt of a record Next read");
        fuzz::Check(again.payload == rec.payload, "ReadAt reads what Next read");
      }
      continue;
    }
    if (auto msg = MessageOf(r->kind())) (void)streams::ParseMessage(rec, msg.get(), path);
  }
  // ReadMessage on a fresh reader: the path LoadImages takes.
  if (auto msg = MessageOf(r->kind())) {
    auto again = streams::ImageReader::Open(path, r->kind());
    if (again.ok()) (void)again->ReadMessage(msg.get());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Init();
  ReadImage(data, size);
  const std::vector<uint8_t> fixed = fuzz::FixImageChecksums(data, size);
  if (fixed != std::vector<uint8_t>(data, data + size)) ReadImage(fixed.data(), fixed.size());
  return 0;
}
