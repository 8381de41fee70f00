#define _GNU_SOURCE
#include "CWeftLinux.h"

#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int weft_tun_attach(int fd, const char *name, int flags, char *out_name) {
  struct ifreq request;
  memset(&request, 0, sizeof(request));
  strncpy(request.ifr_name, name, IFNAMSIZ - 1);
  request.ifr_flags = (short)flags;
  if (ioctl(fd, TUNSETIFF, &request) != 0) return -1;
  memcpy(out_name, request.ifr_name, IFNAMSIZ);
  out_name[IFNAMSIZ - 1] = 0;
  return 0;
}

int weft_spawn_add_closefrom(void *actions, int lowest) {
  return posix_spawn_file_actions_addclosefrom_np((posix_spawn_file_actions_t *)actions, lowest);
}

void weft_line_buffer_stdout(void) { setvbuf(stdout, NULL, _IOLBF, 0); }

int weft_ioctl_ptr(int fd, unsigned long request, void *arg) { return ioctl(fd, request, arg); }

int weft_ioctl_int(int fd, unsigned long request, unsigned long arg) { return ioctl(fd, request, arg); }

int weft_setns(int fd, int nstype) { return setns(fd, nstype); }

int weft_unshare(int flags) { return unshare(flags); }

int weft_mount(const char *source, const char *target, const char *fstype, unsigned long flags) {
  return mount(source, target, fstype, flags, NULL);
}

int weft_umount2(const char *target, int flags) { return umount2(target, flags); }

int weft_set_thread_name(const char *name) {
  char shortened[16];
  strncpy(shortened, name, sizeof(shortened) - 1);
  shortened[sizeof(shortened) - 1] = 0;
  return pthread_setname_np(pthread_self(), shortened);
}

pid_t weft_gettid(void) { return (pid_t)syscall(SYS_gettid); }

enum { WEFT_BATCH_MAX = 64 };

int weft_send_batch(int fd, struct weft_datagram *datagrams, unsigned int count) {
  struct mmsghdr msgs[WEFT_BATCH_MAX];
  struct iovec iovs[WEFT_BATCH_MAX];
  char controls[WEFT_BATCH_MAX][CMSG_SPACE(sizeof(uint16_t))];
  if (count > WEFT_BATCH_MAX) count = WEFT_BATCH_MAX;
  memset(msgs, 0, sizeof(struct mmsghdr) * count);
  for (unsigned int i = 0; i < count; i++) {
    struct weft_datagram *d = &datagrams[i];
    iovs[i].iov_base = d->base;
    iovs[i].iov_len = d->length;
    struct msghdr *h = &msgs[i].msg_hdr;
    h->msg_iov = &iovs[i];
    h->msg_iovlen = 1;
    if (d->peer_length > 0) {
      h->msg_name = &d->peer;
      h->msg_namelen = d->peer_length;
    }
    if (d->segment_size > 0) {
      memset(controls[i], 0, sizeof(controls[i]));
      h->msg_control = controls[i];
      h->msg_controllen = sizeof(controls[i]);
      struct cmsghdr *c = CMSG_FIRSTHDR(h);
      c->cmsg_level = WEFT_SOL_UDP;
      c->cmsg_type = WEFT_UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      memcpy(CMSG_DATA(c), &d->segment_size, sizeof(uint16_t));
    }
  }
  return sendmmsg(fd, msgs, count, 0);
}

int weft_recv_batch(int fd, struct weft_datagram *datagrams, unsigned int count, int nonblocking) {
  struct mmsghdr msgs[WEFT_BATCH_MAX];
  struct iovec iovs[WEFT_BATCH_MAX];
  char controls[WEFT_BATCH_MAX][CMSG_SPACE(sizeof(int))];
  if (count > WEFT_BATCH_MAX) count = WEFT_BATCH_MAX;
  memset(msgs, 0, sizeof(struct mmsghdr) * count);
  for (unsigned int i = 0; i < count; i++) {
    struct weft_datagram *d = &datagrams[i];
    iovs[i].iov_base = d->base;
    iovs[i].iov_len = d->capacity;
    struct msghdr *h = &msgs[i].msg_hdr;
    h->msg_iov = &iovs[i];
    h->msg_iovlen = 1;
    h->msg_name = &d->peer;
    h->msg_namelen = sizeof(d->peer);
    h->msg_control = controls[i];
    h->msg_controllen = sizeof(controls[i]);
  }
  int n = recvmmsg(fd, msgs, count, nonblocking ? MSG_DONTWAIT : MSG_WAITFORONE, NULL);
  for (int i = 0; i < n; i++) {
    struct weft_datagram *d = &datagrams[i];
    struct msghdr *h = &msgs[i].msg_hdr;
    d->length = msgs[i].msg_len;
    d->peer_length = h->msg_namelen;
    d->segment_size = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c != NULL; c = CMSG_NXTHDR(h, c)) {
      if (c->cmsg_level == WEFT_SOL_UDP && c->cmsg_type == WEFT_UDP_GRO) {
        int size = 0;
        memcpy(&size, CMSG_DATA(c), sizeof(int));
        d->segment_size = (uint16_t)size;
      }
    }
  }
  return n;
}
