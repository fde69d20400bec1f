/*
 * rmtree.h - for the unit tests: remove a temporary folder and all it
 * holds, without following links.  Header-only: each test is one program.
 */
#ifndef THLHP_TEST_RMTREE_H
#define THLHP_TEST_RMTREE_H

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

static int
rmtree_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Remove dir and everything under it; -1 if something stayed. */
static inline int
rmtree(const char *dir)
{
	return nftw(dir, rmtree_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
