/* tap.c: the TAP helpers of the C test programs (tap.h). */
#include "tap.h"
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int tests_run;
int tests_failed;

static void vreport(bool pass, const char *fmt, va_list ap)
{
	g_autofree char *what = g_strdup_vprintf(fmt, ap);

	tests_run++;
	if (!pass)
		tests_failed++;
	printf("%sok %d - %s\n", pass ? "" : "not ", tests_run, what);
	fflush(stdout);
}

bool ok(bool cond, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(cond, fmt, ap);
	va_end(ap);
	return cond;
}

bool ok_r(long r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(r >= 0, fmt, ap);
	va_end(ap);
	if (r < 0)
		printf("#   failed with %s: %s\n", ep_errno_name((int)-r), ep_error_message());
	ep_error_clear();
	return r >= 0;
}

static bool vis_err(long r, int err, int err2, const char *fmt, va_list ap)
{
	bool pass = (r == -err || (err2 && r == -err2)) && ep_error_message()[0] != '\0';

	vreport(pass, fmt, ap);
	if (!pass)
		printf("#   expected %s%s%s with a message, got %s: '%s'\n", ep_errno_name(err),
		       err2 ? " or " : "", err2 ? ep_errno_name(err2) : "",
		       r < 0 ? ep_errno_name((int)-r) : "success", ep_error_message());
	else
		printf("#   %s: %s\n", ep_errno_name((int)-r), ep_error_message());
	ep_error_clear();
	return pass;
}

bool is_err(long r, int err, const char *fmt, ...)
{
	va_list ap;
	bool pass;

	va_start(ap, fmt);
	pass = vis_err(r, err, 0, fmt, ap);
	va_end(ap);
	return pass;
}

bool is_err2(long r, int err, int err2, const char *fmt, ...)
{
	va_list ap;
	bool pass;

	va_start(ap, fmt);
	pass = vis_err(r, err, err2, fmt, ap);
	va_end(ap);
	return pass;
}

bool message_has(const char *needle)
{
	bool has = strstr(ep_error_message(), needle) != NULL;

	if (!has)
		printf("#   message '%s' does not name '%s'\n", ep_error_message(), needle);
	return has;
}

void diag(const char *fmt, ...)
{
	g_autofree char *s = NULL;
	va_list ap;

	va_start(ap, fmt);
	s = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	printf("# %s\n", s);
}

bool contains(GPtrArray *strings, const char *s)
{
	for (guint i = 0; i < strings->len; i++)
		if (strcmp(strings->pdata[i], s) == 0)
			return true;
	return false;
}

int tap_done(void)
{
	printf("1..%d\n", tests_run);
	if (tests_failed)
		printf("# %d of %d tests failed\n", tests_failed, tests_run);
	return tests_failed ? 1 : 0;
}
