// `criu-fast show DIR|FILE`. Message records print with protobuf's JSON
// mapping (proto field names; 64-bit integers as strings, as proto3 JSON
// does); chunk records print their header only, after their checksum was
// verified.
#include "engine/show.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstring>
#include <memory>
#include <set>

#include <google/protobuf/util/json_util.h>

#include "common/log.h"
#include "criu_fast.pb.h"
#include "engine/commands.h"
#include "engine/stream_input.h"
#include "kinds/kind.h"
#include "restore/images.h"
#include "streams/image_file.h"
#include "streams/pages_files.h"
#include "streams/stream.h"

namespace cf::engine {
namespace {

using google::protobuf::Message;

Result<std::string> ToJson(const Message& msg) {
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  o.always_print_primitive_fields = true;
  o.always_print_enums_as_ints = false;
  std::string out;
  auto st = google::protobuf::util::MessageToJsonString(msg, &out, o);
  if (!st.ok()) return Error("cannot print " + msg.GetTypeName() + " as JSON");
  return out;
}

std::unique_ptr<Message> NewMessage(streams::FileKind kind) {
  switch (kind) {
    case streams::FileKind::kInventory: return std::make_unique<img::Inventory>();
    case streams::FileKind::kCore: return std::make_unique<img::Process>();
    case streams::FileKind::kPageMap: return std::make_unique<img::PageMap>();
    case streams::FileKind::kStats: return std::make_unique<img::DumpStats>();
    default: return nullptr;
  }
}

// Length of the valid UTF-8 sequence at s[i], or 0 when the bytes there are
// not one (overlong forms and surrogates included).
size_t Utf8Len(const std::string& s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t n = 0;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
  } else {
    return 0;  // a continuation byte, or a lead byte of an overlong/out-of-range form
  }
  uint32_t cp = c & (0x7f >> n);
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3f);
  }
  if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff))) {
    return 0;
  }
  return n;
}

// A JSON string literal. Paths are bytes to the kernel: a byte that is not
// valid UTF-8 prints as U+FFFD so the output stays valid JSON.
std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t n = Utf8Len(s, i);
    if (n == 0) {
      out += "\\ufffd";
      i++;
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      i++;
    } else if (c < 0x20) {
      char buf[8];
      snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
      i++;
    } else {
      out.append(s, i, n);
      i += n;
    }
  }
  return out + "\"";
}

std::string ChunkJson(const streams::Record& rec) {
  streams::ChunkHeader ch{};
  if (rec.payload.size() >= sizeof(ch)) memcpy(&ch, rec.payload.data(), sizeof(ch));
  char buf[256];
  snprintf(buf, sizeof(buf),
           "{\"offset\": %" PRIu64 ", \"codec\": \"%s\", \"raw_size\": %" PRIu64 ", \"stored_size\": %zu}",
           rec.offset, streams::CodecName(static_cast<streams::Codec>(ch.codec)), ch.raw_size,
           rec.payload.size() - sizeof(ch));
  return buf;
}

// Every record of a file: messages as JSON, chunks as their headers.
struct FileDump {
  streams::FileKind kind;
  std::vector<std::string> records;
  uint64_t chunks = 0;
  uint64_t raw_bytes = 0;
  uint64_t stored_bytes = 0;
};

Result<FileDump> ReadAll(const std::string& path, streams::FileKind want) {
  ASSIGN_OR_RETURN(streams::ImageReader r, streams::ImageReader::Open(path, want));
  FileDump d;
  d.kind = r.kind();
  streams::Record rec;
  for (;;) {
    ASSIGN_OR_RETURN(bool more, r.Next(&rec));
    if (!more) break;
    if (rec.type == streams::RecordType::kChunk) {
      if (rec.payload.size() < sizeof(streams::ChunkHeader)) return Error(path + ": short chunk record", EBADMSG);
      streams::ChunkHeader ch;
      memcpy(&ch, rec.payload.data(), sizeof(ch));
      d.chunks++;
      d.raw_bytes += ch.raw_size;
      d.stored_bytes += rec.payload.size() - sizeof(ch);
      d.records.push_back(ChunkJson(rec));
      continue;
    }
    auto msg = NewMessage(d.kind);
    if (!msg) return Errorf("%s: unexpected message in a %s image", path.c_str(), streams::FileKindName(d.kind));
    RETURN_IF_ERROR(streams::ParseMessage(rec, msg.get(), path));
    // A pagemap's page hashes (16 bytes a page) are counted, not printed.
    uint64_t hashes = 0;
    if (auto* pm = dynamic_cast<img::PageMap*>(msg.get()); pm != nullptr && !pm->hashes().empty()) {
      hashes = pm->hashes().size() / 16;
      pm->clear_hashes();
    }
    ASSIGN_OR_RETURN(std::string json, ToJson(*msg));
    if (hashes > 0 && json.size() > 1) json = "{\"page_hashes\": " + std::to_string(hashes) + "," + json.substr(1);
    d.records.push_back(json);
  }
  return d;
}

Result<std::string> ShowFile(const std::string& path) {
  ASSIGN_OR_RETURN(FileDump d, ReadAll(path, streams::FileKind{0}));
  std::string out = "{\"file\": " + Quote(path) + ", \"kind\": " + Quote(streams::FileKindName(d.kind)) +
                    ", \"records\": [";
  for (size_t i = 0; i < d.records.size(); ++i) out += (i ? ", " : "") + d.records[i];
  return out + "]}";
}

// The one message of a metadata file, or "null" when the file is absent.
Result<std::string> OneMessage(const std::string& path, streams::FileKind kind, bool* present) {
  *present = access(path.c_str(), F_OK) == 0;
  if (!*present) return std::string("null");
  ASSIGN_OR_RETURN(FileDump d, ReadAll(path, kind));
  if (d.records.size() != 1) return Error(path + ": expected exactly one record", EBADMSG);
  return d.records[0];
}

// One line per descriptor of core image |path|, as its kind describes it
// (kinds/kind.h): [{"fd": 3, "kind": "eventfd", "state": "counter 5"}, ...];
// "null" when the core is absent.
Result<std::string> FilesSummary(const std::string& path) {
  if (access(path.c_str(), F_OK) != 0) return std::string("null");
  ASSIGN_OR_RETURN(streams::ImageReader r, streams::ImageReader::Open(path, streams::FileKind::kCore));
  img::Process core;
  RETURN_IF_ERROR(r.ReadMessage(&core));
  std::string out = "[";
  for (const img::Fd& f : core.fds()) {
    const kinds::FdKind* kind = kinds::KindOf(f);
    out += (out.size() > 1 ? ", " : "") + std::string("{\"fd\": ") + std::to_string(f.fd()) +
           ", \"kind\": " + Quote(kind ? kind->name() : "unknown") + ", \"state\": " +
           Quote(kind ? kind->Describe(f) : "") + "}";
  }
  return out + "]";
}

// The chain of parent images below |dir| (incremental dumps), nearest
// first: each level's directory, id, kind and pages (stored, taken from its
// own parent, zero), summed over its processes. "[]" for a full image.
std::string ChainJson(const std::string& dir, const img::Inventory& inv) {
  std::string out = "[";
  std::string at = dir;
  img::Inventory cur = inv;
  for (int depth = 0; depth < 1000 && !cur.parent_id().empty(); ++depth) {
    auto pdir = restore::ParentDirOf(at, cur);
    if (!pdir.ok()) return out + (depth ? ", " : "") + "{\"error\": " + Quote(pdir.status().ToString()) + "}]";
    auto parent = restore::LoadParentImage(*pdir, cur.parent_id(), at);
    if (!parent.ok()) return out + (depth ? ", " : "") + "{\"error\": " + Quote(parent.status().ToString()) + "}]";
    uint64_t data = 0, from_parent = 0, zero = 0, inherited = 0, dedup = 0;
    for (const auto& [pid, pm] : parent->pagemaps) {
      for (const img::PageRange& r : pm.ranges()) {
        switch (r.kind()) {
          case img::PageRange::DATA: data += r.nr_pages(); break;
          case img::PageRange::PARENT: from_parent += r.nr_pages(); break;
          case img::PageRange::INHERITED: inherited += r.nr_pages(); break;
          case img::PageRange::DUP: dedup += r.nr_pages(); break;
          default: zero += r.nr_pages(); break;
        }
      }
    }
    out += (depth ? ", " : "") + std::string("{\"dir\": ") + Quote(parent->dir) +
           ", \"image_id\": " + Quote(parent->inventory.image_id()) +
           ", \"pre_dump\": " + (parent->inventory.pre_dump() ? "true" : "false") +
           ", \"pages_stored\": " + std::to_string(data) + ", \"pages_in_parent\": " + std::to_string(from_parent) +
           ", \"pages_zero\": " + std::to_string(zero) + ", \"pages_inherited\": " + std::to_string(inherited) +
           ", \"pages_dedup\": " + std::to_string(dedup) + "}";
    at = parent->dir;
    cur = parent->inventory;
  }
  return out + "]";
}

// |head| is the first member of the object: the directory, or the stream
// the directory was unpacked from.
Result<std::string> ShowDir(const std::string& dir, const std::string& head, bool* incomplete) {
  bool present = false;
  ASSIGN_OR_RETURN(std::string inv_json, OneMessage(dir + "/inventory.img", streams::FileKind::kInventory, &present));
  *incomplete = !present;
  std::vector<int> pids;
  img::Inventory inv;
  if (present) {
    ASSIGN_OR_RETURN(streams::ImageReader r, streams::ImageReader::Open(dir + "/inventory.img",
                                                                        streams::FileKind::kInventory));
    RETURN_IF_ERROR(r.ReadMessage(&inv));
    // A damaged inventory may name a pid twice: each prints once (the keys
    // of a JSON object are unique).
    std::set<int> seen;
    for (int pid : inv.pids()) {
      if (seen.insert(pid).second) pids.push_back(pid);
    }
  }
  std::vector<std::string> ghosts, shmems;
  std::set<int> core_pids;
  DIR* d = opendir(dir.c_str());
  if (!d) return ErrnoStatus("open image directory " + dir);
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    int pid = 0;
    if (sscanf(name.c_str(), "core-%d.img", &pid) == 1) core_pids.insert(pid);
    if (name.rfind("ghost-", 0) == 0) ghosts.push_back(name);
    if (name.rfind("shmem-", 0) == 0) shmems.push_back(name);
  }
  closedir(d);
  std::sort(ghosts.begin(), ghosts.end());
  std::sort(shmems.begin(), shmems.end());
  if (!present) pids.assign(core_pids.begin(), core_pids.end());

  ASSIGN_OR_RETURN(std::string stats_json, OneMessage(dir + "/stats-dump.img", streams::FileKind::kStats, &present));
  std::string out = "{" + head + ", \"inventory\": " + inv_json + ", \"stats\": " + stats_json +
                    ", \"chain\": " + ChainJson(dir, inv) + ", \"processes\": {";
  for (size_t i = 0; i < pids.size(); ++i) {
    const std::string sp = std::to_string(pids[i]);
    ASSIGN_OR_RETURN(std::string core, OneMessage(dir + "/core-" + sp + ".img", streams::FileKind::kCore, &present));
    ASSIGN_OR_RETURN(std::string pm,
                     OneMessage(dir + "/pagemap-" + sp + ".img", streams::FileKind::kPageMap, &present));
    const std::string pages_name = "pages-" + sp + ".img";
    std::string pages = "null";
    if (access((dir + "/" + pages_name).c_str(), F_OK) == 0) {
      ASSIGN_OR_RETURN(FileDump pd, ReadAll(dir + "/" + pages_name, streams::FileKind::kPages));
      pages = "{\"file\": " + Quote(pages_name) + ", \"chunks\": [";
      for (size_t j = 0; j < pd.records.size(); ++j) pages += (j ? ", " : "") + pd.records[j];
      pages += "], \"raw_bytes\": " + std::to_string(pd.raw_bytes) +
               ", \"stored_bytes\": " + std::to_string(pd.stored_bytes);
      // A large process's further pages files (pages-PID-1.img, ...), as
      // its pagemap names them.
      std::string more;
      img::PageMap pmsg;
      if (auto r = streams::ImageReader::Open(dir + "/pagemap-" + sp + ".img", streams::FileKind::kPageMap);
          !r.ok() || !r->ReadMessage(&pmsg).ok()) {
        pmsg.Clear();
      }
      for (const std::string& name : pmsg.extra_pages_files()) {
        if (!streams::IsSafeFileName(name)) return Error("pagemap-" + sp + ".img: bad pages file name", EBADMSG);
        ASSIGN_OR_RETURN(FileDump md, ReadAll(dir + "/" + name, streams::FileKind::kPages));
        more += std::string(more.empty() ? "" : ", ") + "{\"file\": " + Quote(name) + ", \"chunks\": [";
        for (size_t j = 0; j < md.records.size(); ++j) more += (j ? ", " : "") + md.records[j];
        more += "], \"raw_bytes\": " + std::to_string(md.raw_bytes) +
                ", \"stored_bytes\": " + std::to_string(md.stored_bytes) + "}";
      }
      if (!more.empty()) pages += ", \"more_files\": [" + more + "]";
      pages += "}";
    }
    ASSIGN_OR_RETURN(std::string files, FilesSummary(dir + "/core-" + sp + ".img"));
    out += (i ? ", " : "") + Quote(sp) + ": {\"core\": " + core + ", \"files\": " + files + ", \"pagemap\": " + pm +
           ", \"pages\": " + pages + "}";
  }
  out += "}, \"ghosts\": {";
  for (size_t i = 0; i < ghosts.size(); ++i) {
    ASSIGN_OR_RETURN(FileDump gd, ReadAll(dir + "/" + ghosts[i], streams::FileKind::kGhost));
    out += (i ? ", " : "") + Quote(ghosts[i]) + ": {\"chunks\": " + std::to_string(gd.chunks) +
           ", \"bytes\": " + std::to_string(gd.raw_bytes) + "}";
  }
  out += "}, \"shmem\": {";
  for (size_t i = 0; i < shmems.size(); ++i) {
    ASSIGN_OR_RETURN(FileDump sd, ReadAll(dir + "/" + shmems[i], streams::FileKind::kPages));
    out += (i ? ", " : "") + Quote(shmems[i]) + ": {\"chunks\": " + std::to_string(sd.chunks) +
           ", \"raw_bytes\": " + std::to_string(sd.raw_bytes) + ", \"stored_bytes\": " +
           std::to_string(sd.stored_bytes) + "}";
  }
  return out + "}}";
}

}  // namespace

Result<std::string> ShowJson(const std::string& path, bool* incomplete) {
  *incomplete = false;
  struct stat sb;
  if (stat(path.c_str(), &sb) != 0) return ErrnoStatus(path);
  if (S_ISDIR(sb.st_mode)) return ShowDir(path, "\"dir\": " + Quote(path), incomplete);
  if (IsStreamFile(path)) {
    Options o;
    o.stream = true;
    o.stream_from = path;
    return ShowStream(o, incomplete);
  }
  return ShowFile(path);
}

Result<std::string> ShowStream(const Options& opts, bool* incomplete) {
  ASSIGN_OR_RETURN(streams::StagedImage staged, StageStream(opts));
  const std::string name = opts.stream_from.empty() ? "-" : opts.stream_from;
  bool no_inventory = false;
  ASSIGN_OR_RETURN(std::string json, ShowDir(staged.dir(), "\"stream\": " + Quote(name), &no_inventory));
  *incomplete = no_inventory || !staged.summary().complete;
  return json;
}

int RunShow(const Options& opts) {
  const std::string path = opts.stream ? (opts.stream_from.empty() ? "stdin" : opts.stream_from)
                                       : (opts.args.empty() ? opts.images_dir : opts.args[0]);
  const bool stream = opts.stream || IsStreamFile(path);
  bool incomplete = false;
  auto json = opts.stream ? ShowStream(opts, &incomplete) : ShowJson(path, &incomplete);
  if (!json.ok()) {
    LOG_ERROR("show: %s", json.status().ToString().c_str());
    return 1;
  }
  fputs(json->c_str(), stdout);
  fputc('\n', stdout);
  if (incomplete) {
    // The JSON above is still useful for looking at an interrupted dump.
    if (stream) {
      LOG_ERROR("show: %s: incomplete stream (it ends before its trailer: the dump did not finish)", path.c_str());
    } else {
      LOG_ERROR("show: %s: no inventory: incomplete image (inventory.img is written last)", path.c_str());
    }
    return 1;
  }
  return 0;
}

}  // namespace cf::engine
