/* SPDX-License-Identifier: MIT */
/* reclaimlab mkfs: make a deepfs filesystem (dfs_mkfs). */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "fs/deepfs.h"
#include "fs/format.h"

enum { OPT_SIZE, OPT_AGCOUNT, OPT_BLOCKSIZE, OPT_LOGSIZE, OPT_LABEL, OPT_QUIET };

static const struct rl_opt mkfs_opts[] = {
	[OPT_SIZE] = { "size", 's', "SIZE",
		       "size of the filesystem; required when IMAGE does not exist yet "
		       "(default: the size of the existing file or device)" },
	[OPT_AGCOUNT] = { "ag-count", 0, "N", "number of allocation groups (default: chosen from the size)" },
	[OPT_BLOCKSIZE] = { "block-size", 'b', "SIZE", "block size: 1024, 2048 or 4096 (default 4096)" },
	[OPT_LOGSIZE] = { "log-size", 0, "N",
			  "size of the write-ahead log: N blocks, or bytes with a unit as in 8M "
			  "(default: chosen from the size)" },
	[OPT_LABEL] = { "label", 'L', "LABEL", "filesystem label, at most 31 bytes" },
	[OPT_QUIET] = { "quiet", 'q', NULL, "print nothing on success" },
	{ 0 },
};

/* Prints what was made, as mkfs.xfs does; mounting it read-only also proves
 * that the new filesystem is usable. */
static int mkfs_report(const char *path)
{
	struct dfs_mount_opts mo = { .readonly = true };
	struct dfs_mount *mp;
	struct dfs_statfs sf;
	char total[32], avail[32];
	int error;

	error = dfs_mount(path, &mo, &mp);
	if (error) {
		fprintf(stderr, "%s mkfs: %s: the new filesystem does not mount: %s\n", rl_program,
			path, strerror(-error));
		return RL_EXIT_PROBLEM;
	}
	dfs_statfs(mp, &sf);
	dfs_unmount(mp);
	printf("%s: deepfs, %" PRIu64 " blocks of %u bytes (%s), %s free\n", path, sf.blocks,
	       sf.bsize, rl_fmt_size(sf.blocks * sf.bsize, total, sizeof(total)),
	       rl_fmt_size(sf.bavail * sf.bsize, avail, sizeof(avail)));
	return RL_EXIT_OK;
}

static int mkfs_run(const struct rl_cmd *cmd, int argc, char **argv)
{
	struct dfs_mkfs_opts mo = { 0 };
	struct rl_parser p;
	uint64_t blocksize = 0, logsize = 0;
	bool quiet = false, log_in_bytes = false;
	const char *path;
	struct stat st;
	int o, error;

	rl_parser_init(&p, cmd, argc, argv);
	while ((o = rl_next_opt(&p)) >= 0) {
		switch (o) {
		case OPT_SIZE:
			if (!rl_opt_size(&p, "--size", &mo.size))
				return RL_EXIT_USAGE;
			break;
		case OPT_AGCOUNT:
			if (!rl_opt_u32(&p, "--ag-count", &mo.agcount))
				return RL_EXIT_USAGE;
			if (mo.agcount == 0) {
				rl_usage_error(cmd, "--ag-count must be at least 1");
				return RL_EXIT_USAGE;
			}
			break;
		case OPT_BLOCKSIZE:
			if (!rl_opt_size(&p, "--block-size", &blocksize))
				return RL_EXIT_USAGE;
			if (blocksize < DFS_MIN_BLOCKSIZE || blocksize > DFS_MAX_BLOCKSIZE ||
			    (blocksize & (blocksize - 1))) {
				rl_usage_error(cmd, "bad --block-size '%s': a power of two from %u to %u",
					       p.optarg, DFS_MIN_BLOCKSIZE, DFS_MAX_BLOCKSIZE);
				return RL_EXIT_USAGE;
			}
			mo.blocksize = (uint32_t)blocksize;
			break;
		case OPT_LOGSIZE:
			if (!rl_opt_size(&p, "--log-size", &logsize))
				return RL_EXIT_USAGE;
			log_in_bytes = strspn(p.optarg, "0123456789") != strlen(p.optarg);
			break;
		case OPT_LABEL:
			if (strlen(p.optarg) >= sizeof(((struct dfs_dsb *)0)->label)) {
				rl_usage_error(cmd, "--label '%s' is longer than %zu bytes", p.optarg,
					       sizeof(((struct dfs_dsb *)0)->label) - 1);
				return RL_EXIT_USAGE;
			}
			mo.label = p.optarg;
			break;
		case OPT_QUIET:
			quiet = true;
			break;
		}
	}
	if (o == RL_OPT_HELP)
		return RL_EXIT_OK;
	if (o == RL_OPT_ERROR || !rl_want_args(&p, 1, 1))
		return RL_EXIT_USAGE;
	path = argv[p.optind];

	if (logsize) {
		if (log_in_bytes)
			logsize /= mo.blocksize ? mo.blocksize : 4096;
		if (logsize == 0 || logsize > UINT32_MAX) {
			rl_usage_error(cmd, "bad --log-size: %" PRIu64 " blocks", logsize);
			return RL_EXIT_USAGE;
		}
		mo.logblocks = (uint32_t)logsize;
	}
	if (stat(path, &st) < 0) {
		if (errno != ENOENT) {
			fprintf(stderr, "%s mkfs: %s: %s\n", rl_program, path, strerror(errno));
			return RL_EXIT_PROBLEM;
		}
		if (!mo.size) {
			rl_usage_error(cmd, "%s does not exist: give --size to create it", path);
			return RL_EXIT_USAGE;
		}
	} else if (S_ISDIR(st.st_mode)) {
		fprintf(stderr, "%s mkfs: %s is a directory\n", rl_program, path);
		return RL_EXIT_PROBLEM;
	}

	error = dfs_mkfs(path, &mo);
	if (error) {
		fprintf(stderr, "%s mkfs: %s: %s\n", rl_program, path, strerror(-error));
		return RL_EXIT_PROBLEM;
	}
	return quiet ? RL_EXIT_OK : mkfs_report(path);
}

const struct rl_cmd rl_cmd_mkfs = {
	.name = "mkfs",
	.args = "IMAGE|DEVICE",
	.summary = "Make a deepfs filesystem on an image file or a block device",
	.description = "Formats IMAGE (created, or grown to --size, if it is a file) with "
		       "deepfs: allocation groups with free-space and inode B+trees, a "
		       "write-ahead log and an empty root directory. Everything on it is "
		       "lost. Then mounts it read-only to check it and prints its size.",
	.opts = mkfs_opts,
	.run = mkfs_run,
};
