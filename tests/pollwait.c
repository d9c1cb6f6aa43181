/* pollwait: wait with poll(2) until a file's content contains a pattern.
 *
 *   pollwait FILE PATTERN TIMEOUT_SECONDS
 *
 * Reads FILE from the start; while PATTERN is not in it, polls the open file
 * and reads it again from the start when poll says it changed.  Exits 0 when
 * found, 1 on timeout, 2 on errors.  Prints how many wake-ups it took. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int contains(int fd, const char *pattern)
{
	static char buf[1 << 20];
	ssize_t n, len = 0;

	if (lseek(fd, 0, SEEK_SET) < 0)
		return -1;
	while ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += n;
	if (n < 0)
		return -1;
	buf[len] = '\0';
	return strstr(buf, pattern) != NULL;
}

int main(int argc, char **argv)
{
	double deadline;
	int fd, wakeups = 0, c;

	if (argc != 4) {
		fprintf(stderr, "usage: pollwait FILE PATTERN TIMEOUT_SECONDS\n");
		return 2;
	}
	deadline = now() + atof(argv[3]);
	fd = open(argv[1], O_RDONLY);
	if (fd < 0) {
		perror(argv[1]);
		return 2;
	}
	while ((c = contains(fd, argv[2])) == 0) {
		struct pollfd p = { .fd = fd, .events = POLLIN | POLLPRI };
		int left = (int)((deadline - now()) * 1000);

		if (left <= 0) {
			printf("timeout after %d wake-ups\n", wakeups);
			return 1;
		}
		if (poll(&p, 1, left) < 0 && errno != EINTR) {
			perror("poll");
			return 2;
		}
		wakeups++;
	}
	if (c < 0) {
		perror(argv[1]);
		return 2;
	}
	printf("found after %d wake-ups\n", wakeups);
	return 0;
}
