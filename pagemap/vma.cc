// Parsers for /proc/PID/maps and /proc/PID/smaps.
//
// A maps line is the header the kernel prints in show_map_vma():
//
//   start-end perms pgoff maj:min inode [padding] name
//
// e.g. "7f37e70bc000-7f37e70e2000 r--p 00000000 fe:00 332835   /usr/lib/libc.so.6".
// The fixed fields are parsed strictly; everything after the inode is the name.
// The kernel writes "<prefix> " (the prefix ends in one space), pads with
// spaces up to column 72 and writes one more space, so the name starts at
// column max(prefix length, 72) + 1. When a line follows that layout exactly
// we cut the name at that column, which keeps names that begin with spaces;
// otherwise (hand-written text) we skip the padding. A trailing " (deleted)"
// is stripped and recorded in |deleted|.
//
// smaps repeats the same header line per VMA, followed by "Key:   value"
// lines; only "VmFlags:" is kept. A key line's first word ends with ':',
// which never happens for a header (its first word is "start-end").
#include "pagemap/vma.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>

#include "common/fd.h"
#include "common/io.h"
#include "common/text.h"

namespace cf::pagemap {
namespace {

constexpr size_t kNameColumn = 72;  // 25 + sizeof(void*) * 6 - 1 on 64-bit kernels
constexpr std::string_view kDeleted = " (deleted)";

bool IsBlank(char c) { return c == ' ' || c == '\t'; }


// Cuts the next blank-separated word off the front of |*rest|; leaves
// |*rest| starting at the blank that ended the word (or empty).
std::string_view NextWord(std::string_view* rest) {
  size_t i = 0;
  while (i < rest->size() && IsBlank((*rest)[i])) ++i;
  size_t j = i;
  while (j < rest->size() && !IsBlank((*rest)[j])) ++j;
  std::string_view word = rest->substr(i, j - i);
  rest->remove_prefix(j);
  return word;
}

Status LineError(const std::string& what, size_t lineno, const char* why, std::string_view line) {
  constexpr size_t kMaxShown = 120;
  std::string shown(line.substr(0, kMaxShown));
  return Errorf("%s: line %zu: %s: '%s'", what.c_str(), lineno, why, shown.c_str());
}

// Parses one header line into |vma|. Returns a reason on failure, or nullptr.
const char* ParseHeader(std::string_view line, VmaInfo* vma) {
  std::string_view rest = line;

  std::string_view range = NextWord(&rest);
  size_t dash = range.find('-');
  if (dash == std::string_view::npos) return "bad address range";
  if (!ParseNum(range.substr(0, dash), 16, &vma->start) ||
      !ParseNum(range.substr(dash + 1), 16, &vma->end))
    return "bad address range";
  if (vma->end < vma->start) return "address range ends before it starts";

  std::string_view perms = NextWord(&rest);
  if (perms.size() != 4) return "bad perms";
  vma->prot = 0;
  if (perms[0] == 'r') vma->prot |= PROT_READ;
  else if (perms[0] != '-') return "bad perms";
  if (perms[1] == 'w') vma->prot |= PROT_WRITE;
  else if (perms[1] != '-') return "bad perms";
  if (perms[2] == 'x') vma->prot |= PROT_EXEC;
  else if (perms[2] != '-') return "bad perms";
  if (perms[3] == 's') vma->shared = true;
  else if (perms[3] == 'p') vma->shared = false;
  else return "bad perms";

  if (!ParseNum(NextWord(&rest), 16, &vma->pgoff)) return "bad offset";

  std::string_view dev = NextWord(&rest);
  size_t colon = dev.find(':');
  if (colon == std::string_view::npos || !ParseNum(dev.substr(0, colon), 16, &vma->dev_major) ||
      !ParseNum(dev.substr(colon + 1), 16, &vma->dev_minor))
    return "bad device";

  if (!ParseNum(NextWord(&rest), 10, &vma->inode)) return "bad inode";

  // |rest| now starts right after the inode digits.
  vma->path.clear();
  vma->deleted = false;
  if (rest.empty()) return nullptr;
  if (!IsBlank(rest.front())) return "bad inode";
  size_t prefix_len = line.size() - rest.size() + 1;  // with the one trailing space
  std::string_view name;
  size_t column = std::max(prefix_len, kNameColumn) + 1;
  if (column < line.size() &&
      line.substr(prefix_len, column - prefix_len).find_first_not_of(' ') == std::string_view::npos) {
    name = line.substr(column);  // exact kernel layout: keep leading spaces of the name
  } else {
    name = rest;
    while (!name.empty() && IsBlank(name.front())) name.remove_prefix(1);
  }
  if (name.size() > kDeleted.size() && name.ends_with(kDeleted)) {
    name.remove_suffix(kDeleted.size());
    vma->deleted = true;
  }
  vma->path.assign(name);
  return nullptr;
}

// A smaps key line: first word ends with ':' (e.g. "Rss:", "VmFlags:").
bool IsKeyLine(std::string_view line) {
  size_t end = 0;
  while (end < line.size() && !IsBlank(line[end])) ++end;
  return end > 0 && line[end - 1] == ':';
}

// Parses a maps or smaps text one line at a time, so that a large smaps
// (1.5 KB per VMA) never has to be held whole.
class VmaParser {
 public:
  VmaParser(bool smaps, const std::string& what) : smaps_(smaps), what_(what) {}

  Status Line(std::string_view line) {
    ++lineno_;
    if (line.empty()) return OkStatus();
    if (smaps_ && IsKeyLine(line)) {
      if (vmas_.empty()) return LineError(what_, lineno_, "key line before any VMA header", line);
      if (line.starts_with("VmFlags:")) {
        if (have_flags_) return LineError(what_, lineno_, "second VmFlags line", line);
        vmas_.back().vmflags.assign(Trim(line.substr(8)));
        have_flags_ = true;
      } else if (line.starts_with("Rss:") || line.starts_with("Swap:") || line.starts_with("Private_Hugetlb:") ||
                 line.starts_with("Shared_Hugetlb:")) {
        uint64_t kb = 0;
        std::string_view v = Trim(line.substr(line.find(':') + 1));
        const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), kb);
        if (ec != std::errc() || end == v.data()) return LineError(what_, lineno_, "bad size", line);
        VmaInfo& m = vmas_.back();
        m.resident_kb = std::max<int64_t>(m.resident_kb, 0) + static_cast<int64_t>(kb);
      }
      return OkStatus();
    }
    // No ordering check: a live process may change between the kernel's read
    // chunks; a frozen one prints its VMAs sorted.
    VmaInfo vma;
    if (const char* why = ParseHeader(line, &vma)) return LineError(what_, lineno_, why, line);
    vmas_.push_back(std::move(vma));
    have_flags_ = false;
    return OkStatus();
  }

  // Feeds every complete line of |text|; returns how many bytes it used.
  Result<size_t> Lines(std::string_view text) {
    size_t used = 0;
    for (;;) {
      const size_t nl = text.find('\n', used);
      if (nl == std::string_view::npos) return used;
      RETURN_IF_ERROR(Line(text.substr(used, nl - used)));
      used = nl + 1;
    }
  }

  std::vector<VmaInfo> Take() { return std::move(vmas_); }

 private:
  bool smaps_;
  const std::string& what_;
  std::vector<VmaInfo> vmas_;
  size_t lineno_ = 0;
  bool have_flags_ = false;
};

Result<std::vector<VmaInfo>> Parse(std::string_view text, bool smaps, const std::string& what) {
  VmaParser parser(smaps, what);
  ASSIGN_OR_RETURN(size_t used, parser.Lines(text));
  RETURN_IF_ERROR(parser.Line(text.substr(used)));  // a last line without its newline
  return parser.Take();
}

}  // namespace

bool VmaInfo::has_vmflag(std::string_view flag) const {
  if (flag.empty()) return false;
  std::string_view rest = vmflags;
  for (;;) {
    std::string_view word = NextWord(&rest);
    if (word.empty()) return false;
    if (word == flag) return true;
  }
}

Result<std::vector<VmaInfo>> ParseMaps(std::string_view text) { return Parse(text, false, "maps"); }

Result<std::vector<VmaInfo>> ParseSmaps(std::string_view text) { return Parse(text, true, "smaps"); }

namespace {

constexpr size_t kBuf = 64 * 1024;
// Read past this much, the rest of the file is read on a thread of its own
// while this one parses (ReadRest).
constexpr size_t kReadAlone = 1 << 20;
constexpr size_t kChunk = 256 * 1024;
constexpr size_t kMaxChunks = 16;  // read ahead of the parser at most

// The rest of |fd| read on a second thread, in chunks handed over through a
// bounded queue, and parsed here as they come: the kernel's formatting of a
// large smaps (about 750 bytes per VMA) and the parsing overlap instead of
// taking turns. |carry| is the text already read that ends in an unfinished
// line; it is left holding the last line, which has no newline. False, with
// nothing read, where no thread can be started (the caller reads on alone).
Result<bool> ReadRest(int fd, const std::string& path, VmaParser* parser, std::string* carry) {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::vector<char>> chunks;
  bool eof = false;
  bool stop = false;
  Status read_status;
  std::thread reader;
  try {
    reader = std::thread([&] {
      for (;;) {
        std::vector<char> chunk(kChunk);
        Result<size_t> n = ReadFull(fd, chunk.data(), chunk.size(), path);
        std::unique_lock<std::mutex> lock(mu);
        if (!n.ok()) read_status = n.status();
        if (!n.ok() || *n == 0) {
          eof = true;
          cv.notify_all();
          return;
        }
        chunk.resize(*n);
        cv.wait(lock, [&] { return stop || chunks.size() < kMaxChunks; });
        if (stop) return;
        chunks.push_back(std::move(chunk));
        cv.notify_all();
      }
    });
  } catch (const std::system_error&) {
    return false;  // no thread (a process or memory limit)
  }
  Status st;
  for (;;) {
    std::vector<char> chunk;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return eof || !chunks.empty(); });
      if (chunks.empty()) break;  // eof, all parsed
      chunk = std::move(chunks.front());
      chunks.pop_front();
      cv.notify_all();
    }
    std::string_view text(chunk.data(), chunk.size());
    // The unfinished line from before, completed by this chunk's first one.
    const size_t nl = text.find('\n');
    if (nl == std::string_view::npos) {
      carry->append(text);
      if (carry->size() > kBuf) st = Errorf("%s: a line longer than %zu bytes", path.c_str(), kBuf);
      if (!st.ok()) break;
      continue;
    }
    carry->append(text.substr(0, nl));
    st = parser->Line(*carry);
    if (!st.ok()) break;
    carry->clear();
    text.remove_prefix(nl + 1);
    Result<size_t> used = parser->Lines(text);
    if (!used.ok()) {
      st = used.status();
      break;
    }
    carry->assign(text.substr(*used));
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    stop = true;
    cv.notify_all();
  }
  reader.join();
  RETURN_IF_ERROR(st);
  RETURN_IF_ERROR(read_status);
  return true;
}

}  // namespace

Result<std::vector<VmaInfo>> ReadVmas(pid_t pid, bool with_vmflags) {
  const std::string path = "/proc/" + std::to_string(pid) + (with_vmflags ? "/smaps" : "/maps");
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("open " + path);
  VmaParser parser(with_vmflags, path);
  // Parsed as it is read: the kernel gives at most a page per read. Not
  // zeroed: only the pages the file fills are touched (a restored process
  // reads its own maps, a few KiB, and each page it touches costs a fault).
  std::unique_ptr<char[]> buf(new char[kBuf]);
  size_t have = 0;
  size_t read = 0;
  bool alone = !with_vmflags;  // maps is short: never worth a thread
  for (;;) {
    if (have == kBuf) return Errorf("%s: a line longer than %zu bytes", path.c_str(), kBuf);
    if (!alone && read > kReadAlone) {
      std::string carry(buf.get(), have);
      ASSIGN_OR_RETURN(bool done, ReadRest(fd.get(), path, &parser, &carry));
      if (done) {
        RETURN_IF_ERROR(parser.Line(carry));
        return parser.Take();
      }
      alone = true;
    }
    ASSIGN_OR_RETURN(size_t n, ReadFull(fd.get(), buf.get() + have, kBuf - have, path));
    if (n == 0) break;
    have += n;
    read += n;
    ASSIGN_OR_RETURN(size_t used, parser.Lines(std::string_view(buf.get(), have)));
    std::memmove(buf.get(), buf.get() + used, have - used);
    have -= used;
  }
  RETURN_IF_ERROR(parser.Line(std::string_view(buf.get(), have)));
  return parser.Take();
}

}  // namespace cf::pagemap
