/* SPDX-License-Identifier: MIT */
/*
 * CRC32C (Castagnoli) through ISA-L. crc32_iscsi() neither pre- nor
 * post-inverts, so we do both here: with seed 0 the result is the standard
 * CRC32C, and feeding a previous result back as the seed continues it.
 */
#include <isa-l/crc.h>
#include <stdint.h>
#include <string.h>

#include "crc.h"

uint32_t dfs_crc32c(uint32_t seed, const void *buf, size_t len)
{
	uint32_t crc = ~seed;
	const unsigned char *p = buf;

	/* crc32_iscsi takes an int length */
	while (len) {
		size_t n = len > (1u << 30) ? (1u << 30) : len;

		crc = crc32_iscsi((unsigned char *)p, (int)n, crc);
		p += n;
		len -= n;
	}
	return ~crc;
}

uint32_t dfs_cksum(const void *buf, size_t len, size_t crc_off)
{
	static const uint32_t zero;
	const char *p = buf;
	uint32_t crc;

	crc = dfs_crc32c(0, p, crc_off);
	crc = dfs_crc32c(crc, &zero, sizeof(zero));
	return dfs_crc32c(crc, p + crc_off + sizeof(zero), len - crc_off - sizeof(zero));
}

void dfs_cksum_update(void *buf, size_t len, size_t crc_off)
{
	uint32_t crc = dfs_cksum(buf, len, crc_off);

	memcpy((char *)buf + crc_off, &crc, sizeof(crc));
}

int dfs_cksum_verify(const void *buf, size_t len, size_t crc_off)
{
	uint32_t crc;

	memcpy(&crc, (const char *)buf + crc_off, sizeof(crc));
	return crc == dfs_cksum(buf, len, crc_off);
}
