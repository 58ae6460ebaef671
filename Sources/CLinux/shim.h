#ifndef TANDEM_CLINUX_SHIM_H
#define TANDEM_CLINUX_SHIM_H
/* Linux calls Glibc's Swift module leaves out: epoll, and those behind _GNU_SOURCE, which a shim
   cannot define for Glibc's module (LIBOSIP2.md "Swift 6 notes"). */
#include <sys/epoll.h>
#include <sys/socket.h>

extern int tandem_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) __asm__("accept4");

/* struct mmsghdr and recvmmsg hide behind _GNU_SOURCE: the same layout under our own name, and the
   call bound to the libc symbol with an asm label (LIBOSIP2.md "Swift 6 notes"). */
struct tandem_mmsghdr {
    struct msghdr msg_hdr;
    unsigned int msg_len;
};
struct timespec;
extern int tandem_recvmmsg(int fd, struct tandem_mmsghdr *vector, unsigned int length, int flags,
                           struct timespec *timeout) __asm__("recvmmsg");
#define TANDEM_MSG_WAITFORONE 0x10000

/* pthread_setname_np, also behind _GNU_SOURCE: the kernel's name of a thread (top -H, /proc/PID/task),
   at most 15 bytes. */
#include <pthread.h>
extern int tandem_pthread_setname_np(pthread_t thread, const char *name) __asm__("pthread_setname_np");

/* mallopt's parameters are macros Glibc's module leaves out. */
#include <malloc.h>
static inline int tandem_malloc_trim_threshold(int bytes) { return mallopt(M_TRIM_THRESHOLD, bytes); }

static inline int tandem_msg_waitforone(void) { return TANDEM_MSG_WAITFORONE; }

static inline unsigned int tandem_epollin(void) { return EPOLLIN; }
static inline unsigned int tandem_epollout(void) { return EPOLLOUT; }
static inline unsigned int tandem_epollerr(void) { return EPOLLERR; }
static inline unsigned int tandem_epollhup(void) { return EPOLLHUP; }
static inline unsigned int tandem_epollrdhup(void) { return EPOLLRDHUP; }
#endif
