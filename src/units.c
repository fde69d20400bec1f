/* units.c - counts and sizes as a user reads them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
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

long
units_duration(const char *s)
{
	static const struct { char unit; long sec; } units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 },
	};
	char *end;
	long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || (end[0] && end[1]))
		return -1;
	/* A bare number says no unit: only 0 means the same in every one. */
	if (!*end)
		return v == 0 ? 0 : -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (*end == units[i].unit)
			return v <= 366L * 86400 / units[i].sec ? v * units[i].sec : -1;
	return -1;
}
