/*
 * The echo load generator: N loopback TCP connections, each with exactly one
 * message in flight. A connection sends `size` bytes, waits until all of them
 * came back, records the round trip and sends again. One thread, one epoll set,
 * so it costs the server under test one core at most.
 *
 *   loadgen <port> <connections> <measure_ms> <warmup_ms> [size]
 * prints one JSON line:
 *   {"msgs":…,"seconds":…,"rate":…,"p50_us":…,"p99_us":…,"connections":…}
 * Round trips that finish during the warm-up are not counted. "measuring" and
 * "measured" lines on stderr mark the measured window as it opens and closes.
 * Any number of connections the open-file limit allows: it raises its own soft
 * limit up to the hard one when there are more than the soft limit admits (10,000
 * connections need 10,000 descriptors here and as many in the server).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "common.h"

#define MAX_SIZE 65536
#define HIST_US 1000000 /* round trips are binned per microsecond up to one second */

typedef struct conn {
  int fd;
  size_t got;
  double sent_at;
} conn;

static unsigned long hist[HIST_US + 1];
static char msg[MAX_SIZE];

static void send_msg(conn *c, size_t size) {
  size_t off = 0;
  while (off < size) {
    ssize_t w = send(c->fd, msg + off, size - off, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EAGAIN) continue; /* a 64-byte message always fits; never spins in practice */
      die("send");
    }
    off += (size_t)w;
  }
  c->sent_at = now_s();
}

/* Raises the soft open-file limit to `want` (at most the hard limit); says so when it cannot. */
static void raise_fd_limit(rlim_t want) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0) die("getrlimit");
  if (rl.rlim_cur >= want) return;
  rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) < 0) die("setrlimit");
  if (rl.rlim_cur < want) {
    fprintf(stderr, "the open-file limit (hard %lu) is below the %lu descriptors these connections need\n",
            (unsigned long)rl.rlim_max, (unsigned long)want);
    exit(1);
  }
}

static double percentile(unsigned long total, double p) {
  unsigned long want = (unsigned long)(p * (double)total), seen = 0;
  for (long us = 0; us <= HIST_US; us++) {
    seen += hist[us];
    if (seen > want) return (double)us + 0.5;
  }
  return HIST_US;
}

int main(int argc, char **argv) {
  long port = arg_long(argc, argv, 1, 0);
  long nconns = arg_long(argc, argv, 2, 1);
  long measure_ms = arg_long(argc, argv, 3, 1000);
  long warmup_ms = arg_long(argc, argv, 4, 200);
  long size = arg_long(argc, argv, 5, 64);
  if (port <= 0 || port > 65535 || nconns <= 0 || size <= 0 || size > MAX_SIZE) {
    fprintf(stderr, "usage: loadgen <port> <connections> <measure_ms> <warmup_ms> [size]\n");
    return 2;
  }
  stop_after((unsigned)((measure_ms + warmup_ms) / 1000 + 30));
  raise_fd_limit((rlim_t)nconns + 16);
  memset(msg, 'p', sizeof msg);

  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  conn *conns = calloc((size_t)nconns, sizeof *conns);
  if (!conns) die("calloc");
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (long i = 0; i < nconns; i++) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) die("fcntl");
    conns[i].fd = fd;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &conns[i]};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
  }
  for (long i = 0; i < nconns; i++) send_msg(&conns[i], (size_t)size);

  static char buf[MAX_SIZE];
  static struct epoll_event list[1024];
  unsigned long msgs = 0;
  double mark = now_s() + warmup_ms / 1e3, end = mark + measure_ms / 1e3;
  double measured_from = 0, measured_to = 0;
  int measuring = 0;
  for (;;) {
    int n = epoll_wait(ep, list, 1024, 100);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    double t = now_s();
    if (!measuring && t >= mark) {
      measuring = 1;
      fputs("measuring\n", stderr); /* lets the driver read the server's CPU time now */
      measured_from = t;
      /* The window is measure_ms from when it really opened: a loaded machine may have kept
         this process off the CPU past the whole planned window. */
      end = t + measure_ms / 1e3;
    } else if (measuring && t >= end) {
      measured_to = t;
      fputs("measured\n", stderr);
      break;
    }
    for (int i = 0; i < n; i++) {
      conn *c = list[i].data.ptr;
      ssize_t r = recv(c->fd, buf, sizeof buf, 0);
      if (r == 0) {
        fprintf(stderr, "the server closed a connection\n");
        return 1;
      }
      if (r < 0) {
        if (errno == EAGAIN) continue;
        die("recv");
      }
      c->got += (size_t)r;
      if (c->got < (size_t)size) continue;
      if (c->got > (size_t)size) {
        fprintf(stderr, "the server sent more than was asked\n");
        return 1;
      }
      double done = now_s();
      if (measuring) {
        long us = (long)((done - c->sent_at) * 1e6);
        hist[us > HIST_US ? HIST_US : us]++;
        msgs++;
      }
      c->got = 0;
      send_msg(c, (size_t)size);
    }
  }
  double seconds = measured_to - measured_from;
  printf("{\"msgs\":%lu,\"seconds\":%.6f,\"rate\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"connections\":%ld}\n",
         msgs, seconds, msgs / seconds, percentile(msgs, 0.50), percentile(msgs, 0.99), nconns);
  for (long i = 0; i < nconns; i++) close(conns[i].fd);
  return 0;
}
