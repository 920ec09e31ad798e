#include "fdio.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* Darwin: SO_NOSIGPIPE is set on the socket instead. */
#endif

static int set_nonblocking_cloexec(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -errno;
  int fdfl = fcntl(fd, F_GETFD);
  if (fdfl < 0 || fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0) return -errno;
  return 0;
}

static void no_sigpipe(int fd) {
#ifdef SO_NOSIGPIPE
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#else
  (void)fd;
#endif
}

int np_pipe(int fds[2]) {
#if defined(__linux__) || defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__NetBSD__)
  return pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0 ? 0 : -errno;
#else
  if (pipe(fds) < 0) return -errno;
  int err;
  if ((err = set_nonblocking_cloexec(fds[0])) < 0 || (err = set_nonblocking_cloexec(fds[1])) < 0) {
    close(fds[0]);
    close(fds[1]);
    return err;
  }
  return 0;
#endif
}

int np_socketpair(int fds[2]) {
#ifdef SOCK_NONBLOCK
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0) return -errno;
#else
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0) return -errno;
  int err;
  if ((err = set_nonblocking_cloexec(fds[0])) < 0 || (err = set_nonblocking_cloexec(fds[1])) < 0) {
    close(fds[0]);
    close(fds[1]);
    return err;
  }
#endif
  no_sigpipe(fds[0]);
  no_sigpipe(fds[1]);
  return 0;
}

/* Fills `ss` from a numeric address; -EINVAL when it is not one. */
static int parse_address(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len) {
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL) return -EINVAL;
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  freeaddrinfo(res);
  if (ss->ss_family == AF_INET) ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
  else ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
  return 0;
}

int np_dial_tcp(const char *host, int port, int nonblocking) {
  struct sockaddr_storage ss;
  socklen_t len;
  int err = parse_address(host, port, &ss, &len);
  if (err < 0) return err;
  int fd = socket(ss.ss_family, SOCK_STREAM, 0);
  if (fd < 0) return -errno;
  if ((err = set_nonblocking_cloexec(fd)) < 0) goto fail;
  no_sigpipe(fd);
  if (connect(fd, (struct sockaddr *)&ss, len) == 0) return fd;
  if (errno != EINPROGRESS) {
    err = -errno;
    goto fail;
  }
  if (nonblocking) return fd;
  /* A blocking dial, like Go's net.DialTCP: wait for the handshake here. */
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLOUT, .revents = 0};
    int r = poll(&p, 1, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      err = -errno;
      goto fail;
    }
    break;
  }
  if ((err = np_socket_error(fd)) < 0) goto fail;
  return fd;
fail:
  close(fd);
  return err;
}

int np_socket_error(int fd) {
  int soerr = 0;
  socklen_t len = sizeof soerr;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0) return -errno;
  return -soerr;
}

ssize_t np_read(int fd, void *buf, size_t len) {
  for (;;) {
    ssize_t n = read(fd, buf, len);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    return -errno;
  }
}

/* write() to a pipe whose reader is gone raises SIGPIPE, and there is no MSG_NOSIGNAL
 * for pipes. Node ignores SIGPIPE by default, but a process.on('SIGPIPE') listener or
 * an embedder that keeps the default disposition (which kills) would see it. So the
 * signal is blocked in this thread around the write, and the one the write raised is
 * consumed before unblocking; one already pending (someone else's) is left alone. */
static ssize_t write_without_sigpipe(int fd, const void *buf, size_t len) {
  sigset_t sigpipe_set, old_set, pending;
  sigemptyset(&sigpipe_set);
  sigaddset(&sigpipe_set, SIGPIPE);
  if (pthread_sigmask(SIG_BLOCK, &sigpipe_set, &old_set) != 0) return write(fd, buf, len);
  int was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
  ssize_t n = write(fd, buf, len);
  int saved_errno = errno;
  if (n < 0 && saved_errno == EPIPE && !was_pending) {
    /* The kernel raised it before write() returned: it is pending, so sigwait() (POSIX,
     * unlike sigtimedwait) takes it without blocking. */
    int sig;
    if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) sigwait(&sigpipe_set, &sig);
  }
  pthread_sigmask(SIG_SETMASK, &old_set, NULL);
  errno = saved_errno;
  return n;
}

ssize_t np_write(int fd, const void *buf, size_t len) {
  for (;;) {
    /* send() with MSG_NOSIGNAL turns a vanished peer into EPIPE instead of a
     * SIGPIPE; for what is not a socket fall back to write(). */
    ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
    if (n < 0 && errno == ENOTSOCK) n = write_without_sigpipe(fd, buf, len);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    return -errno;
  }
}

int np_close(int fd) {
  /* No retry on EINTR: on Linux the descriptor is already gone. */
  return close(fd) == 0 || errno == EINTR ? 0 : -errno;
}
