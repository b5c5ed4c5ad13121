/* SPDX-License-Identifier: MIT */
/* CRC32C of metadata blocks and inodes (computed by ISA-L's crc32_iscsi). */
#ifndef DEEPFS_CRC_H
#define DEEPFS_CRC_H

#include <stddef.h>
#include <stdint.h>

uint32_t dfs_crc32c(uint32_t seed, const void *buf, size_t len);
/* CRC of buf with the 32-bit field at crc_off taken as zero. */
uint32_t dfs_cksum(const void *buf, size_t len, size_t crc_off);
void dfs_cksum_update(void *buf, size_t len, size_t crc_off);
int dfs_cksum_verify(const void *buf, size_t len, size_t crc_off); /* 1 = good */

#endif
