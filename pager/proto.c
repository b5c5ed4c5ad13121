/* SPDX-License-Identifier: MIT */
/*
 * The pager's wire protocol (proto.h). Linked into the daemon and into the
 * preloaded shim, where a malloc could recurse into the allocator being set
 * up: nothing here allocates or prints.
 *
 * The socket is SOCK_STREAM, so a message may arrive in pieces and the
 * receiver reads exactly the header, then exactly its payload, never into
 * the next message.
 */
#include "pager/proto.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#define PAGE_SIZE	4096ull
#define USER_ADDR_END	(1ull << 47)	/* 4-level paging: the user address space */
#define MAX_FILE_PAGES	(1ull << 51)	/* file offsets (bytes) must fit in off_t */

bool rl_proto_shape(uint16_t type, uint16_t reply_to, uint16_t *len, uint32_t *nfds)
{
	uint16_t l;
	uint32_t n = 0;

	switch (type) {
	case RL_MSG_HELLO:
		l = sizeof(struct rl_msg_hello);
		n = 2;
		break;
	case RL_MSG_REGION_ADD:
		l = sizeof(struct rl_msg_region_add);
		n = 1;
		break;
	case RL_MSG_REGION_DEL:
	case RL_MSG_DISCARD:
	case RL_MSG_SYNC:
		l = sizeof(struct rl_msg_range);
		break;
	case RL_MSG_SNAPSHOT:
		l = sizeof(struct rl_msg_range);
		n = 1;
		break;
	case RL_MSG_STATS:
		l = sizeof(struct rl_msg_stats);
		break;
	case RL_MSG_SHUTDOWN:
		l = 0;
		break;
	case RL_MSG_OK:
		switch (reply_to) {
		case RL_MSG_HELLO:
			l = sizeof(struct rl_msg_hello_reply);
			break;
		case RL_MSG_REGION_ADD:
			l = sizeof(struct rl_msg_region_reply);
			break;
		case RL_MSG_REGION_DEL:
		case RL_MSG_DISCARD:
		case RL_MSG_SYNC:
		case RL_MSG_SNAPSHOT:
			l = sizeof(struct rl_msg_range_reply);
			break;
		case RL_MSG_STATS:
			l = sizeof(struct rl_counters);
			break;
		case RL_MSG_SHUTDOWN:
			l = 0;
			break;
		default:
			return false;
		}
		break;
	case RL_MSG_ERR:
		l = sizeof(struct rl_msg_err);
		break;
	default:
		return false;
	}
	if (len)
		*len = l;
	if (nfds)
		*nfds = n;
	return true;
}

static int fail(const char **why, const char *reason, int err)
{
	if (why)
		*why = reason;
	return -err;
}

static bool terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

static bool session_ok(const char *s)
{
	for (; *s; s++) {
		char c = *s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

static bool printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

static int check_session(const char *s, const char **why)
{
	if (!terminated(s, RL_SESSION_LEN))
		return fail(why, "session name not NUL-terminated", EPROTO);
	if (!session_ok(s))
		return fail(why, "session name has characters outside [A-Za-z0-9_-]", EPROTO);
	return 0;
}

static int check_hello(const struct rl_msg_hello *h, const char **why)
{
	int ret;

	if (h->version != RL_PROTO_VERSION)
		return fail(why, "protocol version mismatch (the shim and the daemon differ)",
			    EPROTO);
	if (h->pid <= 0)
		return fail(why, "HELLO pid is not positive", EPROTO);
	ret = check_session(h->session, why);
	if (ret)
		return ret;
	if (!terminated(h->comm, RL_COMM_LEN))
		return fail(why, "program name not NUL-terminated", EPROTO);
	if (!printable(h->comm))
		return fail(why, "program name has unprintable characters", EPROTO);
	return 0;
}

static int check_region_add(const struct rl_msg_region_add *ra, const char **why)
{
	if (ra->start % PAGE_SIZE)
		return fail(why, "region start not page-aligned", EPROTO);
	if (ra->start >= USER_ADDR_END)
		return fail(why, "region start outside the user address space", EPROTO);
	if (ra->len == 0)
		return fail(why, "region length is zero", EPROTO);
	if (ra->len % PAGE_SIZE)
		return fail(why, "region length not a page multiple", EPROTO);
	if (ra->len > RL_REGION_MAX)
		return fail(why, "region larger than 1 TiB", EPROTO);
	if (ra->len > USER_ADDR_END - ra->start)
		return fail(why, "region end outside the user address space", EPROTO);
	switch (ra->kind) {
	case RL_REGION_HEAP:
	case RL_REGION_ANON:
		if (ra->file_ino || ra->file_pgoff)
			return fail(why, "anonymous region with a file inode or offset", EPROTO);
		break;
	case RL_REGION_FILE:
		if (ra->file_ino == 0)
			return fail(why, "file region without an inode", EPROTO);
		if (ra->file_pgoff > MAX_FILE_PAGES - ra->len / PAGE_SIZE)
			return fail(why, "file region beyond the largest file offset", EPROTO);
		break;
	default:
		return fail(why, "unknown region kind", EPROTO);
	}
	return 0;
}

static int check_range(const struct rl_msg_range *r, const char **why)
{
	if (r->npages == 0)
		return fail(why, "empty page range", EPROTO);
	if (r->first > UINT64_MAX - r->npages)
		return fail(why, "page range overflows", EPROTO);
	return 0;
}

int rl_proto_check(const struct rl_msg *m, uint16_t reply_to, const char **why)
{
	uint16_t len;
	uint32_t nfds, present = 0;

	if (m->hdr.magic != RL_PROTO_MAGIC)
		return fail(why, "bad magic", EPROTO);
	if (!rl_proto_shape(m->hdr.type, reply_to, &len, &nfds))
		return fail(why, m->hdr.type == RL_MSG_OK ? "reply to an unknown request type"
							  : "unknown message type", EPROTO);
	if (m->hdr.len != len)
		return fail(why, "wrong payload size for its type", EPROTO);
	for (int i = 0; i < RL_PROTO_MAX_FDS; i++)
		present += m->fds[i] >= 0;
	if (m->hdr.nfds != nfds)
		return fail(why, nfds ? "wrong number of file descriptors for its type"
				      : "file descriptors where none are expected", EPROTO);
	if (present != nfds)
		return fail(why, "announced file descriptors did not arrive", EPROTO);

	switch (m->hdr.type) {
	case RL_MSG_HELLO:
		return check_hello(&m->u.hello, why);
	case RL_MSG_REGION_ADD:
		return check_region_add(&m->u.region_add, why);
	case RL_MSG_DISCARD:
	case RL_MSG_SYNC:
		return check_range(&m->u.range, why);
	case RL_MSG_STATS:
		if (m->u.stats.wait_idle_ms > 600000)
			return fail(why, "STATS wait longer than 10 minutes", EPROTO);
		return check_session(m->u.stats.session, why);
	case RL_MSG_ERR:
		if (m->u.err.err <= 0 || m->u.err.err >= 4096)
			return fail(why, "error reply without a valid errno", EPROTO);
		if (!terminated(m->u.err.text, sizeof(m->u.err.text)))
			return fail(why, "error text not NUL-terminated", EPROTO);
		return 0;
	default:	/* REGION_DEL and SNAPSHOT ignore the range; the rest have no fields to check */
		return 0;
	}
}

int rl_proto_send(int sock, struct rl_msg *m, uint16_t type, uint32_t seq, uint16_t len,
		  uint32_t nfds)
{
	union {
		char buf[CMSG_SPACE(RL_PROTO_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov[2];
	struct msghdr mh;
	size_t total = sizeof(m->hdr) + len, done = 0;

	if (len > RL_PROTO_MAX_PAYLOAD || nfds > RL_PROTO_MAX_FDS)
		return -EINVAL;
	m->hdr.magic = RL_PROTO_MAGIC;
	m->hdr.type = type;
	m->hdr.len = len;
	m->hdr.seq = seq;
	m->hdr.nfds = nfds;

	while (done < total) {
		memset(&mh, 0, sizeof(mh));
		if (done < sizeof(m->hdr)) {
			iov[0].iov_base = (char *)&m->hdr + done;
			iov[0].iov_len = sizeof(m->hdr) - done;
			iov[1].iov_base = m->u.raw;
			iov[1].iov_len = len;
			mh.msg_iovlen = len ? 2 : 1;
		} else {
			iov[0].iov_base = m->u.raw + (done - sizeof(m->hdr));
			iov[0].iov_len = total - done;
			mh.msg_iovlen = 1;
		}
		mh.msg_iov = iov;
		/* the fds ride on the first byte only */
		if (done == 0 && nfds) {
			struct cmsghdr *c;

			memset(&ctl, 0, sizeof(ctl));
			mh.msg_control = ctl.buf;
			mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
			memcpy(CMSG_DATA(c), m->fds, nfds * sizeof(int));
		}
		ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)n;
	}
	return 0;
}

/* Appends the fds of every SCM_RIGHTS cmsg to m->fds; *extra counts those
 * beyond RL_PROTO_MAX_FDS, which are closed at once. */
static void take_fds(struct msghdr *mh, struct rl_msg *m, int *nfds, int *extra)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		unsigned char *data = CMSG_DATA(c);

		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, data + i * sizeof(int), sizeof(int));
			if (*nfds < RL_PROTO_MAX_FDS) {
				m->fds[(*nfds)++] = fd;
			} else {
				close(fd);
				(*extra)++;
			}
		}
	}
}

/* Reads exactly size bytes into buf, collecting fds. 1 = done, 0 = EOF
 * before the first byte, -EPROTO = EOF in the middle, -errno. */
static int read_exact(int sock, void *buf, size_t size, struct rl_msg *m, int *nfds, int *extra)
{
	union {
		char buf[CMSG_SPACE((RL_PROTO_MAX_FDS + 1) * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	size_t done = 0;

	while (done < size) {
		struct iovec iov = { (char *)buf + done, size - done };
		struct msghdr mh = {
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = ctl.buf,
			.msg_controllen = sizeof(ctl.buf),
		};
		ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		take_fds(&mh, m, nfds, extra);
		if (mh.msg_flags & MSG_CTRUNC)
			(*extra)++;	/* the kernel dropped fds that did not fit */
		if (n == 0)
			return done ? -EPROTO : 0;
		done += (size_t)n;
	}
	return 1;
}

int rl_proto_recv(int sock, struct rl_msg *m)
{
	int nfds = 0, extra = 0, ret;

	for (int i = 0; i < RL_PROTO_MAX_FDS; i++)
		m->fds[i] = -1;
	ret = read_exact(sock, &m->hdr, sizeof(m->hdr), m, &nfds, &extra);
	if (ret == 0 && nfds == 0 && extra == 0)
		return 0;
	if (ret == 0)
		ret = -EPROTO;	/* fds with no message */
	if (ret > 0 && m->hdr.len > RL_PROTO_MAX_PAYLOAD)
		ret = -EPROTO;
	if (ret > 0 && m->hdr.len) {
		ret = read_exact(sock, m->u.raw, m->hdr.len, m, &nfds, &extra);
		if (ret == 0)
			ret = -EPROTO;
	}
	if (ret > 0 && extra)
		ret = -EPROTO;
	if (ret < 0) {
		rl_proto_close_fds(m);
		return ret;
	}
	return 1;
}

void rl_proto_close_fds(struct rl_msg *m)
{
	for (int i = 0; i < RL_PROTO_MAX_FDS; i++) {
		if (m->fds[i] >= 0)
			close(m->fds[i]);
		m->fds[i] = -1;
	}
}

int rl_proto_call(int sock, struct rl_msg *req, uint16_t type, uint16_t len, uint32_t nfds,
		  struct rl_msg *reply)
{
	uint32_t seq = req->hdr.seq;
	int ret;

	ret = rl_proto_send(sock, req, type, seq, len, nfds);
	if (ret)
		return ret;
	ret = rl_proto_recv(sock, reply);
	if (ret == 0)
		return -ECONNRESET;
	if (ret < 0)
		return ret;
	if (reply->hdr.seq != seq || (reply->hdr.type != RL_MSG_OK &&
				      reply->hdr.type != RL_MSG_ERR) ||
	    rl_proto_check(reply, type, NULL)) {
		rl_proto_close_fds(reply);
		return -EPROTO;
	}
	if (reply->hdr.type == RL_MSG_ERR)
		return -reply->u.err.err;
	return 0;
}
