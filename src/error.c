/* error.c: the thread-local error message and errno names. */
#include "error.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>

static __thread char error_message[1024];

int ep_errorf(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(error_message, sizeof(error_message), fmt, ap);
	va_end(ap);
	return -err;
}

const char *ep_error_message(void)
{
	return error_message;
}

void ep_error_clear(void)
{
	error_message[0] = '\0';
}

const char *ep_errno_name(int err)
{
	static __thread char unknown[16];

	switch (err) {
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EIO: return "EIO";
	case E2BIG: return "E2BIG";
	case EBADF: return "EBADF";
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	case EACCES: return "EACCES";
	case EBUSY: return "EBUSY";
	case EEXIST: return "EEXIST";
	case EXDEV: return "EXDEV";
	case ENOTDIR: return "ENOTDIR";
	case EISDIR: return "EISDIR";
	case EINVAL: return "EINVAL";
	case EFBIG: return "EFBIG";
	case ENOSPC: return "ENOSPC";
	case EROFS: return "EROFS";
	case ERANGE: return "ERANGE";
	case ENAMETOOLONG: return "ENAMETOOLONG";
	case ENOSYS: return "ENOSYS";
	case ENOTEMPTY: return "ENOTEMPTY";
	case ENOTSUP: return "ENOTSUP";
	case ETIMEDOUT: return "ETIMEDOUT";
	case ECONNREFUSED: return "ECONNREFUSED";
	case ENOTCONN: return "ENOTCONN";
	case ELOOP: return "ELOOP";
	case ECANCELED: return "ECANCELED";
	case ENODEV: return "ENODEV";
	}
	snprintf(unknown, sizeof(unknown), "E%d", err);
	return unknown;
}
