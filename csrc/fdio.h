/*
 * The socket toolkit's C half: pipes, socketpairs, TCP/Unix/UDP sockets,
 * nonblocking I/O, options and names. Plain C, no Node headers; every call
 * returns a count, a new fd or 0 on success and a negative errno on failure.
 *
 * Every descriptor it creates is nonblocking and close-on-exec, and no write
 * on a socket it made can raise SIGPIPE: sends pass MSG_NOSIGNAL on Linux and
 * the BSDs, and sockets carry SO_NOSIGPIPE on Darwin.
 *
 * Addresses are numeric only (getaddrinfo with AI_NUMERICHOST): resolving
 * names blocks, so it belongs to the caller (dns.lookup), not to a poller loop.
 */
#ifndef NETPOLL_FDIO_H
#define NETPOLL_FDIO_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A socket address in node:net's terms. */
typedef struct np_addr {
  int family;        /* AF_INET, AF_INET6 or AF_UNIX */
  int port;          /* 0 for AF_UNIX */
  char address[128]; /* the numeric host (IPv6 with its %zone), or the Unix path ("" when unnamed;
                        a Linux abstract name with its leading NUL), NUL-terminated */
  int address_len;   /* its length in bytes: an abstract name may hold NULs */
} np_addr;

/* Returned instead of an errno by the calls that take a numeric host when the system
 * refuses the host itself (getaddrinfo with AI_NUMERICHOST): an IPv6 zone that names no
 * interface, or a zone on an address that takes none. Far outside the errno range, so
 * the caller can tell a bad argument from a kernel error. */
#define NP_EBADADDR (-0x10000)

/* Who is on the other end of a connected Unix socket. */
typedef struct np_peer_cred {
  long pid;      /* -1 where the system does not tell it */
  unsigned long uid;
  unsigned long gid;
} np_peer_cred;

/* Flags for np_listen_tcp and np_bind_udp. */
enum {
  NP_SOCK_REUSEADDR = 1,
  NP_SOCK_REUSEPORT = 2,
  NP_SOCK_V6ONLY = 4
};

/* The integer socket options np_setsockopt/np_getsockopt know by name. */
enum {
  NP_OPT_NODELAY = 0,
  NP_OPT_KEEPALIVE,
  NP_OPT_KEEPIDLE,
  NP_OPT_KEEPINTVL,
  NP_OPT_KEEPCNT,
  NP_OPT_RCVBUF,
  NP_OPT_SNDBUF,
  NP_OPT_REUSEADDR,
  NP_OPT_REUSEPORT,
  NP_OPT_V6ONLY,
  NP_OPT_COUNT
};

/* np_shutdown's directions, independent of the platform's SHUT_* values. */
enum { NP_SHUT_RD = 0, NP_SHUT_WR = 1, NP_SHUT_RDWR = 2 };

/* The most buffers one np_readv/np_writev call takes (IOV_MAX, at most 1024). */
int np_iov_max(void);

int np_pipe(int fds[2]);
int np_socketpair(int fds[2]);

/* A listening TCP socket bound to a numeric IPv4 or IPv6 address. */
int np_listen_tcp(const char *host, int port, int backlog, int flags);
/* The next pending connection, or -EAGAIN when none waits. `peer` may be NULL. */
int np_accept(int listen_fd, np_addr *peer);
/* Connects to a numeric IPv4 or IPv6 address. With nonblocking = 0 the connect
 * completes before the call returns; with 1 it may still be in progress (a write
 * event then tells it finished, and np_socket_error tells how). */
int np_dial_tcp(const char *host, int port, int nonblocking);
int np_socket_error(int fd);

/* Unix socket names are `path_len` bytes: a file path without NULs, or on Linux an
 * abstract name, written as node:net writes it: a leading NUL, then the name's bytes
 * (-EAFNOSUPPORT elsewhere). What np_local_address and np_remote_address report goes
 * back in unchanged. */

/* A listening Unix stream socket at `path`. With mode >= 0 the socket file is created
 * with exactly that mode (the umask does not apply), in one step, by a child process
 * with its own umask (see bind_with_mode): there is no later step that looks the path
 * up again, so a directory on it that others can write cannot redirect a chmod or an
 * unlink. -EINVAL for a mode with an abstract name (it has no file). With mode < 0 bind
 * gives the file what the umask leaves. */
int np_listen_unix(const char *path, size_t path_len, int backlog, int mode);
int np_dial_unix(const char *path, size_t path_len);
/* The peer's pid (-1 where the system does not give it, or has no number for it in this
 * pid namespace), uid and gid: SO_PEERCRED, LOCAL_PEEREID, getpeereid.
 * -ENOTCONN when not connected, -EAFNOSUPPORT when not a Unix socket. */
int np_peer_credentials(int fd, np_peer_cred *out);

int np_bind_udp(const char *host, int port, int flags);
ssize_t np_send_to(int fd, const void *buf, size_t len, const char *host, int port);
ssize_t np_recv_from(int fd, void *buf, size_t len, np_addr *from);

ssize_t np_read(int fd, void *buf, size_t len);
ssize_t np_write(int fd, const void *buf, size_t len);
ssize_t np_readv(int fd, const struct iovec *iov, int count);
ssize_t np_writev(int fd, const struct iovec *iov, int count);
/* TCP urgent data (MSG_OOB): what makes a peer's poller report EPOLLPRI. */
ssize_t np_send_urgent(int fd, const void *buf, size_t len);
ssize_t np_recv_urgent(int fd, void *buf, size_t len);
int np_shutdown(int fd, int how);
int np_close(int fd);
/* A close-on-exec duplicate sharing the original's socket and file status flags. */
int np_dup(int fd);

int np_setsockopt(int fd, int opt, int value);
/* The option's value (>= 0) or a negative errno. */
int np_getsockopt(int fd, int opt);
/* SO_KEEPALIVE, and with idle_seconds > 0 gnet's SetKeepAlivePeriod: idle time,
 * probe interval idle/5 (at least 1 s) and 5 probes. */
int np_set_keepalive(int fd, int on, int idle_seconds);

int np_local_address(int fd, np_addr *out);
int np_remote_address(int fd, np_addr *out);

#ifdef __cplusplus
}
#endif

#endif
