/* SPDX-License-Identifier: MIT */
/*
 * The shim's state, its one-time init and its connection to the daemon.
 *
 * Init runs inside the first malloc-family call, which usually comes from
 * some library's constructor long before ours: so it must not allocate
 * (a recursive malloc on the initing thread is a bug and dies), must not
 * dlsym, and talks to the kernel with raw syscalls or libc calls that do
 * not allocate. Every way it cannot set the pager up ends in shim_die.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "pager/shim/shim.h"

struct shim_state shim = {
	.mode = SHIM_UNINIT,
	.sock = -1,
	.uffd = -1,
	.errfd = -1,
	.call_lock = PTHREAD_MUTEX_INITIALIZER,
	.regions_lock = PTHREAD_MUTEX_INITIALIZER,
};

__thread int shim_in_alloc __attribute__((tls_model("initial-exec")));

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;

#define SHIM_HEAP_DEFAULT	(16ull << 30)
#define SHIM_UFFD_FEATURES	(UFFD_FEATURE_PAGEFAULT_FLAG_WP | \
				 UFFD_FEATURE_WP_HUGETLBFS_SHMEM | UFFD_FEATURE_THREAD_ID)

static void shim_vsay(const char *fmt, va_list ap)
{
	char buf[1024];
	int fd = shim.errfd >= 0 ? shim.errfd : 2;
	int n = snprintf(buf, sizeof(buf), "reclaimlab: %s[%d]: ",
			 shim.comm[0] ? shim.comm : "?", (int)getpid());
	if (n < 0)
		n = 0;
	if ((size_t)n < sizeof(buf) - 1) {
		int m = vsnprintf(buf + n, sizeof(buf) - 1 - (size_t)n, fmt, ap);
		if (m > 0)
			n += m;
	}
	if ((size_t)n > sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	for (int off = 0; off < n;) {
		ssize_t w = write(fd, buf + off, (size_t)(n - off));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (int)w;
	}
}

void shim_warn(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	shim_vsay(fmt, ap);
	va_end(ap);
	errno = saved;
}

_Noreturn void shim_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	shim_vsay(fmt, ap);
	va_end(ap);
	/* _exit: atexit handlers could allocate or touch pages nobody serves. */
	_exit(SHIM_EXIT_DAEMON);
}

static const char *msg_name(uint16_t type)
{
	switch (type) {
	case RL_MSG_HELLO: return "HELLO";
	case RL_MSG_REGION_ADD: return "REGION_ADD";
	case RL_MSG_REGION_DEL: return "REGION_DEL";
	case RL_MSG_DISCARD: return "DISCARD";
	case RL_MSG_SYNC: return "SYNC";
	case RL_MSG_SNAPSHOT: return "SNAPSHOT";
	default: return "request";
	}
}

int shim_call(struct rl_msg *req, uint16_t type, uint16_t len, uint32_t nfds,
	      struct rl_msg *reply)
{
	int rc;

	if (shim.sock < 0)
		shim_die("internal error: %s without a pager daemon connection", msg_name(type));
	pthread_mutex_lock(&shim.call_lock);
	req->hdr.seq = ++shim.seq;
	reply->hdr.type = 0;
	rc = rl_proto_call(shim.sock, req, type, len, nfds, reply);
	pthread_mutex_unlock(&shim.call_lock);
	if (rc == 0)
		return 0;
	if (reply->hdr.type == RL_MSG_ERR && reply->u.err.err > 0 && rc == -reply->u.err.err)
		return rc;
	/* No usable reply: the daemon is gone or does not speak our protocol,
	 * and without it no page of ours can be served. */
	if (rc == -EPROTO)
		shim_die("the pager daemon sent a malformed reply to %s; stopping", msg_name(type));
	shim_die("lost the pager daemon during %s (%s); stopping", msg_name(type),
		 strerrordesc_np(-rc) ? strerrordesc_np(-rc) : "unknown error");
}

/* Program name from /proc/self/comm, printable only (it goes into messages). */
static void read_comm(void)
{
	int fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
	ssize_t n = -1;

	if (fd >= 0) {
		n = read(fd, shim.comm, sizeof(shim.comm) - 1);
		close(fd);
	}
	if (n <= 0) {
		strcpy(shim.comm, "?");
		return;
	}
	shim.comm[n] = '\0';
	for (ssize_t i = 0; i < n; i++) {
		if (shim.comm[i] == '\n') {
			shim.comm[i] = '\0';
			break;
		}
		if (shim.comm[i] < 0x20 || shim.comm[i] > 0x7e)
			shim.comm[i] = '?';
	}
}

/* "16G", "512M", "1073741824": digits, then at most one of K M G T. */
uint64_t shim_parse_size(const char *name, const char *s)
{
	uint64_t v = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		shim_die("%s=\"%s\" is not a size (digits with an optional K, M, G or T)", name, s);
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			shim_die("%s=\"%s\" is too large", name, s);
		v = v * 10 + (uint64_t)(*p - '0');
	}
	int shift = 0;
	switch (*p) {
	case '\0': break;
	case 'k': case 'K': shift = 10; break;
	case 'm': case 'M': shift = 20; break;
	case 'g': case 'G': shift = 30; break;
	case 't': case 'T': shift = 40; break;
	default:
		shim_die("%s=\"%s\" is not a size (digits with an optional K, M, G or T)", name, s);
	}
	if (shift && *++p != '\0')
		shim_die("%s=\"%s\" is not a size (digits with an optional K, M, G or T)", name, s);
	if (shift && v > (UINT64_MAX >> shift))
		shim_die("%s=\"%s\" is too large", name, s);
	return v << shift;
}

/* Scripts redirect onto small descriptor numbers (`exec 3>file`): keep
 * the shim's descriptors out of their way where the fd limit allows. */
#define SHIM_FD_BASE	900

static int move_high(int fd)
{
	int nfd = fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, SHIM_FD_BASE);

	if (nfd < 0)
		return fd;
	close(fd);
	return nfd;
}

static void open_errfd(void)
{
	/* coreutils closes fd 2 at exit, and programs dup2 over it: our
	 * messages need a descriptor of our own. */
	int fd = fcntl(2, F_DUPFD_CLOEXEC, SHIM_FD_BASE);

	if (fd < 0)
		fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		fd = move_high(open("/dev/null", O_WRONLY | O_CLOEXEC));
	shim.errfd = fd;
}

static void connect_daemon(void)
{
	const char *path = getenv("RECLAIMLAB_SOCK");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (!path || !*path)
		shim_die("RECLAIMLAB_SOCK is not set: start programs with `reclaimlab run`");
	if (strlen(path) >= sizeof(sa.sun_path))
		shim_die("RECLAIMLAB_SOCK=%s is longer than a unix socket path may be", path);
	strcpy(sa.sun_path, path);
	shim.sock = move_high(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
	if (shim.sock < 0)
		shim_die("socket: %s", strerrordesc_np(errno));
	while (connect(shim.sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == EINTR)
			continue;
		shim_die("cannot connect to the pager daemon at %s: %s%s", path,
			 strerrordesc_np(errno), errno == ENOENT || errno == ECONNREFUSED ?
			 " (is its `reclaimlab serve` running?)" : "");
	}
}

static void open_uffd(void)
{
	/* O_NONBLOCK lives in the file description the daemon shares: its
	 * fault workers read this uffd from an epoll loop. Never
	 * UFFD_USER_MODE_ONLY: with it, read(2) into a missing page fails. */
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	int e1 = errno, e2 = 0;

	if (fd < 0) {
		int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
		if (dev >= 0) {
			fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
			e2 = errno;
			close(dev);
		} else {
			e2 = errno;
		}
	}
	fd = move_high(fd);
	if (fd < 0)
		shim_die("cannot create a userfaultfd (userfaultfd(2): %s; /dev/userfaultfd: %s). "
			 "Run as root, grant this user access to /dev/userfaultfd "
			 "(setfacl -m u:$USER:rw /dev/userfaultfd), or set "
			 "sysctl vm.unprivileged_userfaultfd=1",
			 strerrordesc_np(e1), strerrordesc_np(e2));

	struct uffdio_api api = { .api = UFFD_API, .features = SHIM_UFFD_FEATURES };
	if (ioctl(fd, UFFDIO_API, &api) < 0)
		shim_die("UFFDIO_API with write-protect on shmem failed: %s "
			 "(the pager needs Linux 6.4 or later)", strerrordesc_np(errno));
	if ((api.features & SHIM_UFFD_FEATURES) != SHIM_UFFD_FEATURES ||
	    !(api.ioctls & (1ull << _UFFDIO_REGISTER)))
		shim_die("this kernel's userfaultfd lacks write-protect on shmem "
			 "(features 0x%llx): the pager needs Linux 6.4 or later",
			 (unsigned long long)api.features);
	shim.uffd = fd;
}

static void say_hello(void)
{
	struct rl_msg req, reply;
	const char *session = getenv("RECLAIMLAB_SESSION");

	memset(&req, 0, sizeof(req));
	req.u.hello.version = RL_PROTO_VERSION;
	req.u.hello.pid = (int32_t)getpid();
	if (session) {
		if (strlen(session) >= RL_SESSION_LEN)
			shim_die("RECLAIMLAB_SESSION=%s is longer than %d characters",
				 session, RL_SESSION_LEN - 1);
		strcpy(req.u.hello.session, session);
	}
	memcpy(req.u.hello.comm, shim.comm, sizeof(req.u.hello.comm));
	req.u.hello.comm[RL_COMM_LEN - 1] = '\0';
	req.fds[0] = shim.uffd;
	req.fds[1] = shim.errfd;
	int rc = shim_call(&req, RL_MSG_HELLO, sizeof(req.u.hello), 2, &reply);
	if (rc < 0)
		shim_die("the pager daemon refused this program: %s", reply.u.err.text);
	shim.budget_pages = reply.u.hello_reply.budget_pages;
	shim.verify = reply.u.hello_reply.flags & RL_HELLO_VERIFY;
}

static void find_mount(void)
{
	const char *mnt = getenv("RECLAIMLAB_MOUNT");
	struct stat st;

	if (!mnt || !*mnt)
		return;
	if (stat(mnt, &st) < 0) {
		shim_warn("RECLAIMLAB_MOUNT=%s: %s; shared maps of its files will not be paged",
			  mnt, strerrordesc_np(errno));
		return;
	}
	shim.mount_dev = st.st_dev;
}

static void make_heap(void)
{
	const char *env = getenv("RECLAIMLAB_HEAP_SIZE");
	uint64_t size = env ? shim_parse_size("RECLAIMLAB_HEAP_SIZE", env) : SHIM_HEAP_DEFAULT;
	struct shim_region *heap;

	/* mimalloc hands out whole 32 MiB segments of its arena. */
	if (size < SHIM_REGION_ALIGN || size > RL_REGION_MAX)
		shim_die("RECLAIMLAB_HEAP_SIZE=%s is out of range (64M to 1T)", env);
	size = (size + SHIM_REGION_ALIGN - 1) & ~(SHIM_REGION_ALIGN - 1);
	int rc = shim_region_new(size, SHIM_REGION_ALIGN, RL_REGION_HEAP, 0, 0, -1,
				 PROT_READ | PROT_WRITE, &heap);
	if (rc < 0)
		shim_die("cannot create the heap region (%llu MiB of address space): %s",
			 (unsigned long long)(size >> 20), strerrordesc_np(-rc));
	shim_malloc_init(heap);
}

void shim_init(void)
{
	if (__atomic_load_n(&shim.mode, __ATOMIC_ACQUIRE) >= SHIM_PAGED)
		return;
	pid_t tid = gettid();
	if (__atomic_load_n(&shim.mode, __ATOMIC_ACQUIRE) == SHIM_INITING &&
	    __atomic_load_n(&shim.init_tid, __ATOMIC_RELAXED) == tid)
		shim_die("internal error: the shim's init allocated memory (recursive init)");

	pthread_mutex_lock(&init_lock);
	if (shim.mode >= SHIM_PAGED) {
		pthread_mutex_unlock(&init_lock);
		return;
	}
	__atomic_store_n(&shim.init_tid, tid, __ATOMIC_RELAXED);
	__atomic_store_n(&shim.mode, SHIM_INITING, __ATOMIC_RELEASE);

	open_errfd();
	read_comm();
	connect_daemon();
	open_uffd();
	say_hello();
	find_mount();
	make_heap();
	shim_mmap_init();

	__atomic_store_n(&shim.mode, SHIM_PAGED, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&init_lock);
}

__attribute__((constructor)) static void shim_ctor(void)
{
	shim_init();
	if (shim.mode == SHIM_PAGED) {
		shim_watchdog_start();
		shim_segv_install();
	}
}
