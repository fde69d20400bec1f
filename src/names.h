/* names.h - PatientIDs as file names, and archive names. */
#ifndef THLHP_NAMES_H
#define THLHP_NAMES_H

/* Encode a PatientID as one safe path component: bytes outside
 * [A-Za-z0-9._-] and a leading '.' become %XX; "" becomes "%00".
 * So ".", ".." and "" never result, and no name starts with '.'. */
char *name_encode(const char *id);
/* 1 if name_encode(id) and an archive name made of it fit a file name. */
int name_fits(const char *id);
/* Reverse of name_encode; NULL when s is not an encoding. */
char *name_decode(const char *s);
/* "<encoded id><delim><n>.zip" */
char *archive_name(const char *id, const char *delim, int n);
/* If file (a base name) is an archive name of the form above, return the
 * decoded PatientID and set *n; else NULL. */
char *archive_parse(const char *file, const char *delim, int *n);
/* A UID (or any value) safe as a path component: 1-64 chars of
 * [A-Za-z0-9._-], not "." or "..".  Returns 1 if safe. */
int uid_is_safe(const char *uid);

#endif
