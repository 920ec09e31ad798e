/*
 * The C reference echo server: one thread, one epoll set, level-triggered,
 * nonblocking sockets, TCP_NODELAY. It reads what arrives and writes it back;
 * whatever the socket does not take at once waits in a per-connection buffer
 * (with EPOLLOUT, reads paused) so no byte is ever dropped.
 *
 *   echo_server <max_seconds> [port]
 * listens on 127.0.0.1 (port 0: any), prints "PORT <n>" once ready, and exits on
 * SIGTERM or after max_seconds.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "common.h"

#define BUF_SIZE 65536

typedef struct conn {
  int fd;
  size_t pending_off, pending_len;
  char *pending; /* allocated only when a write falls short */
} conn;

static int ep, lfd;

static void set_interest(conn *c, unsigned events) {
  struct epoll_event ev = {.events = events, .data.ptr = c};
  if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl mod");
}

static void drop(conn *c) {
  close(c->fd); /* also removes it from the epoll set */
  free(c->pending);
  free(c);
}

/* Writes what is pending; 1 when all is out, 0 when the socket is full, -1 on error. */
static int flush_pending(conn *c) {
  while (c->pending_off < c->pending_len) {
    ssize_t w = send(c->fd, c->pending + c->pending_off, c->pending_len - c->pending_off, MSG_NOSIGNAL);
    if (w < 0) return errno == EAGAIN ? 0 : -1;
    c->pending_off += (size_t)w;
  }
  c->pending_off = c->pending_len = 0;
  return 1;
}

static void on_readable(conn *c, char *buf) {
  ssize_t n = recv(c->fd, buf, BUF_SIZE, 0);
  if (n == 0 || (n < 0 && errno != EAGAIN)) return drop(c);
  if (n < 0) return;
  ssize_t off = 0;
  while (off < n) {
    ssize_t w = send(c->fd, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
    if (w < 0) {
      if (errno != EAGAIN) return drop(c);
      break;
    }
    off += w;
  }
  if (off < n) {
    c->pending = realloc(c->pending, (size_t)(n - off));
    if (!c->pending) die("realloc");
    memcpy(c->pending, buf + off, (size_t)(n - off));
    c->pending_off = 0;
    c->pending_len = (size_t)(n - off);
    set_interest(c, EPOLLOUT);
  }
}

static void on_accept(void) {
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == ECONNABORTED || errno == EINTR) return;
      die("accept4");
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn *c = calloc(1, sizeof *c);
    if (!c) die("calloc");
    c->fd = fd;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl add");
  }
}

int main(int argc, char **argv) {
  long max_seconds = arg_long(argc, argv, 1, 60);
  long port = arg_long(argc, argv, 2, 0);
  stop_after((unsigned)max_seconds);

  lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (lfd < 0) die("socket");
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
  if (listen(lfd, 4096) < 0) die("listen");
  socklen_t len = sizeof addr;
  if (getsockname(lfd, (struct sockaddr *)&addr, &len) < 0) die("getsockname");

  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) die("epoll_ctl listen");

  printf("PORT %d\n", ntohs(addr.sin_port));
  fflush(stdout);

  static char buf[BUF_SIZE];
  static struct epoll_event list[1024];
  for (;;) {
    int n = epoll_wait(ep, list, 1024, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      conn *c = list[i].data.ptr;
      if (c == NULL) {
        on_accept();
      } else if (list[i].events & EPOLLOUT) {
        int r = flush_pending(c);
        if (r < 0) drop(c);
        else if (r > 0) set_interest(c, EPOLLIN);
      } else {
        on_readable(c, buf);
      }
    }
  }
}
