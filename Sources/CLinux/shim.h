#ifndef TANDEM_CLINUX_SHIM_H
#define TANDEM_CLINUX_SHIM_H
/* Linux calls Glibc's Swift module leaves out: epoll, and those behind _GNU_SOURCE, which a shim
   cannot define for Glibc's module (LIBOSIP2.md "Swift 6 notes"). */
#include <sys/epoll.h>
#include <sys/socket.h>

extern int tandem_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) __asm__("accept4");

static inline unsigned int tandem_epollin(void) { return EPOLLIN; }
static inline unsigned int tandem_epollout(void) { return EPOLLOUT; }
static inline unsigned int tandem_epollerr(void) { return EPOLLERR; }
static inline unsigned int tandem_epollhup(void) { return EPOLLHUP; }
static inline unsigned int tandem_epollrdhup(void) { return EPOLLRDHUP; }
#endif
