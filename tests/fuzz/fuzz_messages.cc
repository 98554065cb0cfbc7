// Harness: the protobuf messages of streams/proto/criu_fast.proto that the
// readers parse from records (streams/image_file.h ParseMessage): the first
// byte picks the message, the rest is its payload. A message that parses must
// print as JSON the way `show` prints it, and serialize back to bytes that
// parse to the same message.
#include <google/protobuf/util/json_util.h>

#include <memory>

#include "criu_fast.pb.h"
#include "streams/image_file.h"
#include "tests/fuzz/fuzz_util.h"

using namespace cf;

namespace {

std::unique_ptr<google::protobuf::Message> Pick(uint8_t b) {
  switch (b % 6) {
    case 0: return std::make_unique<img::Inventory>();
    case 1: return std::make_unique<img::Process>();
    case 2: return std::make_unique<img::PageMap>();
    case 3: return std::make_unique<img::DumpStats>();
    case 4: return std::make_unique<img::StreamFile>();
    default: return std::make_unique<img::StreamTrailer>();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Init();
  if (size == 0) return 0;
  auto msg = Pick(data[0]);
  streams::Record rec{streams::RecordType::kMessage, 0, std::vector<uint8_t>(data + 1, data + size)};
  if (!streams::ParseMessage(rec, msg.get(), "message").ok()) return 0;

  google::protobuf::util::JsonPrintOptions o;  // as engine/show.cc prints
  o.preserve_proto_field_names = true;
  o.always_print_primitive_fields = true;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(*msg, &json, o);

  std::string bytes;
  fuzz::Check(msg->SerializeToString(&bytes), "a parsed message serializes");
  auto back = Pick(data[0]);
  fuzz::Check(back->ParseFromString(bytes), "a serialized message parses");
  std::string again;
  fuzz::Check(back->SerializeToString(&again) && again == bytes, "serialization is stable");
  return 0;
}
