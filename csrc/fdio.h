/*
 * File-descriptor helpers the binding exposes: pipes, socketpairs, TCP dialing
 * and plain reads and writes. Plain C; every call returns a count or a new fd on
 * success and a negative errno on failure. Every descriptor it creates is
 * nonblocking and close-on-exec.
 */
#ifndef NETPOLL_FDIO_H
#define NETPOLL_FDIO_H

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

int np_pipe(int fds[2]);
int np_socketpair(int fds[2]);
/* Connects to a numeric IPv4 or IPv6 address. With nonblocking = 0 the connect
 * completes before the call returns; with 1 it may still be in progress (a write
 * event then tells it finished, and np_socket_error tells how). */
int np_dial_tcp(const char *host, int port, int nonblocking);
int np_socket_error(int fd);
ssize_t np_read(int fd, void *buf, size_t len);
ssize_t np_write(int fd, const void *buf, size_t len);
int np_close(int fd);

#ifdef __cplusplus
}
#endif

#endif
