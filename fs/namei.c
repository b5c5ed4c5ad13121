// SPDX-License-Identifier: MIT
/*
 * Namespace operations of deepfs.h (XFS's xfs_inode.c create/link/remove/
 * rename and xfs_iops.c getattr/setattr). Each takes the filesystem lock,
 * does its checks before changing anything, then makes every change in one
 * transaction: a failure half way would have to cancel a dirty transaction,
 * which shuts the filesystem down.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "deepfs.h"
#include "dir.h"
#include "file.h"
#include "inode.h"
#include "mount.h"
#include "msg.h"
#include "symlink.h"
#include "trans.h"

#define DFS_MAXLINK	((1u << 31) - 1)	/* as XFS_MAXLINK */

static bool dfs_name_is_dot(const char *name)
{
	return name[0] == '.' && name[1] == '\0';
}
static bool dfs_name_is_dotdot(const char *name)
{
	return name[0] == '.' && name[1] == '.' && name[2] == '\0';
}

static void dfs_fill_stat(const struct dfs_inode *ip, struct dfs_stat *st)
{
	const struct dfs_mount *mp = ip->i_mount;

	memset(st, 0, sizeof(*st));
	st->ino = ip->i_ino;
	st->mode = ip->i_mode;
	st->nlink = ip->i_nlink;
	st->uid = ip->i_uid;
	st->gid = ip->i_gid;
	st->rdev = ip->i_rdev;
	st->size = ip->i_size;
	st->blocks = (ip->i_nblocks + ip->i_delayed_blks) << (mp->m_blocklog - 9);
	st->blksize = mp->m_blocksize;
	st->gen = ip->i_gen;
	st->atime = ip->i_atime;
	st->mtime = ip->i_mtime;
	st->ctime = ip->i_ctime;
}

/* A directory inode for a directory operation. */
static int dfs_iget_dir(struct dfs_mount *mp, uint64_t ino, struct dfs_inode **dpp)
{
	int error = dfs_iget(mp, NULL, ino, dpp);

	if (error)
		return error;
	if (!dfs_isdir(*dpp)) {
		dfs_irele(*dpp);
		return -ENOTDIR;
	}
	return 0;
}

int dfs_getattr(struct dfs_mount *mp, uint64_t ino, struct dfs_stat *st)
{
	struct dfs_inode *ip;
	int error;

	pthread_mutex_lock(&mp->m_lock);
	error = dfs_iget(mp, NULL, ino, &ip);
	if (!error) {
		dfs_fill_stat(ip, st);
		dfs_irele(ip);
	}
	pthread_mutex_unlock(&mp->m_lock);
	return error;
}

static int dfs_setattr_nonsize(struct dfs_inode *ip, const struct dfs_setattr *sa)
{
	struct dfs_mount *mp = ip->i_mount;
	struct dfs_trans *tp;
	int error;

	error = dfs_trans_alloc(mp, 0, &tp);
	if (error)
		return error;
	if (sa->valid & DFS_SET_MODE)
		ip->i_mode = (ip->i_mode & S_IFMT) | (sa->mode & 07777);
	if (sa->valid & DFS_SET_UID)
		ip->i_uid = sa->uid;
	if (sa->valid & DFS_SET_GID)
		ip->i_gid = sa->gid;
	if (sa->valid & DFS_SET_ATIME_NOW)
		dfs_trans_ichgtime(tp, ip, DFS_ICHG_ACC);
	else if (sa->valid & DFS_SET_ATIME)
		ip->i_atime = sa->atime;
	if (sa->valid & DFS_SET_MTIME_NOW)
		dfs_trans_ichgtime(tp, ip, DFS_ICHG_MOD);
	else if (sa->valid & DFS_SET_MTIME)
		ip->i_mtime = sa->mtime;
	if (sa->valid & DFS_SET_CTIME)
		ip->i_ctime = sa->ctime;
	else
		dfs_trans_ichgtime(tp, ip, DFS_ICHG_CHG);
	error = dfs_trans_log_inode(tp, ip);
	if (error) {
		dfs_trans_cancel(tp);
		return error;
	}
	return dfs_trans_commit(tp, false);
}

int dfs_setattr(struct dfs_mount *mp, uint64_t ino, const struct dfs_setattr *sa,
		struct dfs_stat *st)
{
	struct dfs_inode *ip;
	bool iolocked = false;
	int error;

	pthread_mutex_lock(&mp->m_lock);
	error = dfs_iget(mp, NULL, ino, &ip);
	if (error)
		goto out_unlock;
	if (sa->valid & DFS_SET_SIZE) {
		dfs_ilock_io_mlocked(ip, true);
		iolocked = true;
	}
	if (mp->m_readonly && sa->valid) {
		error = -EROFS;
		goto out_rele;
	}
	if (sa->valid & DFS_SET_SIZE) {
		if (dfs_isdir(ip)) {
			error = -EISDIR;
			goto out_rele;
		}
		if (!dfs_isreg(ip)) {
			error = -EINVAL;
			goto out_rele;
		}
		if (sa->size > DFS_MAX_FILE_SIZE) {
			error = -EFBIG;
			goto out_rele;
		}
		dfs_wbext_wait(ip);
		error = dfs_file_setsize(ip, sa->size);
		if (error)
			goto out_rele;
	}
	if (sa->valid & ~DFS_SET_SIZE) {
		error = dfs_setattr_nonsize(ip, sa);
		if (error)
			goto out_rele;
	}
	if (st)
		dfs_fill_stat(ip, st);
out_rele:
	if (iolocked)
		dfs_iunlock_io(ip, true);
	dfs_irele(ip);
out_unlock:
	pthread_mutex_unlock(&mp->m_lock);
	return error;
}

int dfs_lookup(struct dfs_mount *mp, uint64_t dir, const char *name, struct dfs_stat *st)
{
	struct dfs_inode *dp, *ip;
	uint64_t ino;
	int error;

	pthread_mutex_lock(&mp->m_lock);
	error = dfs_iget_dir(mp, dir, &dp);
	if (error)
		goto out_unlock;
	error = dfs_dir_lookup(NULL, dp, name, strlen(name), &ino);
	if (!error) {
		error = dfs_iget(mp, NULL, ino, &ip);
		if (error == -EINVAL || error == -ENOENT) {
			char why[96];

			snprintf(why, sizeof(why), "entry \"%.64s\" names free inode %" PRIu64,
				 name, ino);
			error = dfs_corrupt(mp, "directory inode", dir, why);
		}
	}
	if (!error) {
		ip->i_nlookup++;
		dfs_fill_stat(ip, st);
		dfs_irele(ip);
	}
	dfs_irele(dp);
out_unlock:
	pthread_mutex_unlock(&mp->m_lock);
	return error;
}

/*
 * The forget that drops the last reference of an unlinked inode frees it
 * (dfs_inactive), under its IO lock taken exclusively first, as 2.6.34's
 * xfs_inactive did: the "high-level locks" of seed 003's final iput. A
 * pager that releases a region from reclaim (policy writepages) makes
 * this reclaim's work, which lib/lockdep.h reports.
 */
void dfs_forget(struct dfs_mount *mp, uint64_t ino, uint64_t nlookup)
{
	struct dfs_inode *ip;
	bool iolocked = false;

	pthread_mutex_lock(&mp->m_lock);
	if (dfs_iget(mp, NULL, ino, &ip))
		goto out_unlock;
	if (ip->i_nlink == 0 && nlookup >= ip->i_nlookup && ip->i_count == 1 &&
	    !ip->i_iolock_inactive) {
		dfs_ilock_io_mlocked(ip, true);
		/* inactivation clears it when it releases the lock */
		iolocked = true;
		ip->i_iolock_inactive = &iolocked;
	}
	dfs_iforget(ip, nlookup);
	dfs_irele(ip);
	if (iolocked) {
		/* Not the last reference after all (one was taken while m_lock
		 * was dropped), so ip lives on. */
		ip->i_iolock_inactive = NULL;
		dfs_iunlock_io(ip, true);
	}
out_unlock:
	pthread_mutex_unlock(&mp->m_lock);
}

/* Name checks for a new entry: "." and ".." exist already. */
static int dfs_newname_check(const char *name, size_t *lenp)
{
	size_t len = strlen(name);

	if (dfs_name_is_dot(name) || dfs_name_is_dotdot(name))
		return -EEXIST;
	*lenp = len;
	return dfs_dir_namecheck(name, len);
}

/*
 * Create an inode of mode and name it in dir (xfs_create, xfs_symlink): the
 * new inode, its directory initialisation or symlink target, the entry and
 * the parent's times, all in one transaction.
 */
static int dfs_create(struct dfs_mount *mp, uint64_t dir, const char *name, uint32_t mode,
		      uint32_t rdev, const struct dfs_cred *cr, const char *target,
		      struct dfs_stat *st)
{
	struct dfs_inode *dp, *ip = NULL;
	struct dfs_trans *tp;
	uint32_t uid = cr ? cr->uid : 0, gid = cr ? cr->gid : 0, res;
	size_t len, tlen = target ? strlen(target) : 0;
	bool isdir = S_ISDIR(mode);
	uint64_t ino;
	int error;

	error = dfs_newname_check(name, &len);
	if (error)
		return error;
	if (target && tlen == 0)
		return -ENOENT;
	if (target && tlen >= DFS_MAXPATHLEN)
		return -ENAMETOOLONG;
	pthread_mutex_lock(&mp->m_lock);
	if (mp->m_readonly) {
		error = -EROFS;
		goto out_unlock;
	}
	error = dfs_iget_dir(mp, dir, &dp);
	if (error)
		goto out_unlock;
	if (dp->i_nlink == 0) {
		error = -ENOENT;	/* removed while we looked at it */
		goto out_rele_dp;
	}
	if (isdir && dp->i_nlink >= DFS_MAXLINK) {
		error = -EMLINK;
		goto out_rele_dp;
	}
	error = dfs_dir_lookup(NULL, dp, name, len, &ino);
	if (error != -ENOENT) {
		if (!error)
			error = -EEXIST;
		goto out_rele_dp;
	}
	/* BSD group semantics for setgid directories, as the kernel's
	 * inode_init_owner */
	if (dp->i_mode & S_ISGID) {
		gid = dp->i_gid;
		if (isdir)
			mode |= S_ISGID;
	}
	res = dfs_ialloc_space_res(mp) + dfs_dir_space_res(mp);
	if (target)
		res += dfs_symlink_space_res(mp, tlen);
	error = dfs_trans_alloc(mp, res, &tp);
	if (error)
		goto out_rele_dp;
	error = dfs_icreate(tp, dp, mode, isdir ? 2 : 1, rdev, uid, gid, &ip);
	if (error)
		goto out_cancel;
	if (isdir) {
		error = dfs_dir_init(tp, ip, dp->i_ino);
		if (!error)
			error = dfs_bumplink(tp, dp);
	} else if (target) {
		error = dfs_symlink_write(tp, ip, target, tlen);
	}
	if (!error)
		error = dfs_dir_createname(tp, dp, name, len, ip->i_ino, dfs_dir_ftype(mode));
	if (error)
		goto out_cancel;
	dfs_trans_ichgtime(tp, dp, DFS_ICHG_MOD | DFS_ICHG_CHG);
	error = dfs_trans_log_inode(tp, dp);
	if (error)
		goto out_cancel;
	error = dfs_trans_commit(tp, false);
	if (!error) {
		ip->i_nlookup++;
		dfs_fill_stat(ip, st);
	}
	goto out_rele;
out_cancel:
	dfs_trans_cancel(tp);
out_rele:
	if (ip)
		dfs_irele(ip);
out_rele_dp:
	dfs_irele(dp);
out_unlock:
	pthread_mutex_unlock(&mp->m_lock);
	return error;
}

int dfs_mknod(struct dfs_mount *mp, uint64_t dir, const char *name, uint32_t mode,
	      uint32_t rdev, const struct dfs_cred *cr, struct dfs_stat *st)
{
	switch (mode & S_IFMT) {
	case 0:
		mode |= S_IFREG;
		/* fall through */
	case S_IFREG:
	case S_IFIFO:
	case S_IFSOCK:
		rdev = 0;
		break;
	case S_IFCHR:
	case S_IFBLK:
		break;
	case S_IFDIR:
		return -EPERM;
	default:
		return -EINVAL;
	}
	return dfs_create(mp, dir, name, mode & (S_IFMT | 07777), rdev, cr, NULL, st);
}

int dfs_mkdir(struct dfs_mount *mp, uint64_t dir, const char *name, uint32_t mode,
	      const struct dfs_cred *cr, struct dfs_stat *st)
{
	return dfs_create(mp, dir, name, S_IFDIR | (mode & 07777), 0, cr, NULL, st);
}

int dfs_symlink(struct dfs_mount *mp, uint64_t dir, const char *name, const char *target,
		const struct dfs_cred *cr, struct dfs_stat *st)
{
	return dfs_create(mp, dir, name, S_IFLNK | 0777, 0, cr, target, st);
}

ssize_t dfs_readlink(struct dfs_mount *mp, uint64_t ino, char *buf, size_t size)
{
	struct dfs_inode *ip;
	ssize_t ret;

	pthread_mutex_lock(&mp->m_lock);
	ret = dfs_iget(mp, NULL, ino, &ip);
	if (ret)
		goto out_unlock;
	if (!dfs_islnk(ip))
		ret = -EINVAL;
	else
		ret = dfs_symlink_read(ip, buf, size);
	if (ret >= 0 && (size_t)ret < size)
		buf[ret] = '\0';
	dfs_irele(ip);
out_unlock:
	pthread_mutex_unlock(&mp->m_lock);
	return ret;
}

int dfs_link(struct dfs_mount *mp, uint64_t ino, uint64_t newdir, const char *newname,
	     struct dfs_stat *st)
{
	struct dfs_inode *ip, *dp;
	struct dfs_trans *tp;
	uint64_t existing;
	size_t len;
	int error;

	error = dfs_newname_check(newname, &len);
	if (error)
		return error;
	pthread_mutex_lock(&mp->m_lock);
	if (mp->m_readonly) {
		error = -EROFS;
		goto out_unlock;
	}
	error = dfs_iget(mp, NULL, ino, &ip);
	if (error)
		goto out_unlock;
	error = dfs_iget_dir(mp, newdir, &dp);
	if (error)
		goto out_rele_ip;
	if (dfs_isdir(ip))
		error = -EPERM;
	else if (ip->i_nlink == 0 || dp->i_nlink == 0)
		error = -ENOENT;
	else if (ip->i_nlink >= DFS_MAXLINK)
		error = -EMLINK;
	if (error)
		goto out_rele;
	error = dfs_dir_lookup(NULL, dp, newname, len, &existing);
	if (error != -ENOENT) {
		if (!error)
			error = -EEXIST;
		goto out_rele;
	}
	error = dfs_trans_alloc(mp, dfs_dir_space_res(mp), &tp);
	if (error)
		goto out_rele;
	error = dfs_dir_createname(tp, dp, newname, len, ip->i_ino, dfs_dir_ftype(ip->i_mode));
	if (!error)
		error = dfs_bumplink(tp, ip);
	if (!error) {
		dfs_trans_ichgtime(tp, dp, DFS_ICHG_MOD | DFS_ICHG_CHG);
		error = dfs_trans_log_inode(tp, dp);
	}
	if (error) {
		dfs_trans_cancel(tp);
		goto out_rele;
	}
	error = dfs_trans_commit(tp, false);
	if (!error) {
		ip->i_nlookup++;
		dfs_fill_stat(ip, st);
	}
out_rele:
	dfs_irele(dp);
out_rele_ip:
	dfs_irele(ip);
out_unlock:
	pthread_mutex_unlock(&mp->m_lock);
	return error;
}

/* unlink and rmdir (xfs_remove). */
static int dfs_remove(struct dfs_mount *mp, uint64_t dir, const char *name, bool rmdir)
{
	struct dfs_inode *dp, *ip;
	struct dfs_trans *tp;
	size_t len = strlen(name);
	uint64_t ino;
	int error;

	if (dfs_name_is_dot(name))
		return rmdir ? -EINVAL : -EISDIR;
	if (dfs_name_is_dotdot(name))
		return rmdir ? -ENOTEMPTY : -EISDIR;
	if (len > DFS_MAXNAMELEN)
		return -ENAMETOOLONG;
	pthread_mutex_lock(&mp->m_lock);
	if (mp->m_readonly) {
		error = -EROFS;
		goto out_unlock;
	}
	error = dfs_iget_dir(mp, dir, &dp);
	if (error)
		goto out_unlock;
	error = dfs_dir_lookup(NULL, dp, name, len, &ino);
	if (error)
		goto out_rele_dp;
	error = dfs_iget(mp, NULL, ino, &ip);
	if (error)
		goto out_rele_dp;
	if (rmdir && !dfs_isdir(ip))
		error = -ENOTDIR;
	else if (!rmdir && dfs_isdir(ip))
		error = -EISDIR;
	else if (rmdir) {
		error = dfs_dir_isempty(ip);
		error = error < 0 ? error : error ? 0 : -ENOTEMPTY;
		if (!error && ip->i_nlink != 2)
			error = dfs_corrupt(mp, "directory inode", ip->i_ino,
					    "empty directory without two links");
	}
	if (error)
		goto out_rele;
	error = dfs_trans_alloc(mp, dfs_dir_space_res(mp), &tp);
	if (error)
		goto out_rele;
	error = dfs_dir_removename(tp, dp, name, len);
	if (!error && rmdir) {
		/* the victim's "." and "..": it and its parent lose a link */
		error = dfs_droplink(tp, ip);
		if (!error)
			error = dfs_droplink(tp, dp);
	}
	if (!error)
		error = dfs_droplink(tp, ip);
	if (!error) {
		dfs_trans_ichgtime(tp, dp, DFS_ICHG_MOD | DFS_ICHG_CHG);
		error = dfs_trans_log_inode(tp, dp);
	}
	if (error) {
		dfs_trans_cancel(tp);
		goto out_rele;
	}
	error = dfs_trans_commit(tp, false);
out_rele:
	dfs_irele(ip);
out_rele_dp:
	dfs_irele(dp);
out_unlock:
	pthread_mutex_unlock(&mp->m_lock);
	return error;
}

int dfs_unlink(struct dfs_mount *mp, uint64_t dir, const char *name)
{
	return dfs_remove(mp, dir, name, false);
}

int dfs_rmdir(struct dfs_mount *mp, uint64_t dir, const char *name)
{
	return dfs_remove(mp, dir, name, true);
}

/* Is dir ino inside the subtree of directory anc (or anc itself)? Walks
 * ".." up to the root, as the kernel's lock_rename/d_ancestor check. */
static int dfs_is_ancestor(struct dfs_mount *mp, uint64_t anc, uint64_t ino)
{
	uint64_t steps = 0, parent;
	struct dfs_inode *ip;
	int error;

	for (;;) {
		if (ino == anc)
			return 1;
		if (ino == mp->m_sb.rootino)
			return 0;
		if (++steps > mp->m_icount + 1)
			return dfs_corrupt(mp, "directory inode", ino, "\"..\" chain has a cycle");
		error = dfs_iget_dir(mp, ino, &ip);
		if (error)
			return error == -ENOTDIR ? -EFSCORRUPTED : error;
		error = dfs_dir_lookup(NULL, ip, "..", 2, &parent);
		dfs_irele(ip);
		if (error)
			return error;
		ino = parent;
	}
}

struct dfs_rename_ctx {
	struct dfs_inode *odp, *ndp, *sip, *tip;
	const char *oldname, *newname;
	size_t oldlen, newlen;
	bool sdir, tdir;
};

static int dfs_rename_exchange(struct dfs_trans *tp, struct dfs_rename_ctx *rc)
{
	struct dfs_inode *odp = rc->odp, *ndp = rc->ndp, *sip = rc->sip, *tip = rc->tip;
	int error;

	error = dfs_dir_replace(tp, ndp, rc->newname, rc->newlen, sip->i_ino,
				dfs_dir_ftype(sip->i_mode));
	if (!error)
		error = dfs_dir_replace(tp, odp, rc->oldname, rc->oldlen, tip->i_ino,
					dfs_dir_ftype(tip->i_mode));
	if (error || odp == ndp)
		return error;
	if (rc->sdir)
		error = dfs_dir_replace(tp, sip, "..", 2, ndp->i_ino, 0);
	if (!error && rc->tdir)
		error = dfs_dir_replace(tp, tip, "..", 2, odp->i_ino, 0);
	if (!error && rc->sdir && !rc->tdir) {
		error = dfs_droplink(tp, odp);
		if (!error)
			error = dfs_bumplink(tp, ndp);
	} else if (!error && !rc->sdir && rc->tdir) {
		error = dfs_droplink(tp, ndp);
		if (!error)
			error = dfs_bumplink(tp, odp);
	}
	return error;
}

/* The new name first, then the old one goes: a transaction never reuses a
 * block it freed. */
static int dfs_rename_move(struct dfs_trans *tp, struct dfs_rename_ctx *rc)
{
	struct dfs_inode *odp = rc->odp, *ndp = rc->ndp, *sip = rc->sip, *tip = rc->tip;
	int error;

	if (tip) {
		error = dfs_dir_replace(tp, ndp, rc->newname, rc->newlen, sip->i_ino,
					dfs_dir_ftype(sip->i_mode));
		if (!error && rc->tdir) {
			/* the victim's "." and its ".." in ndp */
			error = dfs_droplink(tp, tip);
			if (!error)
				error = dfs_droplink(tp, ndp);
		}
		if (!error)
			error = dfs_droplink(tp, tip);
	} else {
		error = dfs_dir_createname(tp, ndp, rc->newname, rc->newlen, sip->i_ino,
					   dfs_dir_ftype(sip->i_mode));
	}
	if (!error)
		error = dfs_dir_removename(tp, odp, rc->oldname, rc->oldlen);
	if (!error && rc->sdir && odp != ndp) {
		error = dfs_dir_replace(tp, sip, "..", 2, ndp->i_ino, 0);
		if (!error)
			error = dfs_droplink(tp, odp);
		if (!error)
			error = dfs_bumplink(tp, ndp);
	}
	return error;
}

/* Everything the kernel's do_renameat2, vfs_rename and xfs_rename refuse,
 * in their order, before any change. */
static int dfs_rename_check(struct dfs_mount *mp, struct dfs_rename_ctx *rc, unsigned flags)
{
	bool exchange = flags & DFS_RENAME_EXCHANGE;
	int error;

	if (exchange && !rc->tip)
		return -ENOENT;
	if ((flags & DFS_RENAME_NOREPLACE) && rc->tip)
		return -EEXIST;
	if (rc->odp != rc->ndp) {
		/* the source must not be an ancestor of the target ... */
		if (rc->sdir) {
			error = dfs_is_ancestor(mp, rc->sip->i_ino, rc->ndp->i_ino);
			if (error)
				return error < 0 ? error : -EINVAL;
		}
		/* ... nor the target of the source */
		if (rc->tdir) {
			error = dfs_is_ancestor(mp, rc->tip->i_ino, rc->odp->i_ino);
			if (error)
				return error < 0 ? error : exchange ? -EINVAL : -ENOTEMPTY;
		}
	}
	if (rc->odp->i_nlink == 0 || rc->ndp->i_nlink == 0)
		return -ENOENT;
	if (!exchange && rc->tip) {
		if (rc->sdir && !rc->tdir)
			return -ENOTDIR;
		if (!rc->sdir && rc->tdir)
			return -EISDIR;
		if (rc->tdir) {
			error = dfs_dir_isempty(rc->tip);
			if (error <= 0)
				return error ? error : -ENOTEMPTY;
		}
	}
	if (rc->odp != rc->ndp) {
		if (rc->sdir && !rc->tdir && rc->ndp->i_nlink >= DFS_MAXLINK)
			return -EMLINK;
		if (exchange && rc->tdir && !rc->sdir && rc->odp->i_nlink >= DFS_MAXLINK)
			return -EMLINK;
	}
	return 0;
}

int dfs_rename(struct dfs_mount *mp, uint64_t olddir, const char *oldname,
	       uint64_t newdir, const char *newname, unsigned flags)
{
	struct dfs_rename_ctx rc = { .oldname = oldname, .newname = newname };
	struct dfs_trans *tp;
	uint64_t sino, tino;
	int error;

	if (flags & ~(DFS_RENAME_NOREPLACE | DFS_RENAME_EXCHANGE) ||
	    flags == (DFS_RENAME_NOREPLACE | DFS_RENAME_EXCHANGE))
		return -EINVAL;
	if (dfs_name_is_dot(oldname) || dfs_name_is_dotdot(oldname))
		return -EBUSY;
	if (dfs_name_is_dot(newname) || dfs_name_is_dotdot(newname))
		return (flags & DFS_RENAME_NOREPLACE) ? -EEXIST : -EBUSY;
	rc.oldlen = strlen(oldname);
	rc.newlen = strlen(newname);
	error = dfs_dir_namecheck(newname, rc.newlen);
	if (error)
		return error;
	if (rc.oldlen > DFS_MAXNAMELEN)
		return -ENAMETOOLONG;

	pthread_mutex_lock(&mp->m_lock);
	if (mp->m_readonly) {
		error = -EROFS;
		goto out_unlock;
	}
	error = dfs_iget_dir(mp, olddir, &rc.odp);
	if (error)
		goto out_unlock;
	error = dfs_iget_dir(mp, newdir, &rc.ndp);
	if (error)
		goto out_rele;
	error = dfs_dir_lookup(NULL, rc.odp, oldname, rc.oldlen, &sino);
	if (!error)
		error = dfs_iget(mp, NULL, sino, &rc.sip);
	if (error)
		goto out_rele;
	error = dfs_dir_lookup(NULL, rc.ndp, newname, rc.newlen, &tino);
	if (!error)
		error = dfs_iget(mp, NULL, tino, &rc.tip);
	else if (error == -ENOENT)
		error = 0;
	if (error)
		goto out_rele;
	rc.sdir = dfs_isdir(rc.sip);
	rc.tdir = rc.tip && dfs_isdir(rc.tip);
	if (rc.tip == rc.sip) {
		/* two names of one inode: POSIX says do nothing */
		if (flags & DFS_RENAME_NOREPLACE)
			error = -EEXIST;
		goto out_rele;
	}
	error = dfs_rename_check(mp, &rc, flags);
	if (error)
		goto out_rele;
	error = dfs_trans_alloc(mp, 2 * dfs_dir_space_res(mp), &tp);
	if (error)
		goto out_rele;
	if (flags & DFS_RENAME_EXCHANGE)
		error = dfs_rename_exchange(tp, &rc);
	else
		error = dfs_rename_move(tp, &rc);
	if (!error) {
		dfs_trans_ichgtime(tp, rc.sip, DFS_ICHG_CHG);
		error = dfs_trans_log_inode(tp, rc.sip);
	}
	if (!error && rc.tip && rc.tip->i_nlink) {
		dfs_trans_ichgtime(tp, rc.tip, DFS_ICHG_CHG);
		error = dfs_trans_log_inode(tp, rc.tip);
	}
	if (!error) {
		dfs_trans_ichgtime(tp, rc.odp, DFS_ICHG_MOD | DFS_ICHG_CHG);
		error = dfs_trans_log_inode(tp, rc.odp);
	}
	if (!error && rc.ndp != rc.odp) {
		dfs_trans_ichgtime(tp, rc.ndp, DFS_ICHG_MOD | DFS_ICHG_CHG);
		error = dfs_trans_log_inode(tp, rc.ndp);
	}
	if (error) {
		dfs_trans_cancel(tp);
		goto out_rele;
	}
	error = dfs_trans_commit(tp, false);
out_rele:
	if (rc.tip)
		dfs_irele(rc.tip);
	if (rc.sip)
		dfs_irele(rc.sip);
	if (rc.ndp)
		dfs_irele(rc.ndp);
	dfs_irele(rc.odp);
out_unlock:
	pthread_mutex_unlock(&mp->m_lock);
	return error;
}

int dfs_readdir(struct dfs_mount *mp, uint64_t dir, uint64_t cookie, dfs_filldir_t fill,
		void *ctx)
{
	struct dfs_inode *dp;
	int error;

	pthread_mutex_lock(&mp->m_lock);
	error = dfs_iget_dir(mp, dir, &dp);
	if (!error) {
		error = dfs_dir_iterate(NULL, dp, cookie, fill, ctx);
		dfs_irele(dp);
	}
	pthread_mutex_unlock(&mp->m_lock);
	return error;
}
