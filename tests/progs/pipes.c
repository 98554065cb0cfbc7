/* pipes W: pipes and a FIFO with unread data, shared by a parent and its
 * children.
 *
 *   p1    parent -> child: 10000 bytes queued, never read before the check;
 *         the child holds the read end, the parent the write end (each closed
 *         the other end).
 *   p2    inside the child: 100 bytes queued, both ends in the child.
 *   p4    inside the child: a 1 MiB pipe with 300000 bytes queued, its read
 *         end non-blocking.
 *   p3    its read end is shared by parent and child (one open file
 *         description, inherited); the parent holds the write end; 3000 bytes
 *         queued.
 *   fifo  W/fifo, opened by the parent for reading (non-blocking) and for
 *         writing; 200 bytes queued.
 *   p5    between the two children: the first holds the write end, a second
 *         child the read end, the parent neither (it made the pipe, queued
 *         500 bytes, forked both and closed it).
 *
 * The bytes of round r (0 at start) are Pattern(r, stream, offset). On
 * SIGUSR1 the parent checks the FIFO and refills it for round r+1, reads the
 * first 1000 bytes of p3, sets O_NONBLOCK on its p3 read end in even rounds
 * (clears it in odd ones), writes 5000 more bytes into p1 and signals the
 * child. The child reads the 15000 bytes of p1, checks p2 and p4 (bytes,
 * size, flags) and refills them, checks that its p3 read end has the flags
 * the parent just set (so it is the same description), reads the other 2000
 * bytes of p3, and writes W/result.child. The parent then refills p1 and p3
 * for the next round. The child also writes 300 more bytes of round r and
 * the 500 of round r+1 into p5; the parent then signals the second child,
 * which reads the 800 bytes of round r from p5 and wants exactly 500 left,
 * and writes W/result.child2. The parent writes W/result. Nothing else may be
 * queued anywhere. The children write W/ready.child and W/ready.child2 (their
 * pids) once set up.
 */
#include "prog_common.h"

#include <sys/ioctl.h>
#include <sys/stat.h>

enum { S_P1 = 1, S_P1_MORE, S_P2, S_P3, S_P4, S_FIFO, S_P5, S_P5_MORE };

static int p1[2], p2[2], p3[2], p4[2], p5[2], fifo_r = -1, fifo_w = -1;
static int round_no;
static pid_t child, child2;

static unsigned char Pattern(int round, int stream, size_t off) {
  return (unsigned char)(off * 31 + (off >> 8) + (size_t)stream * 67 + (size_t)round * 13);
}

static void Fill(int fd, int round, int stream, size_t len) {
  static unsigned char buf[1 << 20];
  for (size_t i = 0; i < len; i++) buf[i] = Pattern(round, stream, i);
  size_t off = 0;
  while (off < len) {
    ssize_t n = write(fd, buf + off, len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      cf_failf("write stream %d: %s", stream, strerror(errno));
      return;
    }
    off += (size_t)n;
  }
}

/* Reads |len| bytes of stream |stream| starting at pattern offset |from|. */
static void Expect(int fd, int round, int stream, size_t from, size_t len, const char *what) {
  static unsigned char buf[1 << 20];
  size_t off = 0;
  while (off < len) {
    ssize_t n = read(fd, buf + off, len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      cf_failf("%s: read %zu of %zu bytes (%s)", what, off, len, n < 0 ? strerror(errno) : "end of file");
      return;
    }
    off += (size_t)n;
  }
  for (size_t i = 0; i < len; i++) {
    if (buf[i] != Pattern(round, stream, from + i)) {
      cf_failf("%s: byte %zu is %u, want %u (round %d)", what, from + i, buf[i], Pattern(round, stream, from + i),
               round);
      return;
    }
  }
}

static void ExpectEmpty(int fd, const char *what) {
  int queued = -1;
  CF_CHECK(ioctl(fd, FIONREAD, &queued) == 0 && queued == 0, "%s: %d bytes left, want 0", what, queued);
}

static void ChildCheck(void) {
  const int r = round_no;
  Expect(p1[0], r, S_P1, 0, 10000, "p1");
  Expect(p1[0], r, S_P1_MORE, 0, 5000, "p1 (written after the restore)");
  ExpectEmpty(p1[0], "p1");
  Expect(p2[0], r, S_P2, 0, 100, "p2");
  ExpectEmpty(p2[0], "p2");
  CF_CHECK(fcntl(p4[0], F_GETPIPE_SZ) == 1 << 20, "p4: size %d, want 1 MiB", fcntl(p4[0], F_GETPIPE_SZ));
  CF_CHECK(fcntl(p4[0], F_GETFL) & O_NONBLOCK, "p4: read end lost O_NONBLOCK");
  CF_CHECK(!(fcntl(p4[1], F_GETFL) & O_NONBLOCK), "p4: write end has O_NONBLOCK");
  Expect(p4[0], r, S_P4, 0, 300000, "p4");
  ExpectEmpty(p4[0], "p4");
  const int want_nb = r % 2 == 0;
  CF_CHECK(!!(fcntl(p3[0], F_GETFL) & O_NONBLOCK) == want_nb,
           "p3: the child's read end %s O_NONBLOCK, which the parent %s on its fd: not one description",
           want_nb ? "lacks" : "has", want_nb ? "set" : "cleared");
  Expect(p3[0], r, S_P3, 1000, 2000, "p3 (child's part)");
  ExpectEmpty(p3[0], "p3");
  Fill(p2[1], r + 1, S_P2, 100);
  Fill(p4[1], r + 1, S_P4, 300000);
  Fill(p5[1], r, S_P5_MORE, 300);
  Fill(p5[1], r + 1, S_P5, 500);
  round_no++;
}

static void Child2Check(void) {
  const int r = round_no;
  Expect(p5[0], r, S_P5, 0, 500, "p5");
  Expect(p5[0], r, S_P5_MORE, 0, 300, "p5 (written after the restore)");
  int queued = -1;
  CF_CHECK(ioctl(p5[0], FIONREAD, &queued) == 0 && queued == 500, "p5: %d bytes left, want the next 500", queued);
  round_no++;
}

/* A child's loop: answer checks with W/result.NAME. */
static void Serve(const char *name, void (*check)(void)) {
  char buf[32], file[64];
  snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
  snprintf(file, sizeof(file), "ready.%s", name);
  cf_write_file(file, buf);
  snprintf(file, sizeof(file), "result.%s", name);
  for (;;) {
    if (cf_take_usr1()) {
      check();
      char line[1100];
      if (cf_prog.fail[0]) {
        snprintf(line, sizeof(line), "FAIL: %s: %s\n", name, cf_prog.fail);
      } else {
        snprintf(line, sizeof(line), "PASS\n");
      }
      cf_prog.fail[0] = 0;
      cf_write_file(file, line);
    }
    cf_nap(20);
  }
}

static void ChildLoop(void) {
  close(p1[1]);
  close(p3[1]);
  close(p5[0]);
  if (pipe(p2) != 0 || pipe(p4) != 0) cf_die("pipe");
  if (fcntl(p4[0], F_SETPIPE_SZ, 1 << 20) < 0) cf_die("F_SETPIPE_SZ 1 MiB");
  if (fcntl(p4[0], F_SETFL, O_NONBLOCK) != 0) cf_die("F_SETFL");
  Fill(p2[1], 0, S_P2, 100);
  Fill(p4[1], 0, S_P4, 300000);
  Serve("child", ChildCheck);
}

static void Child2Loop(void) {
  close(p1[0]);
  close(p1[1]);
  close(p3[0]);
  close(p3[1]);
  close(p5[1]);
  Serve("child2", Child2Check);
}

/* Signals |pid| and waits for W/result.NAME. */
static void AskChild(pid_t pid, const char *name) {
  char path[4200], file[64], buf[1200];
  snprintf(file, sizeof(file), "result.%s", name);
  snprintf(path, sizeof(path), "%s/%s", cf_prog.workdir, file);
  unlink(path);
  kill(pid, SIGUSR1);
  if (cf_wait_file(file, buf, sizeof(buf)) != 0) {
    cf_failf("%s did not answer", name);
  } else if (strncmp(buf, "PASS", 4) != 0) {
    cf_failf("%s", buf);
  }
}

static void ParentCheck(void) {
  const int r = round_no;
  Expect(fifo_r, r, S_FIFO, 0, 200, "fifo");
  ExpectEmpty(fifo_r, "fifo");
  CF_CHECK(fcntl(fifo_r, F_GETFL) & O_NONBLOCK, "fifo: read end lost O_NONBLOCK");
  Fill(fifo_w, r + 1, S_FIFO, 200);
  Expect(p3[0], r, S_P3, 0, 1000, "p3 (parent's part)");
  const int fl = fcntl(p3[0], F_GETFL);
  if (fcntl(p3[0], F_SETFL, r % 2 == 0 ? fl | O_NONBLOCK : fl & ~O_NONBLOCK) != 0) cf_failf("p3: F_SETFL");
  Fill(p1[1], r, S_P1_MORE, 5000);
  AskChild(child, "child");
  AskChild(child2, "child2");
  Fill(p1[1], r + 1, S_P1, 10000);
  Fill(p3[1], r + 1, S_P3, 3000);
  round_no++;
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "pipes W");
  if (pipe(p1) != 0 || pipe(p3) != 0 || pipe(p5) != 0) cf_die("pipe");
  Fill(p1[1], 0, S_P1, 10000);
  Fill(p3[1], 0, S_P3, 3000);
  Fill(p5[1], 0, S_P5, 500);
  child = fork();
  if (child < 0) cf_die("fork");
  if (child == 0) ChildLoop();
  child2 = fork();
  if (child2 < 0) cf_die("fork");
  if (child2 == 0) Child2Loop();
  close(p1[0]);
  close(p5[0]);
  close(p5[1]);

  char path[4200], buf[64];
  snprintf(path, sizeof(path), "%s/fifo", cf_prog.workdir);
  unlink(path);
  if (mkfifo(path, 0600) != 0) cf_die("mkfifo");
  fifo_r = open(path, O_RDONLY | O_NONBLOCK);
  fifo_w = fifo_r >= 0 ? open(path, O_WRONLY) : -1;
  if (fifo_w < 0) cf_die("open fifo");
  Fill(fifo_w, 0, S_FIFO, 200);
  if (cf_wait_file("ready.child", buf, sizeof(buf)) != 0) cf_die("the child never got ready");
  if (cf_wait_file("ready.child2", buf, sizeof(buf)) != 0) cf_die("the second child never got ready");
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      ParentCheck();
      cf_report();
    }
    cf_nap(20);
  }
}
