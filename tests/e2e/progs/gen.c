/* SPDX-License-Identifier: MIT */
/*
 * gen BYTES [SEED]: writes about BYTES of deterministic text to stdout,
 * lines of a random key and a few words from a small vocabulary, so that
 * sort has real work (many distinct keys, some duplicates) and xz finds
 * something to compress. The same arguments always give the same bytes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static const char *const words[] = {
	"page", "frame", "fault", "clock", "evict", "dirty", "clean", "refault",
	"inode", "extent", "budget", "shadow", "lru", "active", "inactive", "swap",
	"memfd", "userfaultfd", "writeback", "readahead", "mapping", "anon", "file", "zone",
};

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: gen BYTES [SEED]\n");
		return 2;
	}
	char *end;
	errno = 0;
	unsigned long long want = strtoull(argv[1], &end, 10);
	uint64_t seed = argc == 3 ? strtoull(argv[2], NULL, 10) : 1;
	if (errno || *end || want == 0) {
		fprintf(stderr, "gen: bad size '%s'\n", argv[1]);
		return 2;
	}

	static char buf[1 << 16];
	size_t n = 0;
	unsigned long long done = 0, line = 0;
	while (done < want) {
		char l[256];
		int len = 0;
		uint64_t r = splitmix(&seed);
		/* an eighth of the keys come from a small set: duplicates for sort */
		uint64_t key = (r & 0xf) < 2 ? (r >> 8) % 65536 : r >> 4;
		len += snprintf(l + len, sizeof(l) - len, "%012llx", (unsigned long long)(key & 0xffffffffffffull));
		int nw = 1 + (int)((r >> 56) % 6);
		for (int i = 0; i < nw; i++) {
			uint64_t w = splitmix(&seed);
			len += snprintf(l + len, sizeof(l) - len, " %s", words[w % (sizeof(words) / sizeof(words[0]))]);
		}
		len += snprintf(l + len, sizeof(l) - len, " %llu\n", line++);
		if (n + (size_t)len > sizeof(buf)) {
			if (fwrite(buf, 1, n, stdout) != n)
				goto werr;
			n = 0;
		}
		memcpy(buf + n, l, (size_t)len);
		n += (size_t)len;
		done += (unsigned long long)len;
	}
	if (fwrite(buf, 1, n, stdout) != n || fflush(stdout) != 0)
		goto werr;
	return 0;
werr:
	fprintf(stderr, "gen: write: %s\n", strerror(errno));
	return 1;
}
