/* SPDX-License-Identifier: MIT */
/*
 * The block layer: CRC32C check value, single and multi-vector IO, a large
 * batched queue checked against a reference copy of the device, flush, short
 * IO past the end, and the IO log (one record per IO, in the text format).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fs/blkdev.h"
#include "fs/crc.h"
#include "fixture.h"

#define DEV_SIZE	(8u << 20)
#define BLK		4096u

struct bd_state {
	char *dir;
	char path[PATH_MAX];
	struct dfs_blkdev *bd;
};

static int bd_setup(void **state)
{
	struct bd_state *s = calloc(1, sizeof(*s));
	int fd;

	assert_non_null(s);
	s->dir = fixture_tmpdir();
	snprintf(s->path, sizeof(s->path), "%s/dev.img", s->dir);
	fd = open(s->path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, DEV_SIZE), 0);
	close(fd);
	assert_int_equal(dfs_blkdev_open(s->path, false, &s->bd), 0);
	*state = s;
	return 0;
}

static int bd_teardown(void **state)
{
	struct bd_state *s = *state;

	dfs_blkdev_close(s->bd);
	fixture_rmdir(s->dir);
	free(s->dir);
	free(s);
	return 0;
}

static uint64_t xorshift(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void fill(void *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed | 1;

	for (size_t i = 0; i < len / 8; i++)
		((uint64_t *)buf)[i] = xorshift(&x);
}

/* Reads the file with plain pread: what the block layer wrote must be there. */
static void check_file(const char *path, uint64_t off, const void *want, size_t len)
{
	char *got = malloc(len);
	int fd = open(path, O_RDONLY);

	assert_non_null(got);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, got, len, (off_t)off), (ssize_t)len);
	assert_memory_equal(got, want, len);
	close(fd);
	free(got);
}

static void test_crc32c(void **state)
{
	static const char check[] = "123456789";
	unsigned char blk[64];

	assert_int_equal(dfs_crc32c(0, check, 9), 0xE3069283u);
	/* continuing a CRC is the CRC of the concatenation */
	assert_int_equal(dfs_crc32c(dfs_crc32c(0, check, 4), check + 4, 5), 0xE3069283u);
	memset(blk, 0xa5, sizeof(blk));
	dfs_cksum_update(blk, sizeof(blk), 8);
	assert_true(dfs_cksum_verify(blk, sizeof(blk), 8));
	blk[40] ^= 1;
	assert_false(dfs_cksum_verify(blk, sizeof(blk), 8));
	blk[40] ^= 1;
	blk[9] ^= 0x10;	/* the CRC field itself */
	assert_false(dfs_cksum_verify(blk, sizeof(blk), 8));
}

static void test_rw_single(void **state)
{
	struct bd_state *s = *state;
	char *w = dfs_bio_alloc_buf(3 * BLK), *r = dfs_bio_alloc_buf(3 * BLK);

	assert_int_equal(dfs_blkdev_size(s->bd), DEV_SIZE);
	assert_false(dfs_blkdev_is_bdev(s->bd));
	fill(w, 3 * BLK, 42);
	assert_int_equal(dfs_blkdev_rw(s->bd, DFS_IO_WRITE, DFS_IOK_DATA, 5 * BLK, w, 3 * BLK), 0);
	assert_int_equal(dfs_blkdev_rw(s->bd, DFS_IO_READ, DFS_IOK_DATA, 5 * BLK, r, 3 * BLK), 0);
	assert_memory_equal(w, r, 3 * BLK);
	check_file(s->path, 5 * BLK, w, 3 * BLK);
	/* 512-byte granularity */
	assert_int_equal(dfs_blkdev_rw(s->bd, DFS_IO_READ, DFS_IOK_DATA, 5 * BLK + 512, r, 1024), 0);
	assert_memory_equal(w + 512, r, 1024);
	free(w);
	free(r);
}

static void test_multivec(void **state)
{
	struct bd_state *s = *state;
	struct dfs_bio bio;
	char *v[5], *all = malloc(5 * BLK);
	struct dfs_blkdev_stats before, after;

	assert_non_null(all);
	dfs_blkdev_get_stats(s->bd, &before);
	/* scattered buffers, one contiguous device range: one writev */
	dfs_bio_init(&bio, DFS_IO_WRITE, DFS_IOK_META, 100 * BLK);
	for (int i = 0; i < 5; i++) {
		v[i] = dfs_bio_alloc_buf(BLK);
		fill(v[i], BLK, 1000 + i);
		memcpy(all + i * BLK, v[i], BLK);
		dfs_bio_add_vec(&bio, v[i], BLK);
	}
	assert_int_equal(dfs_bio_len(&bio), 5 * BLK);
	assert_int_equal(dfs_submit_bio(s->bd, &bio), 0);
	assert_int_equal(dfs_blkdev_wait_bio(s->bd, &bio), 0);
	assert_true(bio.done);
	dfs_blkdev_get_stats(s->bd, &after);
	assert_int_equal(after.writes - before.writes, 1);
	assert_int_equal(after.write_bytes - before.write_bytes, 5 * BLK);
	check_file(s->path, 100 * BLK, all, 5 * BLK);

	/* read it back through a readv into other scattered buffers */
	dfs_bio_init(&bio, DFS_IO_READ, DFS_IOK_META, 100 * BLK);
	for (int i = 4; i >= 0; i--) {
		memset(v[i], 0, BLK);
		dfs_bio_add_vec(&bio, v[i], BLK);
	}
	assert_int_equal(dfs_submit_bio(s->bd, &bio), 0);
	assert_int_equal(dfs_blkdev_wait_bio(s->bd, &bio), 0);
	for (int i = 0; i < 5; i++)
		assert_memory_equal(v[4 - i], all + i * BLK, BLK);
	for (int i = 0; i < 5; i++)
		free(v[i]);
	free(all);
}

struct endio_count {
	int calls;
	int errors;
};

static void count_end_io(struct dfs_bio *bio)
{
	struct endio_count *c = bio->private;

	assert_true(bio->done);
	c->calls++;
	if (bio->error)
		c->errors++;
}

/*
 * Many random writes queued at once (more than the ring holds, so the queue
 * is pushed on its own), then random reads, against a reference copy.
 */
static void test_batched_random(void **state)
{
	struct bd_state *s = *state;
	const uint32_t nblocks = DEV_SIZE / BLK, nios = 1500;
	uint64_t seed = (uint64_t)time(NULL), x;
	char *model = calloc(nblocks, BLK);
	struct dfs_bio *bios = calloc(nios, sizeof(*bios));
	char **bufs = calloc(nios, sizeof(*bufs));
	struct endio_count cnt = { 0 };

	assert_non_null(model);
	assert_non_null(bios);
	assert_non_null(bufs);
	x = seed | 1;
	print_message("seed %" PRIu64 "\n", seed);
	/* later writes to a block must win: reap all before overlapping */
	for (int round = 0; round < 3; round++) {
		char *touched = calloc(nblocks, 1);

		cnt.calls = cnt.errors = 0;
		for (uint32_t i = 0; i < nios / 3; i++) {
			uint32_t idx = round * (nios / 3) + i;
			uint32_t b = (uint32_t)(xorshift(&x) % (nblocks - 4));
			uint32_t n = 1 + (uint32_t)(xorshift(&x) % 4);
			int k;

			for (k = 0; k < (int)n; k++)
				if (touched[b + k])
					break;
			if (k < (int)n)
				n = (uint32_t)k;
			if (!n)
				continue;
			memset(touched + b, 1, n);
			bufs[idx] = dfs_bio_alloc_buf((size_t)n * BLK);
			fill(bufs[idx], (size_t)n * BLK, xorshift(&x));
			memcpy(model + (size_t)b * BLK, bufs[idx], (size_t)n * BLK);
			dfs_bio_init(&bios[idx], DFS_IO_WRITE, DFS_IOK_DATA, (uint64_t)b * BLK);
			for (uint32_t j = 0; j < n; j++)
				dfs_bio_add_vec(&bios[idx], bufs[idx] + (size_t)j * BLK, BLK);
			bios[idx].end_io = count_end_io;
			bios[idx].private = &cnt;
			assert_int_equal(dfs_submit_bio(s->bd, &bios[idx]), 0);
		}
		assert_int_equal(dfs_blkdev_drain(s->bd), 0);
		for (uint32_t i = 0; i < nios / 3; i++) {
			uint32_t idx = round * (nios / 3) + i;

			if (bufs[idx]) {
				assert_true(bios[idx].done);
				assert_int_equal(bios[idx].error, 0);
			}
		}
		assert_int_equal(cnt.errors, 0);
		free(touched);
	}
	assert_int_equal(dfs_blkdev_flush(s->bd), 0);

	/* whole device back in one go, in 64-block bios */
	{
		char *r = dfs_bio_alloc_buf((size_t)nblocks * BLK);
		uint32_t nb = nblocks / 64;
		struct dfs_bio *rb = calloc(nb, sizeof(*rb));

		for (uint32_t i = 0; i < nb; i++) {
			dfs_bio_init(&rb[i], DFS_IO_READ, DFS_IOK_DATA, (uint64_t)i * 64 * BLK);
			for (int j = 0; j < 64; j++)
				dfs_bio_add_vec(&rb[i], r + ((size_t)i * 64 + j) * BLK, BLK);
			assert_int_equal(dfs_submit_bio(s->bd, &rb[i]), 0);
		}
		assert_int_equal(dfs_blkdev_unplug(s->bd), 0);
		assert_int_equal(dfs_blkdev_drain(s->bd), 0);
		for (uint32_t i = 0; i < nb; i++)
			assert_int_equal(rb[i].error, 0);
		for (uint32_t b = 0; b < nblocks; b++)
			if (memcmp(r + (size_t)b * BLK, model + (size_t)b * BLK, BLK))
				fail_msg("block %u differs from the model (seed %" PRIu64 ")", b, seed);
		free(rb);
		free(r);
	}
	for (uint32_t i = 0; i < nios; i++)
		free(bufs[i]);
	free(bufs);
	free(bios);
	free(model);
}

static void test_flush_and_eof(void **state)
{
	struct bd_state *s = *state;
	char *buf = dfs_bio_alloc_buf(2 * BLK);
	struct dfs_blkdev_stats st0, st1;

	dfs_blkdev_get_stats(s->bd, &st0);
	assert_int_equal(dfs_blkdev_flush(s->bd), 0);
	dfs_blkdev_get_stats(s->bd, &st1);
	assert_int_equal(st1.flushes - st0.flushes, 1);

	/* a read straddling the end: the part past it reads as zeroes */
	memset(buf, 0xff, 2 * BLK);
	assert_int_equal(dfs_blkdev_rw(s->bd, DFS_IO_READ, DFS_IOK_DATA, DEV_SIZE - BLK, buf,
				       2 * BLK), 0);
	for (size_t i = BLK; i < 2 * BLK; i++)
		assert_int_equal(buf[i], 0);
	/* waiting for a bio never submitted is an error, not a hang */
	{
		struct dfs_bio bio;

		dfs_bio_init(&bio, DFS_IO_READ, DFS_IOK_DATA, 0);
		dfs_bio_add_vec(&bio, buf, BLK);
		assert_int_equal(dfs_blkdev_wait_bio(s->bd, &bio), -EINVAL);
	}
	free(buf);
}

static void test_iolog(void **state)
{
	struct bd_state *s = *state;
	struct dfs_iolog_rec *recs;
	char *buf = dfs_bio_alloc_buf(4 * BLK), logpath[PATH_MAX + 16], line[256];
	size_t n;
	FILE *f;
	int lines = 0;

	/* nothing is recorded while the log is off */
	assert_int_equal(dfs_blkdev_rw(s->bd, DFS_IO_READ, DFS_IOK_DATA, 0, buf, BLK), 0);
	n = dfs_blkdev_iolog_get(s->bd, &recs);
	assert_int_equal(n, 0);
	free(recs);

	dfs_blkdev_iolog_enable(s->bd, true);
	assert_int_equal(dfs_blkdev_rw(s->bd, DFS_IO_WRITE, DFS_IOK_META, 7 * BLK, buf, 2 * BLK), 0);
	assert_int_equal(dfs_blkdev_rw(s->bd, DFS_IO_READ, DFS_IOK_LOG, 9 * BLK, buf, 4 * BLK), 0);
	assert_int_equal(dfs_blkdev_flush(s->bd), 0);
	dfs_blkdev_iolog_enable(s->bd, false);
	assert_int_equal(dfs_blkdev_rw(s->bd, DFS_IO_READ, DFS_IOK_DATA, 0, buf, BLK), 0);

	n = dfs_blkdev_iolog_get(s->bd, &recs);
	assert_int_equal(n, 3);
	assert_int_equal(recs[0].dir, DFS_IO_WRITE);
	assert_int_equal(recs[0].kind, DFS_IOK_META);
	assert_int_equal(recs[0].offset, 7 * BLK);
	assert_int_equal(recs[0].len, 2 * BLK);
	assert_int_equal(recs[1].dir, DFS_IO_READ);
	assert_int_equal(recs[1].kind, DFS_IOK_LOG);
	assert_int_equal(recs[1].offset, 9 * BLK);
	assert_int_equal(recs[1].len, 4 * BLK);
	assert_int_equal(recs[2].dir, DFS_IO_FLUSH);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(recs[i].error, 0);
		assert_true(recs[i].submit_ns > 0);
		assert_true(recs[i].complete_ns >= recs[i].submit_ns);
		if (i)
			assert_true(recs[i].submit_ns >= recs[i - 1].complete_ns);
	}

	snprintf(logpath, sizeof(logpath), "%s/io.log", s->dir);
	assert_int_equal(dfs_blkdev_iolog_save(s->bd, logpath), 0);
	f = fopen(logpath, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long long sub, comp, off, len;
		unsigned kind;
		char dir;
		int err;

		assert_int_equal(sscanf(line, "%llu %llu %c %u %llu %llu %d", &sub, &comp, &dir, &kind,
					&off, &len, &err), 7);
		assert_int_equal(sub, recs[lines].submit_ns);
		assert_int_equal(comp, recs[lines].complete_ns);
		assert_int_equal(dir, "RWF"[recs[lines].dir]);
		assert_int_equal(kind, recs[lines].kind);
		assert_int_equal(off, recs[lines].offset);
		assert_int_equal(len, recs[lines].len);
		assert_int_equal(err, 0);
		lines++;
	}
	fclose(f);
	assert_int_equal(lines, 3);
	free(recs);
	free(buf);
}

struct thr_arg {
	struct dfs_blkdev *bd;
	uint32_t first, n;		/* blocks this thread owns */
	int failures;
};

/* Each thread writes and reads back its own blocks, batched and one by one. */
static void *thr_main(void *p)
{
	struct thr_arg *a = p;
	char *w = dfs_bio_alloc_buf(8 * BLK), *r = dfs_bio_alloc_buf(8 * BLK);

	for (uint32_t round = 0; round < 50; round++) {
		for (uint32_t b = a->first; b + 8 <= a->first + a->n; b += 8) {
			fill(w, 8 * BLK, ((uint64_t)b << 20) + round);
			if (dfs_blkdev_rw(a->bd, DFS_IO_WRITE, DFS_IOK_DATA, (uint64_t)b * BLK, w,
					  8 * BLK) ||
			    dfs_blkdev_rw(a->bd, DFS_IO_READ, DFS_IOK_DATA, (uint64_t)b * BLK, r,
					  8 * BLK) ||
			    memcmp(w, r, 8 * BLK))
				a->failures++;
		}
	}
	free(w);
	free(r);
	return NULL;
}

static void test_threads(void **state)
{
	struct bd_state *s = *state;
	struct thr_arg args[4];
	pthread_t th[4];
	struct dfs_blkdev_stats st;

	dfs_blkdev_iolog_enable(s->bd, true);
	for (int i = 0; i < 4; i++) {
		args[i] = (struct thr_arg){ .bd = s->bd, .first = 64 + (uint32_t)i * 64, .n = 64 };
		assert_int_equal(pthread_create(&th[i], NULL, thr_main, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(args[i].failures, 0);
	}
	dfs_blkdev_get_stats(s->bd, &st);
	assert_int_equal(st.writes, 4 * 50 * 8);
	assert_int_equal(st.reads, 4 * 50 * 8);
	{
		struct dfs_iolog_rec *recs;

		assert_int_equal(dfs_blkdev_iolog_get(s->bd, &recs), 2 * 4 * 50 * 8);
		free(recs);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c),
		cmocka_unit_test_setup_teardown(test_rw_single, bd_setup, bd_teardown),
		cmocka_unit_test_setup_teardown(test_multivec, bd_setup, bd_teardown),
		cmocka_unit_test_setup_teardown(test_batched_random, bd_setup, bd_teardown),
		cmocka_unit_test_setup_teardown(test_flush_and_eof, bd_setup, bd_teardown),
		cmocka_unit_test_setup_teardown(test_iolog, bd_setup, bd_teardown),
		cmocka_unit_test_setup_teardown(test_threads, bd_setup, bd_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
