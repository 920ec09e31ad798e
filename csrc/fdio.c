#include "fdio.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__FreeBSD__)
#include <sys/param.h>
#include <sys/ucred.h>
#endif

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* Darwin: SO_NOSIGPIPE is set on the socket instead. */
#endif

#if defined(IOV_MAX) && IOV_MAX < 1024
#define NP_IOV_MAX IOV_MAX
#else
#define NP_IOV_MAX 1024
#endif

#if defined(__linux__) || defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__NetBSD__)
#define NP_HAVE_ACCEPT4 1
#endif

/* sigprocmask is per-thread on Linux and, unlike pthread_sigmask, needs no glibc newer
 * than 2.2.5 (pthread_sigmask moved into libc at 2.32): the prebuilds' glibc floor. */
#if defined(__linux__)
#define thread_sigmask sigprocmask
#else
#define thread_sigmask pthread_sigmask
#endif

int np_iov_max(void) { return NP_IOV_MAX; }

/* Only platforms without pipe2, SOCK_NONBLOCK or accept4 (Darwin) call this. */
__attribute__((unused)) static int set_nonblocking_cloexec(int fd) {
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

/* Closes `fd` and returns `err`, keeping errno's meaning intact for the caller. */
static int fail_close(int fd, int err) {
  close(fd);
  return err;
}

/* A new socket, nonblocking and close-on-exec in one call where the kernel allows. */
static int new_socket(int family, int type) {
#ifdef SOCK_NONBLOCK
  int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
#else
  int fd = socket(family, type, 0);
  if (fd < 0) return -errno;
  int err = set_nonblocking_cloexec(fd);
  if (err < 0) return fail_close(fd, err);
#endif
  no_sigpipe(fd);
  return fd;
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

/* ---- addresses ---- */

/* Fills `ss` from a numeric address: -EINVAL for a port out of range, NP_EBADADDR when
 * the system does not take the host. src/socket.ts lets only what net.isIP accepts reach
 * here, but getaddrinfo refuses some of that: an IPv6 zone that names no interface of
 * this machine ("fe80::1%nosuchif"), a zone on an address that takes none ("::1%lo"). */
static int parse_address(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len) {
  if (port < 0 || port > 65535) return -EINVAL;
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_flags = AI_NUMERICHOST;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL) return NP_EBADADDR;
  if (res->ai_addrlen > sizeof *ss || (res->ai_family != AF_INET && res->ai_family != AF_INET6)) {
    freeaddrinfo(res);
    return -EAFNOSUPPORT;
  }
  memset(ss, 0, sizeof *ss);
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  *len = (socklen_t)res->ai_addrlen;
  freeaddrinfo(res);
  if (ss->ss_family == AF_INET) ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
  else ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
  return 0;
}

/* `path` is `len` bytes: a file path (no NUL in it), or on Linux an abstract name, which
 * starts with a NUL (node:net's notation) and is taken as the bytes after it, NULs and
 * all, with no terminator. */
static int fill_unix_address(const char *path, size_t len, struct sockaddr_un *sun, socklen_t *slen) {
  if (len == 0) return -EINVAL;
  if (len >= sizeof sun->sun_path + (path[0] == '\0' ? 1 : 0)) return -ENAMETOOLONG;
  memset(sun, 0, sizeof *sun);
  sun->sun_family = AF_UNIX;
  if (path[0] == '\0') {
#ifdef __linux__
    memcpy(sun->sun_path, path, len);
    *slen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    return 0;
#else
    return -EAFNOSUPPORT; /* only Linux has an abstract namespace */
#endif
  }
  if (memchr(path, '\0', len) != NULL) return -EINVAL;
  memcpy(sun->sun_path, path, len);
  *slen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
  return 0;
}

static int format_address(const struct sockaddr_storage *ss, socklen_t len, np_addr *out) {
  out->family = ss->ss_family;
  out->port = 0;
  out->address[0] = '\0';
  out->address_len = 0;
  switch (ss->ss_family) {
    case AF_INET:
    case AF_INET6: {
      int err = getnameinfo((const struct sockaddr *)ss, len, out->address, sizeof out->address, NULL, 0, NI_NUMERICHOST);
      if (err != 0) return -EINVAL;
      out->address_len = (int)strlen(out->address);
      out->port = ntohs(ss->ss_family == AF_INET ? ((const struct sockaddr_in *)ss)->sin_port
                                                 : ((const struct sockaddr_in6 *)ss)->sin6_port);
      return 0;
    }
    case AF_UNIX: {
      const struct sockaddr_un *sun = (const struct sockaddr_un *)ss;
      size_t offset = offsetof(struct sockaddr_un, sun_path);
      if (len <= offset) return 0; /* unnamed: a socketpair end or a client that never bound */
      size_t n = len - offset;
      if (n > sizeof sun->sun_path) n = sizeof sun->sun_path;
#ifdef __linux__
      if (sun->sun_path[0] == '\0') {
        /* Linux's abstract namespace: the name is every byte after the NUL (no terminator),
         * reported with its leading NUL, as node:net does, so that it goes back into
         * np_dial_unix/np_listen_unix unchanged. (Linux gives an unnamed socket no
         * sun_path at all, caught above.) */
        memcpy(out->address, sun->sun_path, n);
        out->address_len = (int)n;
        out->address[n] = '\0';
        return 0;
      }
#endif
      /* Elsewhere there is no abstract namespace, and an unnamed socket comes back with a
       * zeroed sun_path (macOS and the BSDs return the whole structure): the path ends at
       * its first NUL, so that one is '' too. */
      n = strnlen(sun->sun_path, n);
      if (n > sizeof out->address - 1) n = sizeof out->address - 1;
      memcpy(out->address, sun->sun_path, n);
      out->address[n] = '\0';
      out->address_len = (int)n;
      return 0;
    }
    default:
      return -EAFNOSUPPORT;
  }
}

/* getsockname or getpeername, formatted. */
static int socket_name(int fd, np_addr *out, int (*name)(int, struct sockaddr *, socklen_t *)) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  memset(&ss, 0, sizeof ss);
  if (name(fd, (struct sockaddr *)&ss, &len) < 0) return -errno;
  return format_address(&ss, len, out);
}

int np_local_address(int fd, np_addr *out) { return socket_name(fd, out, getsockname); }

/* An empty address ('' and port 0) of `fd`'s own family, for when the kernel gives none. */
static void no_address(int fd, np_addr *out) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  memset(&ss, 0, sizeof ss);
  out->family = getsockname(fd, (struct sockaddr *)&ss, &len) == 0 ? ss.ss_family : AF_UNSPEC;
  out->port = 0;
  out->address[0] = '\0';
  out->address_len = 0;
}

int np_remote_address(int fd, np_addr *out) { return socket_name(fd, out, getpeername); }

/* ---- options ---- */

static int set_int(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof value) == 0 ? 0 : -errno;
}

/* The level and name of one of the NP_OPT_* options; -ENOPROTOOPT where the platform lacks it. */
static int option_of(int opt, int *level, int *name) {
  switch (opt) {
    case NP_OPT_NODELAY: *level = IPPROTO_TCP; *name = TCP_NODELAY; return 0;
    case NP_OPT_KEEPALIVE: *level = SOL_SOCKET; *name = SO_KEEPALIVE; return 0;
#if defined(TCP_KEEPIDLE)
    case NP_OPT_KEEPIDLE: *level = IPPROTO_TCP; *name = TCP_KEEPIDLE; return 0;
#elif defined(TCP_KEEPALIVE)
    case NP_OPT_KEEPIDLE: *level = IPPROTO_TCP; *name = TCP_KEEPALIVE; return 0; /* Darwin's name */
#endif
#ifdef TCP_KEEPINTVL
    case NP_OPT_KEEPINTVL: *level = IPPROTO_TCP; *name = TCP_KEEPINTVL; return 0;
#endif
#ifdef TCP_KEEPCNT
    case NP_OPT_KEEPCNT: *level = IPPROTO_TCP; *name = TCP_KEEPCNT; return 0;
#endif
    case NP_OPT_RCVBUF: *level = SOL_SOCKET; *name = SO_RCVBUF; return 0;
    case NP_OPT_SNDBUF: *level = SOL_SOCKET; *name = SO_SNDBUF; return 0;
    case NP_OPT_REUSEADDR: *level = SOL_SOCKET; *name = SO_REUSEADDR; return 0;
#ifdef SO_REUSEPORT
    case NP_OPT_REUSEPORT: *level = SOL_SOCKET; *name = SO_REUSEPORT; return 0;
#endif
    case NP_OPT_V6ONLY: *level = IPPROTO_IPV6; *name = IPV6_V6ONLY; return 0;
    default: return opt >= 0 && opt < NP_OPT_COUNT ? -ENOPROTOOPT : -EINVAL;
  }
}

int np_setsockopt(int fd, int opt, int value) {
  int level, name, err = option_of(opt, &level, &name);
  if (err < 0) return err;
  return set_int(fd, level, name, value);
}

int np_getsockopt(int fd, int opt) {
  int level, name, err = option_of(opt, &level, &name);
  if (err < 0) return err;
  int value = 0;
  socklen_t len = sizeof value;
  if (getsockopt(fd, level, name, &value, &len) < 0) return -errno;
  /* Every option here is a size, a count or a flag; a flag may read back as any
   * nonzero value (Darwin gives its bit), so callers test flags against 0. */
  return value < 0 ? 0 : value;
}

int np_set_keepalive(int fd, int on, int idle_seconds) {
  int err = np_setsockopt(fd, NP_OPT_KEEPALIVE, on ? 1 : 0);
  if (err < 0 || !on || idle_seconds <= 0) return err;
  int interval = idle_seconds / 5 > 0 ? idle_seconds / 5 : 1;
  if ((err = np_setsockopt(fd, NP_OPT_KEEPIDLE, idle_seconds)) < 0) return err;
  if ((err = np_setsockopt(fd, NP_OPT_KEEPINTVL, interval)) < 0 && err != -ENOPROTOOPT) return err;
  if ((err = np_setsockopt(fd, NP_OPT_KEEPCNT, 5)) < 0 && err != -ENOPROTOOPT) return err;
  return 0;
}

static int apply_flags(int fd, int family, int flags) {
  int err;
  if ((flags & NP_SOCK_REUSEADDR) && (err = set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1)) < 0) return err;
  if (flags & NP_SOCK_REUSEPORT) {
#ifdef SO_REUSEPORT
    if ((err = set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1)) < 0) return err;
#else
    return -ENOPROTOOPT;
#endif
  }
  /* Set both ways: the system default for IPv6 sockets varies (net.ipv6.bindv6only). */
  if (family == AF_INET6 && (err = set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, (flags & NP_SOCK_V6ONLY) ? 1 : 0)) < 0) return err;
  return 0;
}

/* ---- TCP ---- */

/* A socket of `type` with the options in `flags`, bound to host:port. */
static int bound_socket(const char *host, int port, int type, int flags) {
  struct sockaddr_storage ss;
  socklen_t len;
  int err = parse_address(host, port, &ss, &len);
  if (err < 0) return err;
  int fd = new_socket(ss.ss_family, type);
  if (fd < 0) return fd;
  if ((err = apply_flags(fd, ss.ss_family, flags)) < 0) return fail_close(fd, err);
  if (bind(fd, (struct sockaddr *)&ss, len) < 0) return fail_close(fd, -errno);
  return fd;
}

int np_listen_tcp(const char *host, int port, int backlog, int flags) {
  int fd = bound_socket(host, port, SOCK_STREAM, flags);
  if (fd < 0) return fd;
  if (listen(fd, backlog) < 0) return fail_close(fd, -errno);
  return fd;
}

int np_accept(int listen_fd, np_addr *peer) {
  for (;;) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(&ss, 0, sizeof ss);
#ifdef NP_HAVE_ACCEPT4
    int fd = accept4(listen_fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
    int fd = accept(listen_fd, (struct sockaddr *)&ss, &len);
#endif
    if (fd < 0) {
      /* A connection reset before we took it is not the listener's failure (Go and libuv retry too). */
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return -errno;
    }
#ifndef NP_HAVE_ACCEPT4
    int err = set_nonblocking_cloexec(fd);
    if (err < 0) return fail_close(fd, err);
#endif
    no_sigpipe(fd);
    if (peer != NULL && format_address(&ss, len, peer) < 0) {
      peer->family = ss.ss_family;
      peer->port = 0;
      peer->address[0] = '\0';
      peer->address_len = 0;
    }
    return fd;
  }
}

/* Waits for a connect that returned EINPROGRESS, as Go's blocking net.Dial does. */
static int wait_connected(int fd) {
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLOUT, .revents = 0};
    int r = poll(&p, 1, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -errno;
    return np_socket_error(fd);
  }
}

int np_dial_tcp(const char *host, int port, int nonblocking) {
  struct sockaddr_storage ss;
  socklen_t len;
  int err = parse_address(host, port, &ss, &len);
  if (err < 0) return err;
  int fd = new_socket(ss.ss_family, SOCK_STREAM);
  if (fd < 0) return fd;
  if (connect(fd, (struct sockaddr *)&ss, len) == 0) return fd;
  if (errno != EINPROGRESS) return fail_close(fd, -errno);
  if (nonblocking) return fd;
  if ((err = wait_connected(fd)) < 0) return fail_close(fd, err);
  return fd;
}

int np_socket_error(int fd) {
  int soerr = 0;
  socklen_t len = sizeof soerr;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0) return -errno;
  return -soerr;
}

/* ---- Unix stream sockets ---- */

/* Binds `fd` at `sun` so that the socket file is created with exactly `mode`, in one
 * step: there is no step after bind() that names the file again. An earlier version
 * chmod()ed the file after bind (through /proc/self/fd, or by name where /proc was
 * missing) and unlink()ed it on failure; a user who can write a directory on the path
 * could swap the socket, or flip a parent directory to a symlink, in between, and make
 * this process chmod or delete some other file. Nothing here can be redirected that way:
 * bind() looks the path up once and only ever creates a new file (EADDRINUSE if the name
 * exists), and what it creates already has its final mode.
 *
 * The mode comes from the umask, which bind() applies (Linux: to the socket's inode
 * mode, 0777 for a fresh socket; macOS and the BSDs: to 0777). The umask belongs to the
 * whole process, and changing it around bind() would race with every other thread
 * creating files, so bind() runs in a child process that shares the socket (a child
 * gets its own umask): vfork() on Linux, where the child borrows this thread's memory
 * and this thread waits; fork() elsewhere. The child calls only async-signal-safe
 * functions (umask, bind, write, _exit), with every signal blocked so that no handler
 * of ours runs in it, and reports bind's errno through a pipe (not its exit status: a
 * process that ignores SIGCHLD has its children reaped for it). */
#if defined(__linux__) && !defined(NP_BIND_WITH_FORK)
#define np_fork_for_bind vfork
#else
#define np_fork_for_bind fork
#endif

/* The child's part; never returns. */
static void bind_in_child(int fd, const struct sockaddr_un *sun, socklen_t len, mode_t mode, int report) {
  umask(0777 & ~mode);
  int err = bind(fd, (const struct sockaddr *)sun, len) == 0 ? 0 : errno;
  ssize_t unused = write(report, &err, sizeof err);
  (void)unused;
  _exit(0);
}

static int bind_with_mode(int fd, const struct sockaddr_un *sun, socklen_t len, mode_t mode) {
#ifdef __linux__
  /* Linux creates the file with the socket inode's mode less the umask, and then lets a
   * default ACL on the directory narrow it: with the inode at `mode` too, nothing can
   * make the file looser than asked, whatever the umask or an ACL does. */
  if (fchmod(fd, mode) < 0) return -errno;
#endif
  int report[2];
  int err = np_pipe(report);
  if (err < 0) return err;
  sigset_t all, old;
  sigfillset(&all);
  if (thread_sigmask(SIG_SETMASK, &all, &old) != 0) {
    err = -errno;
    close(report[0]);
    close(report[1]);
    return err;
  }
  pid_t pid = np_fork_for_bind();
  if (pid == 0) bind_in_child(fd, sun, len, mode, report[1]);
  int fork_errno = errno;
  thread_sigmask(SIG_SETMASK, &old, NULL);
  close(report[1]);
  if (pid < 0) {
    close(report[0]);
    return -fork_errno;
  }
  int child_errno = 0;
  ssize_t got;
  do {
    /* After vfork the child has exited already; after fork this waits for its report. */
    struct pollfd p = {.fd = report[0], .events = POLLIN, .revents = 0};
    poll(&p, 1, -1);
    got = read(report[0], &child_errno, sizeof child_errno);
  } while (got < 0 && (errno == EINTR || errno == EAGAIN));
  close(report[0]);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
  }
  if (got != (ssize_t)sizeof child_errno) return -ECHILD; /* the child died before it could tell */
  return -child_errno;
}

int np_listen_unix(const char *path, size_t path_len, int backlog, int mode) {
  struct sockaddr_un sun;
  socklen_t len;
  int err = fill_unix_address(path, path_len, &sun, &len);
  if (err < 0) return err;
  if (mode > 0777) return -EINVAL;
  if (mode >= 0 && path[0] == '\0') return -EINVAL; /* an abstract name has no file to give a mode */
  int fd = new_socket(AF_UNIX, SOCK_STREAM);
  if (fd < 0) return fd;
  if (mode < 0) {
    if (bind(fd, (struct sockaddr *)&sun, len) < 0) return fail_close(fd, -errno);
  } else if ((err = bind_with_mode(fd, &sun, len, (mode_t)mode)) < 0) {
    return fail_close(fd, err);
  }
  if (listen(fd, backlog) < 0) return fail_close(fd, -errno);
  return fd;
}

/* ---- peer credentials ---- */

int np_peer_credentials(int fd, np_peer_cred *out) {
  /* Only a connected Unix socket has a peer process: getpeername tells both at once
   * (Linux would answer SO_PEERCRED on TCP with placeholder ids). */
  struct sockaddr_storage ss;
  socklen_t sslen = sizeof ss;
  memset(&ss, 0, sizeof ss);
  if (getpeername(fd, (struct sockaddr *)&ss, &sslen) < 0) return -errno;
  if (ss.ss_family != AF_UNIX) return -EAFNOSUPPORT;
  out->pid = -1;
#if defined(__linux__)
  struct ucred uc;
  socklen_t len = sizeof uc;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0) return -errno;
  /* 0 when the peer's pid has no number in this pid namespace (a peer in a sibling or
   * parent namespace): the system does not know it here. */
  if (uc.pid > 0) out->pid = uc.pid;
  out->uid = uc.uid;
  out->gid = uc.gid;
#elif defined(__OpenBSD__)
  struct sockpeercred pc;
  socklen_t len = sizeof pc;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &pc, &len) < 0) return -errno;
  out->pid = pc.pid;
  out->uid = pc.uid;
  out->gid = pc.gid;
#elif defined(__NetBSD__)
  struct unpcbid id;
  socklen_t len = sizeof id;
  if (getsockopt(fd, SOL_LOCAL, LOCAL_PEEREID, &id, &len) < 0) return -errno;
  out->pid = id.unp_pid;
  out->uid = id.unp_euid;
  out->gid = id.unp_egid;
#else
  /* macOS and FreeBSD: the effective ids from getpeereid; the pid where a socket option gives it. */
  uid_t uid;
  gid_t gid;
  if (getpeereid(fd, &uid, &gid) < 0) return -errno;
  out->uid = uid;
  out->gid = gid;
#if defined(LOCAL_PEERPID)
  pid_t pid;
  socklen_t len = sizeof pid;
  if (getsockopt(fd, SOL_LOCAL, LOCAL_PEERPID, &pid, &len) == 0) out->pid = pid;
#elif defined(__FreeBSD__) && __FreeBSD_version >= 1300030
  struct xucred xu;
  socklen_t len = sizeof xu;
  if (getsockopt(fd, SOL_LOCAL, LOCAL_PEERCRED, &xu, &len) == 0 && xu.cr_version == XUCRED_VERSION) out->pid = xu.cr_pid;
#endif
#endif
  return 0;
}

int np_dial_unix(const char *path, size_t path_len) {
  struct sockaddr_un sun;
  socklen_t len;
  int err = fill_unix_address(path, path_len, &sun, &len);
  if (err < 0) return err;
  int fd = new_socket(AF_UNIX, SOCK_STREAM);
  if (fd < 0) return fd;
  for (;;) {
    if (connect(fd, (struct sockaddr *)&sun, len) == 0) return fd;
    if (errno == EINTR) continue;
    /* Linux answers a full backlog with EAGAIN (nothing is in progress: retrying is
     * the caller's choice); the BSDs may report EINPROGRESS, finished below. */
    if (errno != EINPROGRESS) return fail_close(fd, -errno);
    if ((err = wait_connected(fd)) < 0) return fail_close(fd, err);
    return fd;
  }
}

/* ---- UDP ---- */

int np_bind_udp(const char *host, int port, int flags) {
  return bound_socket(host, port, SOCK_DGRAM, flags);
}

ssize_t np_send_to(int fd, const void *buf, size_t len, const char *host, int port) {
  struct sockaddr_storage ss;
  socklen_t sslen;
  int err = parse_address(host, port, &ss, &sslen);
  if (err < 0) return err;
  for (;;) {
    ssize_t n = sendto(fd, buf, len, MSG_NOSIGNAL, (struct sockaddr *)&ss, sslen);
    if (n >= 0) return n;
    if (errno != EINTR) return -errno;
  }
}

ssize_t np_recv_from(int fd, void *buf, size_t len, np_addr *from) {
  for (;;) {
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof ss;
    memset(&ss, 0, sizeof ss);
    ssize_t n = recvfrom(fd, buf, len, 0, (struct sockaddr *)&ss, &sslen);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -errno;
    if (from == NULL) return n;
    if (sslen == 0 || ss.ss_family == AF_UNSPEC) {
      /* No source address: a connected stream socket (TCP) has none to give, and neither
       * has an unnamed Unix sender. Say so with an empty one of the socket's own family. */
      no_address(fd, from);
    } else if (format_address(&ss, sslen, from) < 0) {
      from->family = ss.ss_family;
      from->port = 0;
      from->address[0] = '\0';
      from->address_len = 0;
    }
    return n;
  }
}

/* ---- I/O ---- */

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
 * consumed before unblocking; one already pending (someone else's) is left alone.
 *
 * The write need not fail for that: Linux raises SIGPIPE when the reader leaves in the
 * middle of a blocking write and still returns the count written before. So whatever
 * the result, a SIGPIPE pending after the call that was not before it is the write's. */

typedef struct sigpipe_guard {
  sigset_t set, old;
  int blocked, was_pending;
} sigpipe_guard;

static int sigpipe_pending(void) {
  sigset_t pending;
  return sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
}

static void sigpipe_block(sigpipe_guard *g) {
  sigemptyset(&g->set);
  sigaddset(&g->set, SIGPIPE);
  g->blocked = thread_sigmask(SIG_BLOCK, &g->set, &g->old) == 0;
  g->was_pending = g->blocked && sigpipe_pending();
}

/* Takes a pending SIGPIPE without ever blocking. sigtimedwait with a zero timeout does
 * that where it exists; elsewhere (macOS, OpenBSD) sigwait, only after sigpending saw
 * one. The signal the kernel raised during write() is directed at this thread, so no
 * other thread can take it in between. */
static void sigpipe_consume(const sigset_t *set) {
#if defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__)
  static const struct timespec no_wait = {0, 0};
  while (sigtimedwait(set, NULL, &no_wait) < 0 && errno == EINTR) {
  }
#else
  int sig;
  if (sigpipe_pending()) sigwait(set, &sig);
#endif
}

/* Consumes the SIGPIPE the write raised, if any, and restores the mask; keeps errno. */
static void sigpipe_unblock(sigpipe_guard *g) {
  int saved_errno = errno;
  if (!g->blocked) return;
  if (!g->was_pending) sigpipe_consume(&g->set);
  thread_sigmask(SIG_SETMASK, &g->old, NULL);
  errno = saved_errno;
}

static ssize_t write_without_sigpipe(int fd, const void *buf, size_t len) {
  sigpipe_guard g;
  sigpipe_block(&g);
  ssize_t n = write(fd, buf, len);
  sigpipe_unblock(&g);
  return n;
}

static ssize_t writev_without_sigpipe(int fd, const struct iovec *iov, int count) {
  sigpipe_guard g;
  sigpipe_block(&g);
  ssize_t n = writev(fd, iov, count);
  sigpipe_unblock(&g);
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

ssize_t np_readv(int fd, const struct iovec *iov, int count) {
  if (count > NP_IOV_MAX) count = NP_IOV_MAX;
  for (;;) {
    ssize_t n = readv(fd, iov, count);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    return -errno;
  }
}

ssize_t np_writev(int fd, const struct iovec *iov, int count) {
  if (count > NP_IOV_MAX) count = NP_IOV_MAX;
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = (struct iovec *)iov;
  msg.msg_iovlen = count;
  for (;;) {
    /* sendmsg for MSG_NOSIGNAL, as in np_write; writev for pipes and files. */
    ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == ENOTSOCK) n = writev_without_sigpipe(fd, iov, count);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    return -errno;
  }
}

ssize_t np_send_urgent(int fd, const void *buf, size_t len) {
  for (;;) {
    ssize_t n = send(fd, buf, len, MSG_OOB | MSG_NOSIGNAL);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    return -errno;
  }
}

ssize_t np_recv_urgent(int fd, void *buf, size_t len) {
  for (;;) {
    ssize_t n = recv(fd, buf, len, MSG_OOB);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    return -errno;
  }
}

int np_shutdown(int fd, int how) {
  int native;
  switch (how) {
    case NP_SHUT_RD: native = SHUT_RD; break;
    case NP_SHUT_WR: native = SHUT_WR; break;
    case NP_SHUT_RDWR: native = SHUT_RDWR; break;
    default: return -EINVAL;
  }
  return shutdown(fd, native) == 0 ? 0 : -errno;
}

int np_close(int fd) {
  /* No retry on EINTR: on Linux the descriptor is already gone. */
  return close(fd) == 0 || errno == EINTR ? 0 : -errno;
}

int np_dup(int fd) {
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  return copy < 0 ? -errno : copy;
}
