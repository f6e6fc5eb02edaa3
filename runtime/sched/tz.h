/*
 * tz - IANA time zones read from TZif files (RFC 8536), for the scheduler.
 *
 * A zone is loaded once from $TZDIR/<name> (default /usr/share/zoneinfo)
 * and is immutable afterwards: any number of threads may query it. The
 * library keeps no other state; it never logs, and errors come back as a
 * negative errno plus a one-line reason in the caller's buffer.
 *
 * What is read: TZif versions 1 to 4. With version 2 and later the 64-bit
 * block is used and the footer's POSIX TZ string ("CET-1CEST,M3.5.0,M10.5.0/3")
 * gives the offset after the last stored transition: rules Jn, n and Mm.w.d,
 * rule times with a sign and hours up to 167 (RFC 8536 3.3.1), "all year
 * DST". Before the first transition local time type 0 applies. Files with
 * leap-second records ("right/...") are refused: their times are not unix
 * times.
 */
#ifndef NOVA_RUNTIME_SCHED_TZ_H
#define NOVA_RUNTIME_SCHED_TZ_H

#include <stddef.h>
#include <stdint.h>

/* Where zone files are read from when $TZDIR is not set. */
#define NOVA__TZ_DEFAULT_DIR "/usr/share/zoneinfo"

/* A loaded zone; immutable after load, safe to share. */
struct nova__tz;

/*
 * name: an IANA name ("Europe/Paris", "America/New_York"), or NULL, "",
 * "UTC" or "Etc/UTC" for UTC (built in: no file is read). Other names are
 * read from $TZDIR/<name>. Refused: absolute names, any ".." component,
 * characters outside A-Z a-z 0-9 / _ + - . and names over 255 bytes.
 * Returns 0, -EINVAL (bad name, not a usable TZif file), -ENOENT (no such
 * zone), -ENOMEM or another -errno from reading the file.
 */
int nova__tz_load(const char *name, struct nova__tz **out, char *err, size_t errlen);
void nova__tz_free(struct nova__tz *tz);

/* The name it was loaded with ("UTC" for NULL and ""). */
const char *nova__tz_name(const struct nova__tz *tz);

/* Offset in seconds east of UTC in force at UTC instant t (unix seconds). */
int32_t nova__tz_offset_at(const struct nova__tz *tz, int64_t t);

/* The first instant strictly after t (unix seconds) at which the offset
 * changes, or INT64_MAX when it never changes again. Transitions that only
 * rename the zone or flip its DST flag without changing the offset are not
 * reported. */
int64_t nova__tz_next_change(const struct nova__tz *tz, int64_t t);

/* Calendar helpers (proleptic Gregorian, days counted from 1970-01-01). */
int64_t nova__tz_days_from_civil(int64_t y, int m, int d); /* m 1-12, d 1-31 */
void nova__tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d);
int nova__tz_weekday(int64_t days);               /* 0 = Sunday .. 6 = Saturday */
int64_t nova__tz_floor_div(int64_t a, int64_t b); /* rounds toward minus infinity */

#endif
