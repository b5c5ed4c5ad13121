/* SPDX-License-Identifier: MIT */
/*
 * The pager's wire protocol over real socketpairs: every message type round
 * trips with its fds, and the parser refuses every malformed input the
 * daemon could be sent (closing any fds that came with it).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pager/proto.h"

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1;	/* the DIR's own fd */
}

static void pair(int sv[2])
{
	struct timeval tv = { .tv_sec = 5 };

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	/* a bug must fail the test, not hang it */
	setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static void unpair(int sv[2])
{
	close(sv[0]);
	close(sv[1]);
}

static int new_fd(void)
{
	int fd = memfd_create("test_proto", MFD_CLOEXEC);

	assert_true(fd >= 0);
	return fd;
}

static bool same_file(int a, int b)
{
	struct stat sa, sb;

	assert_int_equal(fstat(a, &sa), 0);
	assert_int_equal(fstat(b, &sb), 0);
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Sends bytes as they are, with nfds fds on the first byte. */
static void raw_send(int sock, const void *buf, size_t len, const int *fds, int nfds)
{
	union {
		char buf[CMSG_SPACE(8 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { (void *)buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	assert_int_equal(sendmsg(sock, &mh, MSG_NOSIGNAL), (ssize_t)len);
}

static struct rl_msg_hdr hdr(uint16_t type, uint16_t len, uint32_t nfds)
{
	struct rl_msg_hdr h = { RL_PROTO_MAGIC, type, len, 7, nfds };

	return h;
}

/* Header + payload in one buffer, sent raw. */
static void raw_msg(int sock, struct rl_msg_hdr h, const void *payload, size_t plen,
		    const int *fds, int nfds)
{
	unsigned char buf[sizeof(h) + RL_PROTO_MAX_PAYLOAD + 16];

	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), payload, plen);
	raw_send(sock, buf, sizeof(h) + plen, fds, nfds);
}

static void valid_hello(struct rl_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->u.hello.version = RL_PROTO_VERSION;
	m->u.hello.pid = getpid();
	strcpy(m->u.hello.session, "run-42_a");
	strcpy(m->u.hello.comm, "sort big.txt");
}

static void valid_region(struct rl_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->u.region_add.start = 0x7f0000000000ull;
	m->u.region_add.len = 16ull << 30;
	m->u.region_add.kind = RL_REGION_HEAP;
}

/* Sends m (its type's shape) with fresh fds, receives it on the other end. */
static void round_trip(uint16_t type, uint16_t reply_to, struct rl_msg *m)
{
	struct rl_msg got;
	uint16_t len;
	uint32_t nfds;
	int sv[2], sent[RL_PROTO_MAX_FDS];
	const char *why = NULL;

	assert_true(rl_proto_shape(type, reply_to, &len, &nfds));
	pair(sv);
	for (uint32_t i = 0; i < nfds; i++)
		sent[i] = m->fds[i] = new_fd();
	assert_int_equal(rl_proto_send(sv[0], m, type, 1234, len, nfds), 0);
	memset(&got, 0xa5, sizeof(got));
	assert_int_equal(rl_proto_recv(sv[1], &got), 1);
	assert_int_equal(rl_proto_check(&got, reply_to, &why), 0);
	assert_int_equal(got.hdr.magic, RL_PROTO_MAGIC);
	assert_int_equal(got.hdr.type, type);
	assert_int_equal(got.hdr.len, len);
	assert_int_equal(got.hdr.seq, 1234);
	assert_int_equal(got.hdr.nfds, nfds);
	assert_memory_equal(got.u.raw, m->u.raw, len);
	for (uint32_t i = 0; i < RL_PROTO_MAX_FDS; i++) {
		if (i < nfds) {
			assert_true(got.fds[i] >= 0);
			assert_int_not_equal(got.fds[i], sent[i]);
			assert_true(same_file(got.fds[i], sent[i]));
			assert_int_equal(fcntl(got.fds[i], F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
			close(sent[i]);
		} else {
			assert_int_equal(got.fds[i], -1);
		}
	}
	rl_proto_close_fds(&got);
	assert_int_equal(got.fds[0], -1);
	/* nothing beyond the message was read: a clean EOF follows */
	close(sv[0]);
	assert_int_equal(rl_proto_recv(sv[1], &got), 0);
	close(sv[1]);
}

static void test_round_trip_requests(void **state)
{
	struct rl_msg m;
	int before = count_fds();

	valid_hello(&m);
	round_trip(RL_MSG_HELLO, 0, &m);

	valid_region(&m);
	round_trip(RL_MSG_REGION_ADD, 0, &m);
	m.u.region_add.kind = RL_REGION_FILE;
	m.u.region_add.file_ino = 131;
	m.u.region_add.file_pgoff = 10;
	m.u.region_add.len = 4096;
	round_trip(RL_MSG_REGION_ADD, 0, &m);

	static const uint16_t ranges[] = { RL_MSG_REGION_DEL, RL_MSG_DISCARD, RL_MSG_SYNC,
					   RL_MSG_SNAPSHOT };
	for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
		memset(&m, 0, sizeof(m));
		m.u.range.region_id = 3;
		m.u.range.first = 5;
		m.u.range.npages = 17;
		round_trip(ranges[i], 0, &m);
	}

	memset(&m, 0, sizeof(m));
	strcpy(m.u.stats.session, "s1");
	m.u.stats.wait_idle_ms = 600000;
	round_trip(RL_MSG_STATS, 0, &m);
	memset(&m, 0, sizeof(m));
	round_trip(RL_MSG_STATS, 0, &m);	/* "" = the whole daemon */

	memset(&m, 0, sizeof(m));
	round_trip(RL_MSG_SHUTDOWN, 0, &m);
	assert_int_equal(count_fds(), before);
}

static void test_round_trip_replies(void **state)
{
	struct rl_msg m;

	memset(&m, 0, sizeof(m));
	m.u.hello_reply.budget_pages = 8192;
	m.u.hello_reply.flags = RL_HELLO_VERIFY;
	m.u.hello_reply.client_id = 9;
	round_trip(RL_MSG_OK, RL_MSG_HELLO, &m);

	memset(&m, 0, sizeof(m));
	m.u.region_reply.region_id = 4;
	round_trip(RL_MSG_OK, RL_MSG_REGION_ADD, &m);

	memset(&m, 0, sizeof(m));
	m.u.range_reply.pages = 77;
	round_trip(RL_MSG_OK, RL_MSG_DISCARD, &m);
	round_trip(RL_MSG_OK, RL_MSG_SNAPSHOT, &m);

	memset(&m, 0, sizeof(m));
	for (size_t i = 0; i < sizeof(m.u.counters) / 8; i++)
		((uint64_t *)&m.u.counters)[i] = i * 1000 + 1;
	round_trip(RL_MSG_OK, RL_MSG_STATS, &m);

	memset(&m, 0, sizeof(m));
	round_trip(RL_MSG_OK, RL_MSG_SHUTDOWN, &m);

	memset(&m, 0, sizeof(m));
	m.u.err.err = ENOSPC;
	strcpy(m.u.err.text, "backing store full");
	round_trip(RL_MSG_ERR, 0, &m);
}

static void test_shapes(void **state)
{
	uint16_t len;
	uint32_t nfds;

	assert_true(rl_proto_shape(RL_MSG_HELLO, 0, &len, &nfds));
	assert_int_equal(len, sizeof(struct rl_msg_hello));
	assert_int_equal(nfds, 2);
	assert_true(rl_proto_shape(RL_MSG_SNAPSHOT, 0, &len, &nfds));
	assert_int_equal(nfds, 1);
	assert_true(rl_proto_shape(RL_MSG_OK, RL_MSG_STATS, &len, &nfds));
	assert_int_equal(len, sizeof(struct rl_counters));
	assert_int_equal(nfds, 0);
	assert_false(rl_proto_shape(RL_MSG_OK, 0, &len, &nfds));
	assert_false(rl_proto_shape(RL_MSG_OK, RL_MSG_OK, &len, &nfds));
	assert_false(rl_proto_shape(0, 0, &len, &nfds));
	assert_false(rl_proto_shape(RL_MSG_SHUTDOWN + 1, 0, &len, &nfds));
	assert_false(rl_proto_shape(RL_MSG_TYPE_MAX, 0, &len, &nfds));
	/* every payload fits */
	for (uint16_t t = 0; t < RL_MSG_TYPE_MAX; t++)
		for (uint16_t r = 0; r < RL_MSG_OK; r++)
			if (rl_proto_shape(t, r, &len, &nfds))
				assert_true(len <= RL_PROTO_MAX_PAYLOAD && nfds <= RL_PROTO_MAX_FDS);
}

/* Receives one raw message; returns rl_proto_check's result and why. */
static int recv_check(int sock, struct rl_msg *m, const char **why)
{
	assert_int_equal(rl_proto_recv(sock, m), 1);
	int ret = rl_proto_check(m, 0, why);
	rl_proto_close_fds(m);
	return ret;
}

static void expect_bad(const struct rl_msg *m, uint16_t type, const char *reason)
{
	struct rl_msg got, copy = *m;
	const char *why = NULL;
	uint16_t len;
	uint32_t nfds;
	int sv[2], fds[RL_PROTO_MAX_FDS];

	assert_true(rl_proto_shape(type, 0, &len, &nfds));
	pair(sv);
	for (uint32_t i = 0; i < nfds; i++)
		fds[i] = copy.fds[i] = new_fd();
	assert_int_equal(rl_proto_send(sv[0], &copy, type, 1, len, nfds), 0);
	for (uint32_t i = 0; i < nfds; i++)
		close(fds[i]);
	assert_int_equal(recv_check(sv[1], &got, &why), -EPROTO);
	assert_non_null(why);
	if (!strstr(why, reason))
		fail_msg("reason \"%s\", expected \"%s\"", why, reason);
	unpair(sv);
}

static void test_bad_header(void **state)
{
	struct rl_msg m;
	struct rl_msg_hello h;
	struct rl_msg_stats st = { .wait_idle_ms = 1 };
	const char *why = NULL;
	int sv[2], fd = new_fd(), before;

	valid_hello(&m);
	h = m.u.hello;
	pair(sv);

	struct rl_msg_hdr bad = hdr(RL_MSG_STATS, sizeof(st), 0);
	bad.magic ^= 1;
	raw_msg(sv[0], bad, &st, sizeof(st), NULL, 0);
	assert_int_equal(recv_check(sv[1], &m, &why), -EPROTO);
	assert_string_equal(why, "bad magic");

	raw_msg(sv[0], hdr(0, 0, 0), NULL, 0, NULL, 0);
	assert_int_equal(recv_check(sv[1], &m, &why), -EPROTO);
	assert_string_equal(why, "unknown message type");
	raw_msg(sv[0], hdr(55, 0, 0), NULL, 0, NULL, 0);
	assert_int_equal(recv_check(sv[1], &m, &why), -EPROTO);
	assert_string_equal(why, "unknown message type");

	/* wrong size for the type, both ways; the stream stays in step */
	raw_msg(sv[0], hdr(RL_MSG_STATS, sizeof(st) - 1, 0), &st, sizeof(st) - 1, NULL, 0);
	assert_int_equal(recv_check(sv[1], &m, &why), -EPROTO);
	assert_string_equal(why, "wrong payload size for its type");
	raw_msg(sv[0], hdr(RL_MSG_SHUTDOWN, 8, 0), &st, 8, NULL, 0);
	assert_int_equal(recv_check(sv[1], &m, &why), -EPROTO);
	assert_string_equal(why, "wrong payload size for its type");

	/* fds: missing, one short, where none are expected */
	raw_msg(sv[0], hdr(RL_MSG_HELLO, sizeof(h), 2), &h, sizeof(h), NULL, 0);
	assert_int_equal(recv_check(sv[1], &m, &why), -EPROTO);
	assert_string_equal(why, "announced file descriptors did not arrive");
	before = count_fds();
	raw_msg(sv[0], hdr(RL_MSG_HELLO, sizeof(h), 2), &h, sizeof(h), &fd, 1);
	assert_int_equal(recv_check(sv[1], &m, &why), -EPROTO);
	assert_string_equal(why, "announced file descriptors did not arrive");
	raw_msg(sv[0], hdr(RL_MSG_HELLO, sizeof(h), 1), &h, sizeof(h), &fd, 1);
	assert_int_equal(recv_check(sv[1], &m, &why), -EPROTO);
	assert_string_equal(why, "wrong number of file descriptors for its type");
	raw_msg(sv[0], hdr(RL_MSG_STATS, sizeof(st), 1), &st, sizeof(st), &fd, 1);
	assert_int_equal(recv_check(sv[1], &m, &why), -EPROTO);
	assert_string_equal(why, "file descriptors where none are expected");
	raw_msg(sv[0], hdr(RL_MSG_STATS, sizeof(st), 0), &st, sizeof(st), &fd, 1);
	assert_int_equal(recv_check(sv[1], &m, &why), -EPROTO);
	assert_int_equal(count_fds(), before);	/* recv_check closed what arrived */

	/* an OK whose request type is unknown */
	raw_msg(sv[0], hdr(RL_MSG_OK, 0, 0), NULL, 0, NULL, 0);
	assert_int_equal(rl_proto_recv(sv[1], &m), 1);
	assert_int_equal(rl_proto_check(&m, 0, &why), -EPROTO);
	assert_string_equal(why, "reply to an unknown request type");
	assert_int_equal(rl_proto_check(&m, RL_MSG_SHUTDOWN, &why), 0);
	close(fd);
	unpair(sv);
}

static void test_oversized(void **state)
{
	struct rl_msg m;
	unsigned char big[RL_PROTO_MAX_PAYLOAD + 1] = { 0 };
	int sv[2], fd = new_fd(), before;

	pair(sv);
	before = count_fds();
	raw_msg(sv[0], hdr(RL_MSG_STATS, sizeof(big), 1), big, sizeof(big), &fd, 1);
	assert_int_equal(rl_proto_recv(sv[1], &m), -EPROTO);
	assert_int_equal(m.fds[0], -1);
	assert_int_equal(count_fds(), before);
	unpair(sv);
	close(fd);
}

static void test_too_many_fds(void **state)
{
	struct rl_msg m;
	struct rl_msg_hello h;
	int sv[2], fds[6], before;

	valid_hello(&m);
	h = m.u.hello;
	for (int i = 0; i < 6; i++)
		fds[i] = new_fd();
	before = count_fds();
	for (int n = RL_PROTO_MAX_FDS + 1; n <= 6; n += 3) {
		pair(sv);
		raw_msg(sv[0], hdr(RL_MSG_HELLO, sizeof(h), 2), &h, sizeof(h), fds, n);
		assert_int_equal(rl_proto_recv(sv[1], &m), -EPROTO);
		for (int i = 0; i < RL_PROTO_MAX_FDS; i++)
			assert_int_equal(m.fds[i], -1);
		unpair(sv);
		assert_int_equal(count_fds(), before);
	}
	/* fds arriving with the payload instead of the header */
	pair(sv);
	struct rl_msg_hdr hh = hdr(RL_MSG_HELLO, sizeof(h), 2);
	raw_send(sv[0], &hh, sizeof(hh), fds, 2);
	raw_send(sv[0], &h, sizeof(h), fds + 2, 2);
	assert_int_equal(rl_proto_recv(sv[1], &m), -EPROTO);
	unpair(sv);
	assert_int_equal(count_fds(), before);
	for (int i = 0; i < 6; i++)
		close(fds[i]);
}

static void test_bad_hello(void **state)
{
	struct rl_msg m;

	valid_hello(&m);
	m.u.hello.version = RL_PROTO_VERSION + 1;
	expect_bad(&m, RL_MSG_HELLO, "protocol version");

	valid_hello(&m);
	m.u.hello.pid = 0;
	expect_bad(&m, RL_MSG_HELLO, "pid");
	m.u.hello.pid = -5;
	expect_bad(&m, RL_MSG_HELLO, "pid");

	valid_hello(&m);
	memset(m.u.hello.session, 'a', RL_SESSION_LEN);
	expect_bad(&m, RL_MSG_HELLO, "session name not NUL-terminated");
	static const char *const bad_sessions[] = { "a b", "../x", "s;rm", "caf\xc3\xa9", "x\n" };
	for (size_t i = 0; i < sizeof(bad_sessions) / sizeof(bad_sessions[0]); i++) {
		valid_hello(&m);
		strcpy(m.u.hello.session, bad_sessions[i]);
		expect_bad(&m, RL_MSG_HELLO, "session name has characters");
	}

	valid_hello(&m);
	memset(m.u.hello.comm, 'c', RL_COMM_LEN);
	expect_bad(&m, RL_MSG_HELLO, "program name not NUL-terminated");
	valid_hello(&m);
	strcpy(m.u.hello.comm, "evil\033[2J");
	expect_bad(&m, RL_MSG_HELLO, "unprintable");
	valid_hello(&m);
	strcpy(m.u.hello.comm, "x\x7f");
	expect_bad(&m, RL_MSG_HELLO, "unprintable");

	/* the longest good strings pass */
	valid_hello(&m);
	memset(m.u.hello.session, 'Z', RL_SESSION_LEN - 1);
	memset(m.u.hello.comm, '~', RL_COMM_LEN - 1);
	round_trip(RL_MSG_HELLO, 0, &m);
}

static void test_bad_region_add(void **state)
{
	struct rl_msg m;

	valid_region(&m);
	m.u.region_add.start += 100;
	expect_bad(&m, RL_MSG_REGION_ADD, "not page-aligned");
	valid_region(&m);
	m.u.region_add.len = 4095;
	expect_bad(&m, RL_MSG_REGION_ADD, "not a page multiple");
	valid_region(&m);
	m.u.region_add.len = 0;
	expect_bad(&m, RL_MSG_REGION_ADD, "length is zero");
	valid_region(&m);
	m.u.region_add.len = RL_REGION_MAX + 4096;
	expect_bad(&m, RL_MSG_REGION_ADD, "larger than 1 TiB");
	valid_region(&m);
	m.u.region_add.start = 1ull << 47;
	expect_bad(&m, RL_MSG_REGION_ADD, "start outside");
	valid_region(&m);
	m.u.region_add.start = UINT64_MAX - 4095;
	expect_bad(&m, RL_MSG_REGION_ADD, "start outside");
	valid_region(&m);
	m.u.region_add.start = (1ull << 47) - 4096;
	m.u.region_add.len = 8192;
	expect_bad(&m, RL_MSG_REGION_ADD, "end outside");
	valid_region(&m);
	m.u.region_add.kind = 0;
	expect_bad(&m, RL_MSG_REGION_ADD, "unknown region kind");
	m.u.region_add.kind = RL_REGION_FILE + 1;
	expect_bad(&m, RL_MSG_REGION_ADD, "unknown region kind");
	valid_region(&m);
	m.u.region_add.kind = RL_REGION_ANON;
	m.u.region_add.file_ino = 5;
	expect_bad(&m, RL_MSG_REGION_ADD, "anonymous region with a file");
	valid_region(&m);
	m.u.region_add.file_pgoff = 1;
	expect_bad(&m, RL_MSG_REGION_ADD, "anonymous region with a file");
	valid_region(&m);
	m.u.region_add.kind = RL_REGION_FILE;
	expect_bad(&m, RL_MSG_REGION_ADD, "file region without an inode");
	m.u.region_add.file_ino = 99;
	m.u.region_add.file_pgoff = UINT64_MAX - 1;
	expect_bad(&m, RL_MSG_REGION_ADD, "beyond the largest file offset");

	/* the edges that are fine */
	valid_region(&m);
	m.u.region_add.start = (1ull << 47) - RL_REGION_MAX;
	m.u.region_add.len = RL_REGION_MAX;
	round_trip(RL_MSG_REGION_ADD, 0, &m);
}

static void test_bad_ranges(void **state)
{
	struct rl_msg m;

	memset(&m, 0, sizeof(m));
	m.u.range.first = UINT64_MAX - 3;
	m.u.range.npages = 4;
	expect_bad(&m, RL_MSG_DISCARD, "page range overflows");
	expect_bad(&m, RL_MSG_SYNC, "page range overflows");
	m.u.range.first = 0;
	m.u.range.npages = 0;
	expect_bad(&m, RL_MSG_DISCARD, "empty page range");
	expect_bad(&m, RL_MSG_SYNC, "empty page range");
	/* ignored where the type ignores it */
	m.u.range.first = UINT64_MAX;
	m.u.range.npages = 0;
	round_trip(RL_MSG_REGION_DEL, 0, &m);
	round_trip(RL_MSG_SNAPSHOT, 0, &m);

	memset(&m, 0, sizeof(m));
	m.u.stats.wait_idle_ms = 600001;
	expect_bad(&m, RL_MSG_STATS, "longer than 10 minutes");
	memset(&m, 0, sizeof(m));
	strcpy(m.u.stats.session, "a/b");
	expect_bad(&m, RL_MSG_STATS, "session name has characters");

	/* ERR must carry an errno and a terminated text */
	struct rl_msg got;
	const char *why;
	int sv[2];

	pair(sv);
	memset(&m, 0, sizeof(m));
	memset(m.u.err.text, 'e', sizeof(m.u.err.text));
	m.u.err.err = EIO;
	assert_int_equal(rl_proto_send(sv[0], &m, RL_MSG_ERR, 1, sizeof(m.u.err), 0), 0);
	assert_int_equal(recv_check(sv[1], &got, &why), -EPROTO);
	assert_string_equal(why, "error text not NUL-terminated");
	m.u.err.text[0] = '\0';
	m.u.err.err = 0;
	assert_int_equal(rl_proto_send(sv[0], &m, RL_MSG_ERR, 1, sizeof(m.u.err), 0), 0);
	assert_int_equal(recv_check(sv[1], &got, &why), -EPROTO);
	unpair(sv);
}

static void test_truncated(void **state)
{
	struct rl_msg m;
	struct rl_msg_hello h;
	struct rl_msg_hdr hh = hdr(RL_MSG_HELLO, sizeof(struct rl_msg_hello), 2);
	int sv[2], fds[2] = { new_fd(), new_fd() }, before = count_fds();

	valid_hello(&m);
	h = m.u.hello;

	/* peer closes in the middle of the payload: the fds that came are closed */
	pair(sv);
	unsigned char buf[sizeof(hh) + sizeof(h)];
	memcpy(buf, &hh, sizeof(hh));
	memcpy(buf + sizeof(hh), &h, sizeof(h));
	raw_send(sv[0], buf, sizeof(hh) + sizeof(h) / 2, fds, 2);
	close(sv[0]);
	assert_int_equal(rl_proto_recv(sv[1], &m), -EPROTO);
	assert_int_equal(m.fds[0], -1);
	close(sv[1]);
	assert_int_equal(count_fds(), before);

	/* ... in the middle of the header */
	pair(sv);
	raw_send(sv[0], &hh, sizeof(hh) - 3, NULL, 0);
	close(sv[0]);
	assert_int_equal(rl_proto_recv(sv[1], &m), -EPROTO);
	close(sv[1]);

	/* EOF right after a whole message is a clean end */
	pair(sv);
	m.u.hello = h;
	m.fds[0] = fds[0];
	m.fds[1] = fds[1];
	assert_int_equal(rl_proto_send(sv[0], &m, RL_MSG_HELLO, 3, sizeof(h), 2), 0);
	close(sv[0]);
	assert_int_equal(rl_proto_recv(sv[1], &m), 1);
	rl_proto_close_fds(&m);
	assert_int_equal(rl_proto_recv(sv[1], &m), 0);
	assert_int_equal(rl_proto_recv(sv[1], &m), 0);
	close(sv[1]);
	close(fds[0]);
	close(fds[1]);
}

/* The writer dribbles a message out a few bytes at a time. */
struct dribble {
	int sock;
	unsigned char buf[sizeof(struct rl_msg_hdr) + sizeof(struct rl_msg_region_add)];
	int fd;
};

static void *dribble_main(void *arg)
{
	struct dribble *d = arg;
	struct timespec ts = { 0, 5 * 1000 * 1000 };

	for (size_t off = 0; off < sizeof(d->buf); off += 7) {
		size_t n = sizeof(d->buf) - off < 7 ? sizeof(d->buf) - off : 7;

		raw_send(d->sock, d->buf + off, n, off ? NULL : &d->fd, off ? 0 : 1);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static void test_short_reads(void **state)
{
	struct dribble d;
	struct rl_msg m, got;
	struct rl_msg_hdr hh = hdr(RL_MSG_REGION_ADD, sizeof(struct rl_msg_region_add), 1);
	pthread_t t;
	int sv[2];
	const char *why;

	valid_region(&m);
	pair(sv);
	d.sock = sv[0];
	d.fd = new_fd();
	memcpy(d.buf, &hh, sizeof(hh));
	memcpy(d.buf + sizeof(hh), &m.u.region_add, sizeof(m.u.region_add));
	assert_int_equal(pthread_create(&t, NULL, dribble_main, &d), 0);
	assert_int_equal(rl_proto_recv(sv[1], &got), 1);
	pthread_join(t, NULL);
	assert_int_equal(rl_proto_check(&got, 0, &why), 0);
	assert_memory_equal(&got.u.region_add, &m.u.region_add, sizeof(m.u.region_add));
	assert_true(same_file(got.fds[0], d.fd));
	rl_proto_close_fds(&got);
	close(d.fd);
	unpair(sv);
}

/* A one-shot server for rl_proto_call. */
struct server {
	int sock;
	int mode;	/* 0 = OK, 1 = ERR, 2 = wrong seq, 3 = close */
};

static void *server_main(void *arg)
{
	struct server *s = arg;
	struct rl_msg m;

	if (rl_proto_recv(s->sock, &m) != 1)
		return NULL;
	rl_proto_close_fds(&m);
	switch (s->mode) {
	case 0:
		memset(&m.u.hello_reply, 0, sizeof(m.u.hello_reply));
		m.u.hello_reply.budget_pages = 2048;
		rl_proto_send(s->sock, &m, RL_MSG_OK, m.hdr.seq, sizeof(m.u.hello_reply), 0);
		break;
	case 1:
		memset(&m.u.err, 0, sizeof(m.u.err));
		m.u.err.err = EACCES;
		strcpy(m.u.err.text, "permission denied: the pager serves only uid 0");
		rl_proto_send(s->sock, &m, RL_MSG_ERR, m.hdr.seq, sizeof(m.u.err), 0);
		break;
	case 2:
		memset(&m.u.hello_reply, 0, sizeof(m.u.hello_reply));
		rl_proto_send(s->sock, &m, RL_MSG_OK, m.hdr.seq + 1, sizeof(m.u.hello_reply), 0);
		break;
	default:
		shutdown(s->sock, SHUT_RDWR);
		break;
	}
	return NULL;
}

static void test_call(void **state)
{
	static const int expect[] = { 0, -EACCES, -EPROTO, -ECONNRESET };

	for (int mode = 0; mode < 4; mode++) {
		struct server s = { .mode = mode };
		struct rl_msg req, reply;
		pthread_t t;
		int sv[2];

		pair(sv);
		s.sock = sv[1];
		assert_int_equal(pthread_create(&t, NULL, server_main, &s), 0);
		valid_hello(&req);
		req.hdr.seq = 41;
		req.fds[0] = new_fd();
		req.fds[1] = new_fd();
		assert_int_equal(rl_proto_call(sv[0], &req, RL_MSG_HELLO, sizeof(req.u.hello), 2,
					       &reply), expect[mode]);
		if (mode == 0) {
			assert_int_equal(reply.hdr.seq, 41);
			assert_int_equal(reply.u.hello_reply.budget_pages, 2048);
		}
		if (mode == 1)
			assert_string_equal(reply.u.err.text,
					    "permission denied: the pager serves only uid 0");
		pthread_join(t, NULL);
		close(req.fds[0]);
		close(req.fds[1]);
		unpair(sv);
	}
}

static void test_send_errors(void **state)
{
	struct rl_msg m;
	int sv[2];

	memset(&m, 0, sizeof(m));
	pair(sv);
	assert_int_equal(rl_proto_send(sv[0], &m, RL_MSG_STATS, 1, RL_PROTO_MAX_PAYLOAD + 1, 0),
			 -EINVAL);
	assert_int_equal(rl_proto_send(sv[0], &m, RL_MSG_STATS, 1, 0, RL_PROTO_MAX_FDS + 1),
			 -EINVAL);
	close(sv[1]);
	/* MSG_NOSIGNAL: a gone peer is an error, not SIGPIPE */
	assert_int_equal(rl_proto_send(sv[0], &m, RL_MSG_SHUTDOWN, 1, 0, 0), -EPIPE);
	close(sv[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shapes),
		cmocka_unit_test(test_round_trip_requests),
		cmocka_unit_test(test_round_trip_replies),
		cmocka_unit_test(test_bad_header),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_too_many_fds),
		cmocka_unit_test(test_bad_hello),
		cmocka_unit_test(test_bad_region_add),
		cmocka_unit_test(test_bad_ranges),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_short_reads),
		cmocka_unit_test(test_call),
		cmocka_unit_test(test_send_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
