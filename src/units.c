/* units.c - counts and sizes as a user reads them. */
#include <stdio.h>
#include "units.h"
#include "util.h"

char *
units_bytes(double b, char *buf, size_t len)
{
	static const char *const unit[] = { "B", "kB", "MB", "GB", "TB", "PB" };
	int i = 0;

	while (b >= 999.95 && i < 5) {
		b /= 1000;
		i++;
	}
	/* Three significant digits at most: 1.23 GB, 12.3 MB, 123 kB. */
	snprintf(buf, len, i == 0 || b >= 99.95 ? "%.0f %s" : b >= 9.995 ? "%.1f %s" : "%.2f %s",
	    b, unit[i]);
	return buf;
}

char *
units_count_size(long n, const char *one, int64_t bytes)
{
	char size[32];

	return xasprintf("%ld %s%s, %s", n, one, n == 1 ? "" : "s",
	    units_bytes((double)bytes, size, sizeof(size)));
}
