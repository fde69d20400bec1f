/* units.h - counts and sizes as a user reads them. */
#ifndef THLHP_UNITS_H
#define THLHP_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* bytes in the unit that keeps 1-3 digits before the point, decimal as
 * disks are sold: "512 B", "12.3 kB", "1.2 MB", "3.45 GB".  Returns buf. */
char *units_bytes(double bytes, char *buf, size_t len);
/* "1 instance, 512 B" / "120 instances, 61.4 MB" (malloc'd): what a job
 * made, for its summary. */
char *units_count_size(long n, const char *one, int64_t bytes);

/* "30s", "90m", "48h", "2d" or "0", in seconds; -1 when it is none of
 * those (a number without its unit) or past a year. */
long units_duration(const char *s);

#endif
