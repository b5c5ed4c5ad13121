/* SPDX-License-Identifier: MIT */
/*
 * The FUSE front end: libfuse's low-level API over fs/deepfs.h, in the
 * style of libfuse's example/passthrough_ll.c. It is thin on purpose: deepfs
 * does all the work, and later measurements should see deepfs, not this.
 *
 * What the kernel does for us: permission checks (default_permissions),
 * O_TRUNC (as a setattr, since atomic_o_trunc is off), O_APPEND, clearing
 * suid/sgid on write and chown (handle_killpriv off), POSIX and flock locks
 * (no lock operations here, so they stay local to this machine).
 * Writeback caching in the kernel is off: every write reaches deepfs at once,
 * so deepfs's page cache and its writeback are what gets measured.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <fuse_lowlevel.h>

#include "fs/deepfs.h"
#include "fs/format.h"
#include "harness/fuse_ll.h"

/* How long the kernel may cache names and attributes. Only the pager of
 * `reclaimlab serve` changes files behind the kernel's back (writing back
 * shared mappings); this bounds how long a reader that has the file open
 * may see the old data (the kernel drops pages whose file's mtime moved). */
#define RL_TIMEOUT 1.0

struct rl_fuse {
	struct dfs_mount *mp;	/* NULL once unmounted */
	uint64_t root;
	struct fuse_session *se;
	unsigned max_threads;
	int unmount_error;
	bool other_writers;
	pthread_t loop_thread;	/* rl_fuse_start */
	int loop_error;
};

static struct rl_fuse *rf(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static uint64_t dino(const struct rl_fuse *f, fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? f->root : ino;
}

static fuse_ino_t fino(const struct rl_fuse *f, uint64_t ino)
{
	return ino == f->root ? FUSE_ROOT_ID : ino;
}

static void dfs_to_stat(const struct dfs_stat *ds, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ds->ino;
	st->st_mode = ds->mode;
	st->st_nlink = ds->nlink;
	st->st_uid = ds->uid;
	st->st_gid = ds->gid;
	st->st_rdev = ds->rdev;
	st->st_size = (off_t)ds->size;
	st->st_blocks = (blkcnt_t)ds->blocks;
	st->st_blksize = ds->blksize;
	st->st_atim = ds->atime;
	st->st_mtim = ds->mtime;
	st->st_ctim = ds->ctime;
}

static void fill_entry(const struct rl_fuse *f, const struct dfs_stat *ds,
		       struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = fino(f, ds->ino);
	e->generation = ds->gen;
	dfs_to_stat(ds, &e->attr);
	e->attr_timeout = RL_TIMEOUT;
	e->entry_timeout = RL_TIMEOUT;
}

/*
 * Replies to a request that took a lookup reference (lookup, mknod, mkdir,
 * symlink, link). If the reply does not reach the kernel (the request was
 * interrupted), the kernel will never forget the inode, so the reference is
 * dropped here.
 */
static void reply_entry(fuse_req_t req, int error, const struct dfs_stat *ds)
{
	struct rl_fuse *f = rf(req);
	struct fuse_entry_param e;

	if (error) {
		fuse_reply_err(req, -error);
		return;
	}
	fill_entry(f, ds, &e);
	if (fuse_reply_entry(req, &e))
		dfs_forget(f->mp, ds->ino, 1);
}

static struct dfs_cred req_cred(fuse_req_t req)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	return (struct dfs_cred){ .uid = ctx->uid, .gid = ctx->gid };
}

/* ---- session ---- */

static void rl_init(void *userdata, struct fuse_conn_info *conn)
{
	/* See the comment at the top for why each of these is the kernel's job. */
	conn->want &= ~(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_ATOMIC_O_TRUNC |
			FUSE_CAP_HANDLE_KILLPRIV | FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
}

static void rl_destroy(void *userdata)
{
	struct rl_fuse *f = userdata;

	if (f->mp) {
		f->unmount_error = dfs_unmount(f->mp);
		f->mp = NULL;
	}
}

/* ---- names ---- */

static void rl_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct rl_fuse *f = rf(req);
	struct dfs_stat ds;

	reply_entry(req, dfs_lookup(f->mp, dino(f, parent), name, &ds), &ds);
}

static void rl_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct rl_fuse *f = rf(req);

	dfs_forget(f->mp, dino(f, ino), nlookup);
	fuse_reply_none(req);
}

static void rl_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct rl_fuse *f = rf(req);

	for (size_t i = 0; i < count; i++)
		dfs_forget(f->mp, dino(f, forgets[i].ino), forgets[i].nlookup);
	fuse_reply_none(req);
}

static void rl_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rl_fuse *f = rf(req);
	struct dfs_stat ds;
	struct stat st;
	int error;

	error = dfs_getattr(f->mp, dino(f, ino), &ds);
	if (error) {
		fuse_reply_err(req, -error);
		return;
	}
	dfs_to_stat(&ds, &st);
	fuse_reply_attr(req, &st, RL_TIMEOUT);
}

static void rl_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct rl_fuse *f = rf(req);
	struct dfs_setattr sa = { 0 };
	struct dfs_stat ds;
	struct stat st;
	int error;

	if (to_set & FUSE_SET_ATTR_MODE) {
		sa.valid |= DFS_SET_MODE;
		sa.mode = attr->st_mode;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		sa.valid |= DFS_SET_UID;
		sa.uid = attr->st_uid;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		sa.valid |= DFS_SET_GID;
		sa.gid = attr->st_gid;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		sa.valid |= DFS_SET_SIZE;
		sa.size = (uint64_t)attr->st_size;
	}
	if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
		sa.valid |= DFS_SET_ATIME_NOW;
	} else if (to_set & FUSE_SET_ATTR_ATIME) {
		sa.valid |= DFS_SET_ATIME;
		sa.atime = attr->st_atim;
	}
	if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
		sa.valid |= DFS_SET_MTIME_NOW;
	} else if (to_set & FUSE_SET_ATTR_MTIME) {
		sa.valid |= DFS_SET_MTIME;
		sa.mtime = attr->st_mtim;
	}
	if (to_set & FUSE_SET_ATTR_CTIME) {
		sa.valid |= DFS_SET_CTIME;
		sa.ctime = attr->st_ctim;
	}
	error = dfs_setattr(f->mp, dino(f, ino), &sa, &ds);
	if (error) {
		fuse_reply_err(req, -error);
		return;
	}
	dfs_to_stat(&ds, &st);
	fuse_reply_attr(req, &st, RL_TIMEOUT);
}

static void rl_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct rl_fuse *f = rf(req);
	char buf[DFS_MAXPATHLEN + 1];
	ssize_t n;

	n = dfs_readlink(f->mp, dino(f, ino), buf, sizeof(buf));
	if (n < 0) {
		fuse_reply_err(req, (int)-n);
		return;
	}
	if ((size_t)n >= sizeof(buf)) {	/* deepfs never makes one this long */
		fuse_reply_err(req, EUCLEAN);
		return;
	}
	buf[n] = '\0';
	fuse_reply_readlink(req, buf);
}

static void rl_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev)
{
	struct rl_fuse *f = rf(req);
	struct dfs_cred cr = req_cred(req);
	struct dfs_stat ds;

	reply_entry(req, dfs_mknod(f->mp, dino(f, parent), name, mode, (uint32_t)rdev, &cr, &ds),
		    &ds);
}

static void rl_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct rl_fuse *f = rf(req);
	struct dfs_cred cr = req_cred(req);
	struct dfs_stat ds;

	reply_entry(req, dfs_mkdir(f->mp, dino(f, parent), name, S_IFDIR | (mode & 07777), &cr,
				   &ds), &ds);
}

static void rl_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct rl_fuse *f = rf(req);
	struct dfs_cred cr = req_cred(req);
	struct dfs_stat ds;

	reply_entry(req, dfs_symlink(f->mp, dino(f, parent), name, link, &cr, &ds), &ds);
}

static void rl_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct rl_fuse *f = rf(req);
	struct dfs_stat ds;

	reply_entry(req, dfs_link(f->mp, dino(f, ino), dino(f, newparent), newname, &ds), &ds);
}

static void rl_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct rl_fuse *f = rf(req);

	fuse_reply_err(req, -dfs_unlink(f->mp, dino(f, parent), name));
}

static void rl_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct rl_fuse *f = rf(req);

	fuse_reply_err(req, -dfs_rmdir(f->mp, dino(f, parent), name));
}

static void rl_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	struct rl_fuse *f = rf(req);
	unsigned dflags = 0;

	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		fuse_reply_err(req, EINVAL);	/* RENAME_WHITEOUT: no overlay support */
		return;
	}
	if (flags & RENAME_NOREPLACE)
		dflags |= DFS_RENAME_NOREPLACE;
	if (flags & RENAME_EXCHANGE)
		dflags |= DFS_RENAME_EXCHANGE;
	fuse_reply_err(req, -dfs_rename(f->mp, dino(f, parent), name, dino(f, newparent), newname,
					dflags));
}

/* ---- files ---- */

static void rl_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* Unless the pager writes files too, every change goes through this
	 * mount, so what the kernel has cached is still right at the next open. */
	fi->keep_cache = !rf(req)->other_writers;
	fuse_reply_open(req, fi);
}

static void rl_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct rl_fuse *f = rf(req);
	struct dfs_cred cr = req_cred(req);
	struct fuse_entry_param e;
	struct dfs_stat ds;
	int error;

	error = dfs_mknod(f->mp, dino(f, parent), name, S_IFREG | (mode & 07777), 0, &cr, &ds);
	if (error == -EEXIST && !(fi->flags & O_EXCL)) {
		/* Created by someone else since the kernel's lookup: open it. */
		error = dfs_lookup(f->mp, dino(f, parent), name, &ds);
		if (!error && S_ISDIR(ds.mode)) {
			dfs_forget(f->mp, ds.ino, 1);
			error = -EISDIR;
		}
		if (!error && (fi->flags & O_TRUNC)) {
			struct dfs_setattr sa = { .valid = DFS_SET_SIZE, .size = 0 };

			error = dfs_setattr(f->mp, ds.ino, &sa, &ds);
			if (error)
				dfs_forget(f->mp, ds.ino, 1);
		}
	}
	if (error) {
		fuse_reply_err(req, -error);
		return;
	}
	fill_entry(f, &ds, &e);
	fi->keep_cache = !f->other_writers;
	if (fuse_reply_create(req, &e, fi))
		dfs_forget(f->mp, ds.ino, 1);
}

static void rl_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct rl_fuse *f = rf(req);
	ssize_t n;
	char *buf;

	if (size == 0) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = dfs_read(f->mp, dino(f, ino), buf, size, (uint64_t)off);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void rl_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct rl_fuse *f = rf(req);
	ssize_t n;

	n = dfs_write(f->mp, dino(f, ino), buf, size, (uint64_t)off);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

/* close(2): nothing to do, as for XFS; data is written back by fsync,
 * syncfs and unmount (and, later, by reclaim). */
static void rl_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

static void rl_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

static void rl_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct rl_fuse *f = rf(req);

	fuse_reply_err(req, -dfs_fsync(f->mp, dino(f, ino), datasync != 0));
}

static void rl_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
			 struct fuse_file_info *fi)
{
	struct rl_fuse *f = rf(req);

	switch (mode) {
	case 0:
	case FALLOC_FL_KEEP_SIZE:
	case FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE:
	case FALLOC_FL_ZERO_RANGE:
	case FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE:
		break;
	default:
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	fuse_reply_err(req, -dfs_fallocate(f->mp, dino(f, ino), mode, (uint64_t)offset,
					   (uint64_t)length));
}

/* Copies through a buffer here rather than through the kernel's pipe: one
 * request instead of one read and one write per chunk. */
#define RL_COPY_CHUNK (1u << 20)
static void rl_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			       struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			       struct fuse_file_info *fi_out, size_t len, int flags)
{
	struct rl_fuse *f = rf(req);
	size_t done = 0;
	ssize_t n = 0;
	char *buf;

	if (flags) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	buf = malloc(len < RL_COPY_CHUNK ? (len ? len : 1) : RL_COPY_CHUNK);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	while (done < len) {
		size_t chunk = len - done < RL_COPY_CHUNK ? len - done : RL_COPY_CHUNK;
		ssize_t w;

		n = dfs_read(f->mp, dino(f, ino_in), buf, chunk, (uint64_t)off_in + done);
		if (n <= 0)
			break;
		w = dfs_write(f->mp, dino(f, ino_out), buf, (size_t)n, (uint64_t)off_out + done);
		if (w < 0) {
			n = w;
			break;
		}
		done += (size_t)w;
		if (w < n)
			break;
	}
	free(buf);
	if (n < 0 && done == 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, done);
}

/* ---- directories ---- */

static void rl_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_open(req, fi);
}

static void rl_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

static void rl_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct rl_fuse *f = rf(req);

	fuse_reply_err(req, -dfs_fsync(f->mp, dino(f, ino), datasync != 0));
}

struct rl_readdir {
	fuse_req_t req;
	char *buf;
	size_t size, used;
};

static int rl_filldir(void *ctx, const char *name, size_t namelen, uint64_t ino, uint32_t mode,
		      uint64_t next_cookie)
{
	struct rl_readdir *rd = ctx;
	char cname[DFS_MAXNAMELEN + 1];
	struct stat st = { .st_ino = ino, .st_mode = mode };
	size_t n;

	if (namelen > DFS_MAXNAMELEN)
		return -EUCLEAN;
	memcpy(cname, name, namelen);
	cname[namelen] = '\0';
	n = fuse_add_direntry(rd->req, rd->buf + rd->used, rd->size - rd->used, cname, &st,
			      (off_t)next_cookie);
	if (n > rd->size - rd->used)
		return 1;	/* full: the kernel asks again from this entry's cookie */
	rd->used += n;
	return 0;
}

static void rl_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct rl_fuse *f = rf(req);
	struct rl_readdir rd = { .req = req, .size = size };
	int error;

	rd.buf = malloc(size ? size : 1);
	if (!rd.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	error = dfs_readdir(f->mp, dino(f, ino), (uint64_t)off, rl_filldir, &rd);
	if (error < 0 && rd.used == 0)
		fuse_reply_err(req, -error);
	else
		fuse_reply_buf(req, rd.buf, rd.used);
	free(rd.buf);
}

/*
 * readdirplus hands the kernel an inode for every entry, which counts as a
 * lookup. dfs_readdir calls its callback with the filesystem lock held, so
 * the entries are collected first and looked up after it returns.
 */
struct rl_plus_ent {
	uint64_t ino;
	uint64_t cookie;
	uint32_t mode;
	bool referenced;
	char name[DFS_MAXNAMELEN + 1];
};

struct rl_readdirplus {
	fuse_req_t req;
	size_t size, estimate;
	struct rl_plus_ent *ents;
	size_t nr, alloc;
};

static int rl_collect(void *ctx, const char *name, size_t namelen, uint64_t ino, uint32_t mode,
		      uint64_t next_cookie)
{
	struct rl_readdirplus *rp = ctx;
	struct rl_plus_ent *e;
	size_t need;

	if (namelen > DFS_MAXNAMELEN)
		return -EUCLEAN;
	if (rp->nr == rp->alloc) {
		size_t alloc = rp->alloc ? 2 * rp->alloc : 32;
		struct rl_plus_ent *ents = realloc(rp->ents, alloc * sizeof(*ents));

		if (!ents)
			return -ENOMEM;
		rp->ents = ents;
		rp->alloc = alloc;
	}
	e = &rp->ents[rp->nr];
	memcpy(e->name, name, namelen);
	e->name[namelen] = '\0';
	need = fuse_add_direntry_plus(rp->req, NULL, 0, e->name, NULL, 0);
	if (rp->estimate + need > rp->size)
		return 1;
	rp->estimate += need;
	e->ino = ino;
	e->mode = mode;
	e->cookie = next_cookie;
	e->referenced = false;
	rp->nr++;
	return 0;
}

static bool is_dot_or_dotdot(const char *name)
{
	return name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

static void rl_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	struct rl_fuse *f = rf(req);
	struct rl_readdirplus rp = { .req = req, .size = size };
	uint64_t dir = dino(f, ino);
	size_t used = 0;
	char *buf;
	int error;

	buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	error = dfs_readdir(f->mp, dir, (uint64_t)off, rl_collect, &rp);
	if (error < 0 && rp.nr == 0)
		goto out_err;
	error = 0;
	for (size_t i = 0; i < rp.nr; i++) {
		struct rl_plus_ent *de = &rp.ents[i];
		struct fuse_entry_param e;
		struct dfs_stat ds;
		size_t n;

		if (is_dot_or_dotdot(de->name)) {
			/* ino 0: no inode handed over, so no reference */
			memset(&e, 0, sizeof(e));
			e.attr.st_ino = de->ino;
			e.attr.st_mode = de->mode;
		} else {
			error = dfs_lookup(f->mp, dir, de->name, &ds);
			if (error == -ENOENT) {	/* removed since dfs_readdir */
				error = 0;
				continue;
			}
			if (error)
				break;
			de->referenced = true;
			de->ino = ds.ino;
			fill_entry(f, &ds, &e);
		}
		n = fuse_add_direntry_plus(req, buf + used, size - used, de->name, &e,
					   (off_t)de->cookie);
		if (n > size - used) {
			if (de->referenced) {
				dfs_forget(f->mp, de->ino, 1);
				de->referenced = false;
			}
			break;
		}
		used += n;
	}
	if (error && used == 0)
		goto out_err;
	if (fuse_reply_buf(req, buf, used) == 0)
		goto out;
	error = 0;	/* the kernel did not get them: drop the references */
out_err:
	for (size_t i = 0; i < rp.nr; i++)
		if (rp.ents[i].referenced)
			dfs_forget(f->mp, rp.ents[i].ino, 1);
	if (error)
		fuse_reply_err(req, -error);
out:
	free(rp.ents);
	free(buf);
}

/* ---- filesystem ---- */

static void rl_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct rl_fuse *f = rf(req);
	struct dfs_statfs sf;
	struct statvfs sv = { 0 };
	int error;

	error = dfs_statfs(f->mp, &sf);
	if (error) {
		fuse_reply_err(req, -error);
		return;
	}
	sv.f_bsize = sf.bsize;
	sv.f_frsize = sf.bsize;
	sv.f_blocks = sf.blocks;
	sv.f_bfree = sf.bfree;
	sv.f_bavail = sf.bavail;
	sv.f_files = sf.files;
	sv.f_ffree = sf.ffree;
	sv.f_favail = sf.ffree;
	sv.f_namemax = sf.namelen;
	fuse_reply_statfs(req, &sv);
}

/* ---- extended attributes ---- */

static void rl_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	struct rl_fuse *f = rf(req);
	int dflags = 0;

	if (flags & ~(XATTR_CREATE | XATTR_REPLACE)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (flags & XATTR_CREATE)
		dflags |= DFS_XATTR_CREATE;
	if (flags & XATTR_REPLACE)
		dflags |= DFS_XATTR_REPLACE;
	fuse_reply_err(req, -dfs_setxattr(f->mp, dino(f, ino), name, value, size, dflags));
}

/* getxattr and listxattr: size 0 asks for the size only. */
static void reply_xattr_value(fuse_req_t req, ssize_t n, const char *buf, size_t size)
{
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else if ((size_t)n > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

static void rl_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct rl_fuse *f = rf(req);
	char *buf = NULL;
	ssize_t n;

	if (size && !(buf = malloc(size))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = dfs_getxattr(f->mp, dino(f, ino), name, buf, size);
	reply_xattr_value(req, n, buf, size);
	free(buf);
}

static void rl_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct rl_fuse *f = rf(req);
	char *buf = NULL;
	ssize_t n;

	if (size && !(buf = malloc(size))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = dfs_listxattr(f->mp, dino(f, ino), buf, size);
	reply_xattr_value(req, n, buf, size);
	free(buf);
}

static void rl_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct rl_fuse *f = rf(req);

	fuse_reply_err(req, -dfs_removexattr(f->mp, dino(f, ino), name));
}

static const struct fuse_lowlevel_ops rl_ops = {
	.init = rl_init,
	.destroy = rl_destroy,
	.lookup = rl_lookup,
	.forget = rl_forget,
	.forget_multi = rl_forget_multi,
	.getattr = rl_getattr,
	.setattr = rl_setattr,
	.readlink = rl_readlink,
	.mknod = rl_mknod,
	.mkdir = rl_mkdir,
	.symlink = rl_symlink,
	.link = rl_link,
	.unlink = rl_unlink,
	.rmdir = rl_rmdir,
	.rename = rl_rename,
	.open = rl_open,
	.create = rl_create,
	.read = rl_read,
	.write = rl_write,
	.flush = rl_flush,
	.release = rl_release,
	.fsync = rl_fsync,
	.fallocate = rl_fallocate,
	.copy_file_range = rl_copy_file_range,
	.opendir = rl_opendir,
	.readdir = rl_readdir,
	.readdirplus = rl_readdirplus,
	.releasedir = rl_releasedir,
	.fsyncdir = rl_fsyncdir,
	.statfs = rl_statfs,
	.setxattr = rl_setxattr,
	.getxattr = rl_getxattr,
	.listxattr = rl_listxattr,
	.removexattr = rl_removexattr,
};

/* ---- mount and the session loop ---- */

static int build_options(const struct rl_fuse_config *cfg, char **optsp)
{
	char *opts = NULL, *fsname;
	int error = 0;

	if (asprintf(&fsname, "fsname=deepfs:%s", cfg->image) < 0)
		return -ENOMEM;
	if (fuse_opt_add_opt(&opts, "default_permissions") ||
	    fuse_opt_add_opt(&opts, "subtype=deepfs") ||
	    fuse_opt_add_opt_escaped(&opts, fsname) ||
	    (geteuid() == 0 && fuse_opt_add_opt(&opts, "allow_other")) ||
	    (cfg->readonly && fuse_opt_add_opt(&opts, "ro")) ||
	    (cfg->options && *cfg->options && fuse_opt_add_opt(&opts, cfg->options)))
		error = -ENOMEM;
	free(fsname);
	if (error)
		free(opts);
	else
		*optsp = opts;
	return error;
}

int rl_fuse_mount(struct dfs_mount *mp, const struct rl_fuse_config *cfg, struct rl_fuse **fp)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct rl_fuse *f;
	char *opts = NULL;
	int error;

	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->mp = mp;
	f->root = dfs_root_ino(mp);
	f->max_threads = cfg->max_threads;
	f->other_writers = cfg->other_writers;

	error = build_options(cfg, &opts);
	if (error)
		goto out_free;
	error = -ENOMEM;
	if (fuse_opt_add_arg(&args, "reclaimlab") || fuse_opt_add_arg(&args, "-o") ||
	    fuse_opt_add_arg(&args, opts) || (cfg->debug && fuse_opt_add_arg(&args, "-d")))
		goto out_args;
	/* fuse_session_new fails only on options it does not know (and says which) */
	error = -EINVAL;
	f->se = fuse_session_new(&args, &rl_ops, sizeof(rl_ops), f);
	if (!f->se)
		goto out_args;
	error = -EIO;	/* libfuse has printed why */
	if (fuse_session_mount(f->se, cfg->mountpoint)) {
		fuse_session_destroy(f->se);
		goto out_args;
	}
	fuse_opt_free_args(&args);
	free(opts);
	*fp = f;
	return 0;

out_args:
	fuse_opt_free_args(&args);
	free(opts);
out_free:
	free(f);
	return error;
}

/* Unmounts FUSE, then deepfs, and frees f: the end of every session. */
static int finish(struct rl_fuse *f, int error)
{
	fuse_session_unmount(f->se);
	fuse_session_destroy(f->se);	/* calls rl_destroy if the kernel had sent INIT */
	rl_destroy(f);
	if (!error)
		error = f->unmount_error;
	free(f);
	return error;
}

/* The loop of a session; > 0 from libfuse means it was told to exit. */
static int loop(struct rl_fuse *f)
{
	struct fuse_loop_config *lc = fuse_loop_cfg_create();
	int ret;

	if (!lc)
		return -ENOMEM;
	if (f->max_threads)
		fuse_loop_cfg_set_max_threads(lc, f->max_threads);
	ret = fuse_session_loop_mt(f->se, lc);
	fuse_loop_cfg_destroy(lc);
	return ret < 0 ? ret : 0;
}

int rl_fuse_run(struct rl_fuse *f)
{
	int error;

	if (fuse_set_signal_handlers(f->se))
		return finish(f, -EIO);
	error = loop(f);
	fuse_remove_signal_handlers(f->se);
	return finish(f, error);
}

/* ---- a session in a thread of its own ---- */

/*
 * libfuse's loop waits for its workers in sem_wait(), which only a signal
 * interrupts; fuse_session_exit() alone leaves it asleep. This signal, sent
 * to the loop thread, is how rl_fuse_stop wakes it.
 */
#define RL_FUSE_WAKE_SIGNAL SIGUSR1

static void wake_handler(int sig)
{
	(void)sig;
}

static void *loop_thread(void *arg)
{
	struct rl_fuse *f = arg;

	f->loop_error = loop(f);
	return NULL;
}

void rl_fuse_inval_data(struct rl_fuse *f, uint64_t ino, uint64_t off, uint64_t len)
{
	fuse_ino_t node = ino == f->root ? FUSE_ROOT_ID : (fuse_ino_t)ino;

	/* -ENOENT: the kernel has no inode for it, so nothing is cached */
	(void)fuse_lowlevel_notify_inval_inode(f->se, node, (off_t)off, (off_t)len);
}

int rl_fuse_start(struct rl_fuse *f)
{
	struct sigaction sa = { .sa_handler = wake_handler };
	sigset_t wake, old;
	int error;

	sigemptyset(&sa.sa_mask);
	if (sigaction(RL_FUSE_WAKE_SIGNAL, &sa, NULL) < 0)
		return finish(f, -errno);
	/* the loop thread and the workers it starts must be able to take it */
	sigemptyset(&wake);
	sigaddset(&wake, RL_FUSE_WAKE_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &wake, &old);
	error = pthread_create(&f->loop_thread, NULL, loop_thread, f);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (error)
		return finish(f, -error);
	return 0;
}

int rl_fuse_stop(struct rl_fuse *f)
{
	struct timespec deadline;

	fuse_session_exit(f->se);
	/* again and again: a signal that comes before the loop is in sem_wait is lost */
	for (;;) {
		pthread_kill(f->loop_thread, RL_FUSE_WAKE_SIGNAL);	/* ESRCH: it ended */
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_nsec += 20 * 1000 * 1000;
		if (deadline.tv_nsec >= 1000000000) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000;
		}
		if (pthread_timedjoin_np(f->loop_thread, NULL, &deadline) == 0)
			break;
	}
	return finish(f, f->loop_error);
}
