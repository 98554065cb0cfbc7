/* Packet socket rings mapped into the process (zdtm packet_sock_mmap):
 *   s  a raw packet socket on lo (TPACKET_V2) with an rx ring of 8 frames,
 *      mapped MAP_SHARED, as programs that read packets from the ring do;
 *   p  a raw packet socket with 1-block rx and tx rings, mapped MAP_PRIVATE
 *      as zdtm does.
 * The check: each mapping is still at its address and maps its socket
 * (/proc/self/maps names the socket's inode), and s's ring is live: a UDP
 * datagram sent to 127.0.0.1 shows up in one of its frames (the program
 * hands every frame back to the kernel first). Checked repeatedly. */
#include "prog_common.h"

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#define FRAME 2048
#define FRAMES 8
#define RING_LEN (FRAME * FRAMES)

static int s, p;
static unsigned char *s_ring, *p_ring;
static unsigned long p_len;

/* The mapping at |addr| maps the socket |fd|. */
static int Maps(void *addr, int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return 0;
  FILE *f = fopen("/proc/self/maps", "r");
  char line[512];
  int found = 0;
  while (f && !found && fgets(line, sizeof(line), f)) {
    unsigned long start;
    unsigned maj, min;
    unsigned long long ino;
    if (sscanf(line, "%lx-%*x %*s %*s %x:%x %llu", &start, &maj, &min, &ino) == 4 && start == (unsigned long)addr &&
        makedev(maj, min) == st.st_dev && ino == st.st_ino) {
      found = 1;
    }
  }
  if (f) fclose(f);
  return found;
}

/* A datagram with |magic| sent over lo must land in a frame of s's ring. */
static void CheckRing(void) {
  for (int i = 0; i < FRAMES; i++) ((struct tpacket2_hdr *)(s_ring + i * FRAME))->tp_status = TP_STATUS_KERNEL;
  __sync_synchronize();
  char magic[32];
  snprintf(magic, sizeof(magic), "cf-ring-%d-%ld", (int)getpid(), (long)cf_now_ns());
  int u = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  for (int tries = 0; tries < 50; tries++) {
    if (sendto(u, magic, strlen(magic), 0, (struct sockaddr *)&to, sizeof(to)) < 0) break;
    struct pollfd pf = {.fd = s, .events = POLLIN};
    poll(&pf, 1, 200);
    for (int i = 0; i < FRAMES; i++) {
      struct tpacket2_hdr *h = (struct tpacket2_hdr *)(s_ring + i * FRAME);
      if (!(h->tp_status & TP_STATUS_USER)) continue;
      const unsigned char *data = (const unsigned char *)h + h->tp_mac;
      int hit = memmem(data, h->tp_snaplen, magic, strlen(magic)) != NULL;
      h->tp_status = TP_STATUS_KERNEL;
      if (hit) {
        close(u);
        return;
      }
    }
  }
  close(u);
  cf_failf("s: no frame of the mapped rx ring received the datagram sent over lo");
}

static void Check(void) {
  CF_CHECK(Maps(s_ring, s), "s: no mapping of the socket at %p", (void *)s_ring);
  CF_CHECK(Maps(p_ring, p), "p: no mapping of the socket at %p", (void *)p_ring);
  CheckRing();
}

static int RingSocket(int version) {
  int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
  if (fd < 0) cf_die("socket(AF_PACKET): %s", strerror(errno));
  if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &version, sizeof(version)) != 0) cf_die("PACKET_VERSION");
  return fd;
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "packet_mmap W");
  s = RingSocket(TPACKET_V2);
  struct tpacket_req req = {.tp_block_size = 4096, .tp_block_nr = RING_LEN / 4096, .tp_frame_size = FRAME,
                            .tp_frame_nr = FRAMES};
  if (setsockopt(s, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) != 0) cf_die("s: rx ring: %s", strerror(errno));
  struct sockaddr_ll ll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
                           .sll_ifindex = (int)if_nametoindex("lo")};
  if (bind(s, (struct sockaddr *)&ll, sizeof(ll)) != 0) cf_die("s: bind to lo: %s", strerror(errno));
  s_ring = mmap(NULL, RING_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, s, 0);
  if (s_ring == MAP_FAILED) cf_die("s: mmap: %s", strerror(errno));

  p = RingSocket(TPACKET_V1);
  struct tpacket_req one = {.tp_block_size = 4096, .tp_block_nr = 1, .tp_frame_size = 1024, .tp_frame_nr = 4};
  if (setsockopt(p, SOL_PACKET, PACKET_RX_RING, &one, sizeof(one)) != 0 ||
      setsockopt(p, SOL_PACKET, PACKET_TX_RING, &one, sizeof(one)) != 0) {
    cf_die("p: rings: %s", strerror(errno));
  }
  p_len = 2 * 4096;
  p_ring = mmap(NULL, p_len, PROT_READ | PROT_WRITE, MAP_PRIVATE, p, 0);
  if (p_ring == MAP_FAILED) cf_die("p: mmap: %s", strerror(errno));
  Check();
  if (cf_prog.fail[0]) cf_die("setup: %s", cf_prog.fail);
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      Check();
      cf_report();
    }
    cf_nap(20);
  }
}
