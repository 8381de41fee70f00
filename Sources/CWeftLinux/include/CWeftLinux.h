// C shim for Weft: kernel-header constants and the calls Swift cannot make directly
// (variadic ioctl, CMSG_* macros, batched socket I/O, namespace syscalls).
#ifndef CWEFTLINUX_H
#define CWEFTLINUX_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_link.h>
#include <linux/if_addr.h>
#include <linux/if_arp.h>
#include <linux/neighbour.h>
#include <linux/if_bridge.h>
#include <linux/veth.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <linux/udp.h>
#include <sys/mount.h>
#include <sched.h>

/// Ioctl request numbers (function-like macros in the headers).
static const unsigned long WEFT_TUNSETIFF = TUNSETIFF;
static const unsigned long WEFT_TUNSETOFFLOAD = TUNSETOFFLOAD;
static const unsigned long WEFT_TUNSETVNETHDRSZ = TUNSETVNETHDRSZ;
static const unsigned long WEFT_TUNGETFEATURES = TUNGETFEATURES;
static const unsigned long WEFT_TUNSETPERSIST = TUNSETPERSIST;
static const int WEFT_UDP_SEGMENT = 103;  // UDP_SEGMENT, not in every libc header
static const int WEFT_UDP_GRO = 104;      // UDP_GRO
static const int WEFT_SOL_UDP = 17;
static const int WEFT_CLONE_NEWNET = 0x40000000;  // CLONE_NEWNET, from sched.h under _GNU_SOURCE
static const short WEFT_POSIX_SPAWN_SETSID = 0x80;  // POSIX_SPAWN_SETSID, from spawn.h under _GNU_SOURCE

static const unsigned int WEFT_TUN_F_USO4 = 0x20;  // newer than some installed headers
static const unsigned int WEFT_TUN_F_USO6 = 0x40;

/// Attaches `fd` (an open /dev/net/tun) to the device `name` with IFF_* `flags` (TUNSETIFF);
/// writes the kernel's chosen name into `out_name` (IFNAMSIZ bytes). Returns 0 or -1 with errno.
int weft_tun_attach(int fd, const char *name, int flags, char *out_name);

/// Adds "close every descriptor from `lowest` up" to spawn file actions (glibc 2.34+), so a
/// detached child keeps no pipe of its parent open.
int weft_spawn_add_closefrom(void *actions, int lowest);

/// Makes stdout line buffered (so logs written to a file appear line by line).
void weft_line_buffer_stdout(void);

/// Calls ioctl with a pointer argument.
int weft_ioctl_ptr(int fd, unsigned long request, void *arg);
/// Calls ioctl with an integer argument.
int weft_ioctl_int(int fd, unsigned long request, unsigned long arg);

/// setns(2).
int weft_setns(int fd, int nstype);
/// unshare(2).
int weft_unshare(int flags);
/// mount(2) and umount2(2).
int weft_mount(const char *source, const char *target, const char *fstype, unsigned long flags);
int weft_umount2(const char *target, int flags);

/// Names the calling thread (at most 15 bytes are kept); 0 on success.
int weft_set_thread_name(const char *name);
/// gettid(2).
pid_t weft_gettid(void);

/// One datagram slot of a batch: the buffer, its capacity or length, the peer address, and for
/// segmented (GSO) sends or coalesced (GRO) receives the segment size (0 = none).
struct weft_datagram {
  void *base;
  size_t capacity;
  size_t length;
  struct sockaddr_storage peer;
  socklen_t peer_length;
  uint16_t segment_size;
};

/// Sends `count` datagrams with one sendmmsg(2); each with segment_size > 0 carries a UDP_SEGMENT
/// control message. Returns how many were sent, or -1 with errno.
int weft_send_batch(int fd, struct weft_datagram *datagrams, unsigned int count);

/// Receives up to `count` datagrams with one recvmmsg(2) (MSG_DONTWAIT when `nonblocking`),
/// filling length, peer and (when UDP_GRO is on and the kernel coalesced) segment_size.
/// Returns how many arrived, or -1 with errno.
int weft_recv_batch(int fd, struct weft_datagram *datagrams, unsigned int count, int nonblocking);

#endif
