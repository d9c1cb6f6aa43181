/* filestore_sftp.c: the `sftp` file store backend, a directory on a storage
 * host reached over SSH with libssh2.
 *
 * A fixed pool of sessions, each a TCP socket, a LIBSSH2_SESSION in blocking
 * mode and two SFTP channels: libssh2's (files, directories, attributes, with
 * its read-ahead and write pipelining) and a raw one this file speaks itself,
 * for what libssh2 1.10 lacks or gets wrong: posix-rename@openssh.com (rename
 * over an existing file), lsetstat@openssh.com, and SYMLINK, READLINK and
 * REALPATH (libssh2 1.10 reads their status from the wrong offset).
 *
 * Every call has a deadline (the store's timeout), passed to libssh2 as the
 * session timeout before each blocking call, so nothing waits longer.  A
 * session that fails below SFTP (timeout, reset, EOF) is dropped at once and
 * reconnected by the next call that needs it; files open on it fail with EIO
 * from then on.  One session serves one thread at a time.  See
 * docs/filestore.md.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "filestore.h"

#include <errno.h>
#include <libssh2.h>
#include <libssh2_sftp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "error.h"

#define SFTP_DEFAULT_PORT 22
#define SFTP_DEFAULT_POOL 4
#define SFTP_MAX_POOL 64
/* after a failed connect, calls fail at once for this long instead of each waiting */
#define RECONNECT_DELAY_US (G_USEC_PER_SEC / 2)
#define NAME_BUF 4096
/* the largest packet the raw channel accepts (names and status messages only) */
#define RAW_MAX_PACKET (256 * 1024)

/* SFTP v3 packet types spoken on the raw channel */
enum {
	FXP_INIT = 1,
	FXP_VERSION = 2,
	FXP_REALPATH = 16,
	FXP_READLINK = 19,
	FXP_SYMLINK = 20,
	FXP_STATUS = 101,
	FXP_NAME = 104,
	FXP_EXTENDED = 200,
};

/* SFTP v3 attribute flags */
enum {
	ATTR_SIZE = 0x1,
	ATTR_UIDGID = 0x2,
	ATTR_PERMISSIONS = 0x4,
	ATTR_ACMODTIME = 0x8,
};

/* Every allocation libssh2 makes for a session, so that dropping a broken
 * session frees what libssh2 itself would leak (handles it could not close). */
struct block {
	_Alignas(max_align_t) struct block *prev;   /* keeps the payload aligned for anything */
	struct block *next;
};

struct sftp;

struct orphan {
	LIBSSH2_SFTP_HANDLE *handle;
	guint64 generation;
};

struct session {
	struct sftp *b;
	int index;
	bool busy;                  /* held by a thread; guarded by b->mutex */
	/* only the thread holding the session touches what follows */
	int sock;
	LIBSSH2_SESSION *ssh;
	LIBSSH2_SFTP *sftp;
	LIBSSH2_CHANNEL *raw;       /* the raw SFTP channel */
	uint32_t raw_id;            /* next request id on it */
	bool posix_rename;          /* the server has posix-rename@openssh.com */
	bool lsetstat;              /* ... lsetstat@openssh.com */
	bool openssh;               /* OpenSSH argument order for SYMLINK */
	char *root;                 /* the root, resolved on the server */
	struct block *blocks;
	/* guarded by b->mutex: */
	guint64 generation;         /* bumped whenever the connection is dropped */
	GList *files;               /* struct sftp_file open on this connection */
	GSList *orphans;            /* struct orphan: handles whose close could not wait */
};

struct sftp {
	struct filestore *fs;
	char *host;
	int port;
	char *user;
	char *key;
	char *public_key;
	char *known_hosts;
	char *root;                 /* as configured */
	bool check_symlinks;        /* confine=check: resolve paths before using them */
	GMutex mutex;
	GCond idle;                 /* a session was released */
	struct session *sessions;
	int n_sessions;
	int next;                   /* where the next search for an idle session starts */
	gint64 retry_after;         /* monotonic µs: no connects before this */
	int down_error;             /* errno of the last failed connect */
	char *down_message;
};

struct sftp_file {
	struct filestore_file base;
	struct session *s;
	char *path;                 /* for messages */
	/* guarded by b->mutex: */
	LIBSSH2_SFTP_HANDLE *h;     /* NULL once the connection was lost */
	guint64 generation;
};

/* One call: a session held until the deadline, and what to say on failure. */
struct call {
	struct sftp *b;
	struct session *s;
	gint64 deadline;            /* monotonic µs */
	const char *what;           /* "mkdir" */
	const char *path;           /* the store path, for messages */
	bool idempotent;            /* safe to send twice */
	bool reused;                /* the session was connected before this call */
	bool retry;                 /* the connection broke: try once more on a fresh one */
	int attempts;
};

static GOnce libssh2_once = G_ONCE_INIT;

static gpointer libssh2_setup(gpointer unused)
{
	(void)unused;
	return GINT_TO_POINTER(libssh2_init(0));
}

static struct sftp *backend(struct filestore *fs)
{
	return fs->priv;
}

/* ---- the per-session allocator ---- */

static void block_link(struct session *s, struct block *b)
{
	b->prev = NULL;
	b->next = s->blocks;
	if (s->blocks)
		s->blocks->prev = b;
	s->blocks = b;
}

static void block_unlink(struct session *s, struct block *b)
{
	if (b->prev)
		b->prev->next = b->next;
	else
		s->blocks = b->next;
	if (b->next)
		b->next->prev = b->prev;
}

static LIBSSH2_ALLOC_FUNC(block_alloc)
{
	struct session *s = *abstract;
	struct block *b = malloc(sizeof(*b) + count);

	if (!b)
		return NULL;
	block_link(s, b);
	return b + 1;
}

static LIBSSH2_FREE_FUNC(block_free)
{
	struct session *s = *abstract;
	struct block *b;

	if (!ptr)
		return;
	b = (struct block *)ptr - 1;
	block_unlink(s, b);
	free(b);
}

static LIBSSH2_REALLOC_FUNC(block_realloc)
{
	struct session *s = *abstract;
	struct block *b, *moved;

	if (!ptr)
		return block_alloc(count, abstract);
	b = (struct block *)ptr - 1;
	block_unlink(s, b);
	moved = realloc(b, sizeof(*b) + count);
	if (!moved) {
		block_link(s, b);
		return NULL;
	}
	block_link(s, moved);
	return moved + 1;
}

/* Free what libssh2 left allocated after its session was freed. */
static void blocks_free(struct session *s)
{
	while (s->blocks) {
		struct block *b = s->blocks;

		s->blocks = b->next;
		free(b);
	}
}

/* ---- time ---- */

/* Milliseconds left before the deadline (0 if none). */
static long remaining_ms(gint64 deadline)
{
	gint64 left = deadline - g_get_monotonic_time();

	return left <= 0 ? 0 : (long)((left + 999) / 1000);
}

/* Give libssh2 the time left for its next blocking call; -ETIMEDOUT if none. */
static int tick(struct call *c)
{
	long ms = remaining_ms(c->deadline);

	/* a failure while finding out about another one may have dropped the connection */
	if (!c->s->ssh)
		return ep_errorf(EIO, "%s %s: the connection to %s was lost", c->what, c->path, c->b->host);
	if (ms <= 0)
		return ep_errorf(ETIMEDOUT, "%s %s: no answer from %s within %d s", c->what, c->path,
		                 c->b->host, c->b->fs->timeout_ms / 1000);
	libssh2_session_set_timeout(c->s->ssh, ms);
	return 0;
}

/* ---- errors ---- */

static int fx_errno(unsigned long fx)
{
	switch (fx) {
	case LIBSSH2_FX_NO_SUCH_FILE:
	case LIBSSH2_FX_NO_SUCH_PATH:
		return ENOENT;
	case LIBSSH2_FX_PERMISSION_DENIED:
		return EACCES;
	case LIBSSH2_FX_BAD_MESSAGE:        /* OpenSSH: EINVAL and ENAMETOOLONG */
	case LIBSSH2_FX_UNKNOWN_PRINCIPAL:
	case LIBSSH2_FX_INVALID_FILENAME:
		return EINVAL;
	case LIBSSH2_FX_OP_UNSUPPORTED:
		return ENOTSUP;
	case LIBSSH2_FX_INVALID_HANDLE:
		return EBADF;
	case LIBSSH2_FX_FILE_ALREADY_EXISTS:
		return EEXIST;
	case LIBSSH2_FX_WRITE_PROTECT:
		return EROFS;
	case LIBSSH2_FX_NO_MEDIA:
		return ENODEV;
	case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM:
	case LIBSSH2_FX_QUOTA_EXCEEDED:
		return ENOSPC;
	case LIBSSH2_FX_LOCK_CONFLICT:
		return EBUSY;
	case LIBSSH2_FX_DIR_NOT_EMPTY:
		return ENOTEMPTY;
	case LIBSSH2_FX_NOT_A_DIRECTORY:
		return ENOTDIR;
	case LIBSSH2_FX_LINK_LOOP:
		return ELOOP;
	}
	return EIO;                         /* FAILURE, EOF, NO_CONNECTION, CONNECTION_LOST */
}

static const char *fx_name(unsigned long fx)
{
	static const char *const names[] = {
		"ok", "end of file", "no such file", "permission denied", "failure", "bad message",
		"no connection", "connection lost", "operation unsupported", "invalid handle",
		"no such path", "file already exists", "write protected", "no media",
		"no space on file system", "quota exceeded", "unknown principal", "lock conflict",
		"directory not empty", "not a directory", "invalid file name", "link loop",
	};

	return fx < G_N_ELEMENTS(names) ? names[fx] : "unknown SFTP status";
}

/* A refusal from the server: -errno for SFTP status fx. */
static int call_status(struct call *c, unsigned long fx)
{
	int err = fx_errno(fx);

	return ep_errorf(err, "%s %s: %s (SFTP: %s)", c->what, c->path, g_strerror(err), fx_name(fx));
}

/* A refusal known better than the server said it. */
static int call_refused(struct call *c, int err)
{
	return ep_errorf(err, "%s %s: %s", c->what, c->path, g_strerror(err));
}

static void session_drop(struct session *s);

/* The connection under the call broke: drop it; -ETIMEDOUT or -EIO. */
static int call_broken(struct call *c, int rc, const char *detail)
{
	char *message = NULL;
	bool timed_out = rc == LIBSSH2_ERROR_TIMEOUT || rc == LIBSSH2_ERROR_SOCKET_TIMEOUT;
	int err = timed_out ? ETIMEDOUT : EIO;
	int r;

	if (c->s->ssh && !detail)
		libssh2_session_last_error(c->s->ssh, &message, NULL, 0);
	r = ep_errorf(err, "%s %s: %s %s:%d: %s", c->what, c->path,
	              timed_out ? "no answer within the timeout from" : "lost the connection to",
	              c->b->host, c->b->port, detail ? detail : message ? message : "?");
	session_drop(c->s);
	/* a session that had sat idle may have died meanwhile; a timeout used the budget up */
	c->retry = c->idempotent && c->reused && !timed_out && c->attempts == 1;
	return r;
}

/* -errno for a failed libssh2 call returning rc. */
static int call_error(struct call *c, int rc)
{
	if (rc == LIBSSH2_ERROR_SFTP_PROTOCOL)
		return call_status(c, libssh2_sftp_last_error(c->s->sftp));
	return call_broken(c, rc, NULL);
}

/* The SFTP status behind a failed libssh2 call, or (unsigned long)-1 for other failures. */
static unsigned long fx_of(struct call *c, int rc)
{
	return rc == LIBSSH2_ERROR_SFTP_PROTOCOL ? libssh2_sftp_last_error(c->s->sftp) : (unsigned long)-1;
}

/* ---- the raw SFTP channel ---- */

static void put_u32(GByteArray *p, uint32_t v)
{
	guint8 b[4] = { (guint8)(v >> 24), (guint8)(v >> 16), (guint8)(v >> 8), (guint8)v };

	g_byte_array_append(p, b, 4);
}

static void put_u64(GByteArray *p, uint64_t v)
{
	put_u32(p, (uint32_t)(v >> 32));
	put_u32(p, (uint32_t)v);
}

static void put_string(GByteArray *p, const char *s)
{
	size_t len = strlen(s);

	put_u32(p, (uint32_t)len);
	g_byte_array_append(p, (const guint8 *)s, (guint)len);
}

static void put_attrs(GByteArray *p, const LIBSSH2_SFTP_ATTRIBUTES *a)
{
	put_u32(p, (uint32_t)a->flags);
	if (a->flags & ATTR_SIZE)
		put_u64(p, a->filesize);
	if (a->flags & ATTR_UIDGID) {
		put_u32(p, (uint32_t)a->uid);
		put_u32(p, (uint32_t)a->gid);
	}
	if (a->flags & ATTR_PERMISSIONS)
		put_u32(p, (uint32_t)a->permissions);
	if (a->flags & ATTR_ACMODTIME) {
		put_u32(p, (uint32_t)a->atime);
		put_u32(p, (uint32_t)a->mtime);
	}
}

/* A reply being parsed. */
struct reader {
	const guint8 *p, *end;
};

static bool get_u32(struct reader *r, uint32_t *v)
{
	if (r->end - r->p < 4)
		return false;
	*v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
	r->p += 4;
	return true;
}

static bool get_string(struct reader *r, const char **s, uint32_t *len)
{
	if (!get_u32(r, len) || (size_t)(r->end - r->p) < *len)
		return false;
	*s = (const char *)r->p;
	r->p += *len;
	return true;
}

/* Write all of buf on the raw channel. */
static int raw_write(struct call *c, const guint8 *buf, size_t len)
{
	while (len > 0) {
		ssize_t n;
		int r = tick(c);

		if (r < 0)
			return call_broken(c, LIBSSH2_ERROR_TIMEOUT, "timed out");
		n = libssh2_channel_write(c->s->raw, (const char *)buf, len);
		if (n < 0)
			return call_broken(c, (int)n, NULL);
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int raw_read(struct call *c, guint8 *buf, size_t len)
{
	while (len > 0) {
		ssize_t n;
		int r = tick(c);

		if (r < 0)
			return call_broken(c, LIBSSH2_ERROR_TIMEOUT, "timed out");
		n = libssh2_channel_read(c->s->raw, (char *)buf, len);
		if (n < 0)
			return call_broken(c, (int)n, NULL);
		if (n == 0 && libssh2_channel_eof(c->s->raw))
			return call_broken(c, LIBSSH2_ERROR_CHANNEL_CLOSED, "the SFTP channel was closed");
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Send a packet (its body after the length) and read the reply's body into *reply. */
static int raw_exchange(struct call *c, GByteArray *body, GByteArray **reply)
{
	guint8 len[4] = { (guint8)(body->len >> 24), (guint8)(body->len >> 16), (guint8)(body->len >> 8),
	                  (guint8)body->len };
	g_autoptr(GByteArray) in = NULL;
	uint32_t n;
	int r;

	*reply = NULL;
	g_byte_array_prepend(body, len, 4);
	r = raw_write(c, body->data, body->len);
	if (r == 0)
		r = raw_read(c, len, 4);
	if (r < 0)
		return r;
	n = (uint32_t)len[0] << 24 | (uint32_t)len[1] << 16 | (uint32_t)len[2] << 8 | len[3];
	if (n < 5 || n > RAW_MAX_PACKET)
		return call_broken(c, LIBSSH2_ERROR_SFTP_PROTOCOL, "malformed SFTP packet");
	in = g_byte_array_sized_new(n);
	g_byte_array_set_size(in, n);
	r = raw_read(c, in->data, n);
	if (r < 0)
		return r;
	*reply = g_steal_pointer(&in);
	return 0;
}

/* One request of type with body on the raw channel.  On success *status is
 * the reply's SFTP status, or LIBSSH2_FX_OK with *name (if name is not NULL)
 * set to the first name of a NAME reply. */
static int raw_request(struct call *c, guint8 type, GByteArray *args, unsigned long *status, char **name)
{
	g_autoptr(GByteArray) body = g_byte_array_new();
	g_autoptr(GByteArray) reply = NULL;
	uint32_t id = c->s->raw_id++;
	struct reader in;
	uint32_t got_id, value, len;
	const char *s;
	int r;

	if (name)
		*name = NULL;
	g_byte_array_append(body, &type, 1);
	put_u32(body, id);
	g_byte_array_append(body, args->data, args->len);
	r = raw_exchange(c, body, &reply);
	if (r < 0)
		return r;
	in = (struct reader){ reply->data + 1, reply->data + reply->len };
	if (!get_u32(&in, &got_id) || got_id != id)
		return call_broken(c, LIBSSH2_ERROR_SFTP_PROTOCOL, "SFTP reply to another request");
	if (reply->data[0] == FXP_STATUS) {
		if (!get_u32(&in, &value))
			return call_broken(c, LIBSSH2_ERROR_SFTP_PROTOCOL, "short SFTP status");
		*status = value;
		return 0;
	}
	if (reply->data[0] == FXP_NAME && name) {
		if (!get_u32(&in, &value) || value < 1 || !get_string(&in, &s, &len))
			return call_broken(c, LIBSSH2_ERROR_SFTP_PROTOCOL, "malformed SFTP name reply");
		*name = g_strndup(s, len);
		*status = LIBSSH2_FX_OK;
		return 0;
	}
	return call_broken(c, LIBSSH2_ERROR_SFTP_PROTOCOL, "unexpected SFTP reply");
}

/* REALPATH or READLINK of remote: 0 with *out, or the SFTP status in *status. */
static int raw_name(struct call *c, guint8 type, const char *remote, unsigned long *status, char **out)
{
	g_autoptr(GByteArray) args = g_byte_array_new();

	put_string(args, remote);
	return raw_request(c, type, args, status, out);
}

/* Open the raw channel and learn the server's extensions from its VERSION. */
static int raw_open(struct call *c)
{
	struct session *s = c->s;
	g_autoptr(GByteArray) init = g_byte_array_new();
	g_autoptr(GByteArray) reply = NULL;
	guint8 type = FXP_INIT;
	struct reader in;
	uint32_t version;
	int r = tick(c);

	if (r < 0)
		return r;
	s->raw = libssh2_channel_open_session(s->ssh);
	if (!s->raw)
		return call_broken(c, libssh2_session_last_errno(s->ssh), NULL);
	if ((r = tick(c)) < 0)
		return r;
	if (libssh2_channel_subsystem(s->raw, "sftp") != 0)
		return call_broken(c, libssh2_session_last_errno(s->ssh), NULL);
	libssh2_channel_handle_extended_data2(s->raw, LIBSSH2_CHANNEL_EXTENDED_DATA_IGNORE);
	g_byte_array_append(init, &type, 1);
	put_u32(init, 3);
	r = raw_exchange(c, init, &reply);
	if (r < 0)
		return r;
	in = (struct reader){ reply->data + 1, reply->data + reply->len };
	if (reply->data[0] != FXP_VERSION || !get_u32(&in, &version))
		return call_broken(c, LIBSSH2_ERROR_SFTP_PROTOCOL, "no SFTP version from the server");
	while (in.p < in.end) {
		const char *name, *data;
		uint32_t name_len, data_len;

		if (!get_string(&in, &name, &name_len) || !get_string(&in, &data, &data_len))
			break;
		if (name_len == 24 && memcmp(name, "posix-rename@openssh.com", 24) == 0)
			s->posix_rename = true;
		else if (name_len == 20 && memcmp(name, "lsetstat@openssh.com", 20) == 0)
			s->lsetstat = true;
		if (name_len > 12 && memcmp(name + name_len - 12, "@openssh.com", 12) == 0)
			s->openssh = true;
	}
	s->raw_id = 1;
	return 0;
}

/* ---- connections ---- */

/* False if the peer has closed the connection or reset it. */
static bool session_alive(struct session *s)
{
	struct pollfd p = { .fd = s->sock, .events = POLLIN | POLLRDHUP };
	char byte;
	ssize_t n;

	if (poll(&p, 1, 0) <= 0)
		return true;
	if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))
		return false;
	/* readable: data (a reply to read-ahead) is fine, end of file is not */
	n = recv(s->sock, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
	return n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR));
}

/* Close everything of s, without a word to the server if it may not answer. */
static void session_close(struct session *s, bool graceful)
{
	struct sftp *b = s->b;

	if (!s->ssh && s->sock < 0)
		return;
	/* nothing below may wait on a server that does not answer */
	if (s->sock >= 0 && (!graceful || !s->ssh))
		shutdown(s->sock, SHUT_RDWR);
	g_mutex_lock(&b->mutex);
	for (GList *l = s->files; l; l = l->next)
		((struct sftp_file *)l->data)->h = NULL;
	g_list_free(g_steal_pointer(&s->files));
	g_slist_free_full(g_steal_pointer(&s->orphans), g_free);
	s->generation++;
	g_mutex_unlock(&b->mutex);
	if (s->ssh) {
		if (graceful) {
			libssh2_session_set_timeout(s->ssh, 1000);
			libssh2_session_disconnect(s->ssh, "epfs file store closing");
		}
		/* frees the channels, and the SFTP layer with them */
		libssh2_session_free(s->ssh);
	}
	blocks_free(s);
	if (s->sock >= 0)
		close(s->sock);
	s->sock = -1;
	s->ssh = NULL;
	s->sftp = NULL;
	s->raw = NULL;
	g_clear_pointer(&s->root, g_free);
	s->posix_rename = s->lsetstat = s->openssh = false;
}

static void session_drop(struct session *s)
{
	session_close(s, false);
}

/* A TCP connection to the storage host, within the deadline. */
static int tcp_connect(struct call *c)
{
	struct sftp *b = c->b;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
	                          .ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG };
	struct addrinfo *list = NULL;
	char port[16];
	int err = ETIMEDOUT, gai, sock = -1;

	snprintf(port, sizeof(port), "%d", b->port);
	gai = getaddrinfo(b->host, port, &hints, &list);
	if (gai != 0)
		return ep_errorf(EAGAIN, "cannot resolve the storage host %s: %s", b->host, gai_strerror(gai));
	for (struct addrinfo *ai = list; ai; ai = ai->ai_next) {
		struct pollfd p;
		socklen_t len = sizeof(err);
		int one = 1;

		sock = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (sock < 0) {
			err = errno;
			continue;
		}
		if (connect(sock, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
			err = errno;
		} else {
			p = (struct pollfd){ .fd = sock, .events = POLLOUT };
			if (poll(&p, 1, (int)remaining_ms(c->deadline)) <= 0)
				err = ETIMEDOUT;
			else if (getsockopt(sock, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
				err = errno;
		}
		if (err == 0) {
			/* stays non-blocking: libssh2 waits with poll() and its own timeout */
			setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			setsockopt(sock, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
			break;
		}
		close(sock);
		sock = -1;
		if (err == ETIMEDOUT)
			break;
	}
	freeaddrinfo(list);
	if (sock < 0)
		return ep_errorf(err == ETIMEDOUT ? ETIMEDOUT : EAGAIN, "cannot connect to the storage host %s:%d: %s",
		                 b->host, b->port, g_strerror(err));
	c->s->sock = sock;
	return 0;
}

static int knownhost_type(int hostkey_type)
{
	switch (hostkey_type) {
	case LIBSSH2_HOSTKEY_TYPE_RSA: return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
	case LIBSSH2_HOSTKEY_TYPE_DSS: return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
	case LIBSSH2_HOSTKEY_TYPE_ED25519: return LIBSSH2_KNOWNHOST_KEY_ED25519;
	}
	return LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
}

/* "SHA256:<base64>" of the server's host key, as ssh-keygen -l shows it. */
static char *hostkey_fingerprint(LIBSSH2_SESSION *ssh)
{
	const char *hash = libssh2_hostkey_hash(ssh, LIBSSH2_HOSTKEY_HASH_SHA256);
	g_autofree char *b64 = NULL;
	char *end;

	if (!hash)
		return g_strdup("(unknown)");
	b64 = g_base64_encode((const guchar *)hash, 32);
	end = strchr(b64, '=');
	if (end)
		*end = '\0';
	return g_strconcat("SHA256:", b64, NULL);
}

/* The server's host key must be the one known_hosts names for host:port. */
static int check_host_key(struct call *c)
{
	struct sftp *b = c->b;
	LIBSSH2_KNOWNHOSTS *kh = libssh2_knownhost_init(c->s->ssh);
	g_autofree char *fingerprint = NULL;
	const char *key;
	size_t len;
	int type, check, r = 0;

	if (!kh)
		return ep_errorf(ENOMEM, "cannot check the host key of %s", b->host);
	if (libssh2_knownhost_readfile(kh, b->known_hosts, LIBSSH2_KNOWNHOST_FILE_OPENSSH) < 0) {
		libssh2_knownhost_free(kh);
		return ep_errorf(EACCES, "cannot read known_hosts %s: refusing to connect to %s unchecked",
		                 b->known_hosts, b->host);
	}
	key = libssh2_session_hostkey(c->s->ssh, &len, &type);
	fingerprint = hostkey_fingerprint(c->s->ssh);
	check = key ? libssh2_knownhost_checkp(kh, b->host, b->port, key, len,
	                                       LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW |
	                                       knownhost_type(type), NULL)
	            : LIBSSH2_KNOWNHOST_CHECK_FAILURE;
	switch (check) {
	case LIBSSH2_KNOWNHOST_CHECK_MATCH:
		break;
	case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
		r = ep_errorf(EACCES, "the host key of %s:%d (%s) does NOT match %s: refusing to connect "
		              "(someone may be impersonating the storage host)", b->host, b->port,
		              fingerprint, b->known_hosts);
		break;
	case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
		r = ep_errorf(EACCES, "the host key of %s:%d (%s) is not in %s: refusing to connect "
		              "(add it with ssh-keyscan after checking it)", b->host, b->port, fingerprint,
		              b->known_hosts);
		break;
	default:
		r = ep_errorf(EACCES, "cannot check the host key of %s:%d against %s", b->host, b->port,
		              b->known_hosts);
	}
	libssh2_knownhost_free(kh);
	return r;
}

static int lstat_remote(struct call *c, const char *remote, LIBSSH2_SFTP_ATTRIBUTES *a, bool follow);

/* mkdir -p of a server path; failures show in what follows. */
static void mkdir_parents(struct call *c, const char *path)
{
	g_auto(GStrv) parts = g_strsplit(path, "/", -1);
	g_autoptr(GString) sofar = g_string_new(path[0] == '/' ? "" : ".");

	for (guint i = 0; parts[i]; i++) {
		if (!parts[i][0])
			continue;
		g_string_append_printf(sofar, "/%s", parts[i]);
		if (tick(c) < 0)
			return;
		libssh2_sftp_mkdir_ex(c->s->sftp, sofar->str, (unsigned)sofar->len, 0755);
	}
}

/* The configured root, resolved on the server; created if missing. */
static int resolve_root(struct call *c)
{
	struct session *s = c->s;
	const char *root = c->b->root;
	LIBSSH2_SFTP_ATTRIBUTES a;
	unsigned long status = LIBSSH2_FX_OK;
	int r;

	for (int attempt = 0; attempt < 2; attempt++) {
		g_clear_pointer(&s->root, g_free);
		r = raw_name(c, FXP_REALPATH, root, &status, &s->root);
		if (r < 0)
			return r;
		if (status == LIBSSH2_FX_OK) {
			r = lstat_remote(c, s->root, &a, true);
			if (r == 0 && LIBSSH2_SFTP_S_ISDIR(a.permissions))
				return 0;
			if (r == 0)
				return ep_errorf(ENOTDIR, "the file store root %s on %s is not a directory", s->root,
				                 c->b->host);
			if (r != -ENOENT)
				return r;
		} else if (status != LIBSSH2_FX_NO_SUCH_FILE) {
			break;
		}
		if (attempt == 0)
			mkdir_parents(c, root);
	}
	if (status == LIBSSH2_FX_OK)
		status = LIBSSH2_FX_NO_SUCH_FILE;
	return ep_errorf(fx_errno(status), "the file store root %s on %s: %s, and it cannot be created",
	                 root, c->b->host, fx_name(status));
}

/* Connect s: TCP, SSH handshake, host key, public key login, both SFTP channels, root. */
static int session_connect(struct call *c)
{
	struct sftp *b = c->b;
	struct session *s = c->s;
	char *message = NULL;
	int r = tcp_connect(c);

	if (r < 0)
		return r;
	s->ssh = libssh2_session_init_ex(block_alloc, block_free, block_realloc, s);
	if (!s->ssh) {
		r = ep_errorf(ENOMEM, "cannot start an SSH session");
		goto fail;
	}
	libssh2_session_set_blocking(s->ssh, 1);
	if ((r = tick(c)) < 0)
		goto fail;
	if ((r = libssh2_session_handshake(s->ssh, s->sock)) != 0) {
		libssh2_session_last_error(s->ssh, &message, NULL, 0);
		r = ep_errorf(r == LIBSSH2_ERROR_TIMEOUT ? ETIMEDOUT : EAGAIN,
		              "SSH handshake with %s:%d failed: %s", b->host, b->port, message);
		goto fail;
	}
	if ((r = check_host_key(c)) < 0)
		goto fail;
	if ((r = tick(c)) < 0)
		goto fail;
	if ((r = libssh2_userauth_publickey_fromfile_ex(s->ssh, b->user, (unsigned)strlen(b->user),
	                                                b->public_key, b->key, NULL)) != 0) {
		libssh2_session_last_error(s->ssh, &message, NULL, 0);
		r = ep_errorf(r == LIBSSH2_ERROR_TIMEOUT ? ETIMEDOUT : EACCES,
		              "%s@%s:%d refused the key %s: %s", b->user, b->host, b->port, b->key, message);
		goto fail;
	}
	if ((r = tick(c)) < 0)
		goto fail;
	s->sftp = libssh2_sftp_init(s->ssh);
	if (!s->sftp) {
		libssh2_session_last_error(s->ssh, &message, NULL, 0);
		r = ep_errorf(EIO, "cannot start SFTP on %s: %s", b->host, message);
		goto fail;
	}
	if ((r = raw_open(c)) < 0 || (r = resolve_root(c)) < 0)
		goto fail;
	return 0;

fail:
	{
		/* keep the message: closing may record its own */
		g_autofree char *saved = g_strdup(ep_error_message());

		session_drop(s);
		return ep_errorf(-r, "%s", saved);
	}
}

/* ---- the pool ---- */

/* Take an idle session (want, or any, preferring connected ones) before the deadline. */
static int pool_take(struct sftp *b, struct session *want, gint64 deadline, struct session **out)
{
	struct session *s = NULL;

	g_mutex_lock(&b->mutex);
	for (;;) {
		if (want) {
			s = want->busy ? NULL : want;
		} else {
			for (int i = 0; i < b->n_sessions; i++) {
				struct session *t = &b->sessions[(b->next + i) % b->n_sessions];

				if (t->busy)
					continue;
				if (t->ssh) {
					s = t;
					break;
				}
				if (!s)
					s = t;
			}
		}
		if (s)
			break;
		if (!g_cond_wait_until(&b->idle, &b->mutex, deadline)) {
			g_mutex_unlock(&b->mutex);
			return ep_errorf(ETIMEDOUT, "all %d connections to %s stayed busy for %d s", b->n_sessions,
			                 b->host, b->fs->timeout_ms / 1000);
		}
	}
	s->busy = true;
	b->next = (s->index + 1) % b->n_sessions;
	g_mutex_unlock(&b->mutex);
	*out = s;
	return 0;
}

static void pool_give_back(struct session *s)
{
	struct sftp *b = s->b;

	g_mutex_lock(&b->mutex);
	s->busy = false;
	g_cond_broadcast(&b->idle);
	g_mutex_unlock(&b->mutex);
}

/* Close the handles whose files were closed while the session was busy. */
static void close_orphans(struct call *c)
{
	struct session *s = c->s;
	GSList *orphans;

	g_mutex_lock(&c->b->mutex);
	orphans = g_steal_pointer(&s->orphans);
	g_mutex_unlock(&c->b->mutex);
	for (GSList *l = orphans; l; l = l->next) {
		struct orphan *o = l->data;

		if (o->generation == s->generation && s->ssh && tick(c) == 0)
			libssh2_sftp_close_handle(o->handle);
	}
	g_slist_free_full(orphans, g_free);
}

/* Hold a session for c, connected. */
static int call_begin(struct call *c)
{
	struct sftp *b = c->b;
	int r;

	c->attempts++;
	c->retry = false;
	r = pool_take(b, NULL, c->deadline, &c->s);
	if (r < 0)
		return r;
	if (c->s->ssh && !session_alive(c->s))
		session_drop(c->s);
	c->reused = c->s->ssh != NULL;
	if (!c->s->ssh) {
		gint64 now = g_get_monotonic_time();
		int err = 0;
		g_autofree char *message = NULL;

		g_mutex_lock(&b->mutex);
		if (now < b->retry_after) {
			err = b->down_error;
			message = g_strdup(b->down_message);
		}
		g_mutex_unlock(&b->mutex);
		if (err) {
			r = ep_errorf(err, "%s %s: the storage host is unavailable: %s", c->what, c->path, message);
		} else {
			r = session_connect(c);
			g_mutex_lock(&b->mutex);
			if (r < 0) {
				/* the next calls fail at once for a moment instead of each waiting */
				b->retry_after = g_get_monotonic_time() + RECONNECT_DELAY_US;
				b->down_error = -r == EIO ? EAGAIN : -r;
				g_free(b->down_message);
				b->down_message = g_strdup(ep_error_message());
				message = g_strdup(b->down_message);
				err = b->down_error;
			} else {
				b->retry_after = 0;
			}
			g_mutex_unlock(&b->mutex);
			if (r < 0)
				r = ep_errorf(err, "%s %s: %s", c->what, c->path, message);
		}
		if (r < 0) {
			pool_give_back(c->s);
			c->s = NULL;
			return r;
		}
	}
	close_orphans(c);
	return 0;
}

static void call_end(struct call *c)
{
	if (c->s)
		pool_give_back(c->s);
	c->s = NULL;
}

typedef int (*call_fn)(struct call *c, void *arg);

/* Run fn on a session; once more on a fresh connection if an idempotent call
 * found its idle session dead. */
static int call_run(struct filestore *fs, const char *what, const char *path, bool idempotent,
                    call_fn fn, void *arg)
{
	struct call c = {
		.b = backend(fs),
		.deadline = g_get_monotonic_time() + (gint64)fs->timeout_ms * 1000,
		.what = what,
		.path = path[0] ? path : "/",
		.idempotent = idempotent,
	};
	int r;

	do {
		r = call_begin(&c);
		if (r < 0)
			return r;
		r = fn(&c, arg);
		call_end(&c);
	} while (r < 0 && c.retry);
	return r;
}

/* ---- paths and confinement ---- */

/* The server path of the store path rel. */
static char *remote_path(struct session *s, const char *rel)
{
	if (!rel[0])
		return g_strdup(s->root);
	if (strcmp(s->root, "/") == 0)
		return g_strconcat("/", rel, NULL);
	return g_strconcat(s->root, "/", rel, NULL);
}

static bool beneath(const char *resolved, const char *root)
{
	size_t len = strlen(root);

	if (strcmp(root, "/") == 0)
		return resolved[0] == '/';
	return strncmp(resolved, root, len) == 0 && (resolved[len] == '\0' || resolved[len] == '/');
}

/* How much of a path the server will resolve. */
enum confine {
	CONFINE_PARENT,             /* the directories leading to the last name */
	CONFINE_TARGET,             /* those, and a symlink as the last name */
};

/* 0 if the server resolves dir (a server path) to somewhere inside the root. */
static int check_resolves_inside(struct call *c, const char *remote, unsigned long *status)
{
	g_autofree char *resolved = NULL;
	int r = raw_name(c, FXP_REALPATH, remote, status, &resolved);

	if (r < 0 || *status != LIBSSH2_FX_OK)
		return r;
	if (!beneath(resolved, c->s->root))
		return ep_errorf(EACCES, "%s %s: leads outside the file store (a symlink points to %s)",
		                 c->what, c->path, resolved);
	/* strict: the path must be what it says, through no symlink */
	if (filestore_strict() && strcmp(resolved, remote))
		return ep_errorf(ELOOP, "%s %s: a symlink in the path is not followed here", c->what, c->path);
	return 0;
}

/* The server path of rel, after checking that what the server will resolve
 * stays inside the root (unless the server confines by itself). */
static int call_path(struct call *c, const char *rel, enum confine how, char **out)
{
	g_autofree char *remote = remote_path(c->s, rel);
	unsigned long status = LIBSSH2_FX_OK;
	int r = 0;

	*out = NULL;
	if ((!c->b->check_symlinks && !filestore_strict()) || !rel[0]) {
		*out = g_steal_pointer(&remote);
		return 0;
	}
	if (how == CONFINE_TARGET) {
		r = check_resolves_inside(c, remote, &status);
		if (r < 0)
			return r;
		if (status == LIBSSH2_FX_OK) {
			*out = g_steal_pointer(&remote);
			return 0;
		}
		/* unresolvable: a missing directory, or a symlink to nowhere */
	}
	if (strchr(rel, '/')) {
		g_autofree char *dir = g_path_get_dirname(remote);

		r = check_resolves_inside(c, dir, &status);
		if (r < 0)
			return r;
		if (status != LIBSSH2_FX_OK)
			return call_status(c, status);
	}
	if (how == CONFINE_TARGET) {
		LIBSSH2_SFTP_ATTRIBUTES a;

		r = lstat_remote(c, remote, &a, false);
		if (r == 0 && LIBSSH2_SFTP_S_ISLNK(a.permissions))
			return ep_errorf(EACCES, "%s %s: a symlink whose target cannot be resolved is not followed",
			                 c->what, c->path);
		/* missing: the operation itself will say so, or create it */
		if (r < 0 && r != -ENOENT)
			return r;
		ep_error_clear();
	}
	*out = g_steal_pointer(&remote);
	return 0;
}

static void attrs_to_stat(const LIBSSH2_SFTP_ATTRIBUTES *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = (a->flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) ? (mode_t)a->permissions : S_IFREG | 0644;
	if (!(st->st_mode & S_IFMT))
		st->st_mode |= S_IFREG;
	st->st_nlink = 1;
	if (a->flags & LIBSSH2_SFTP_ATTR_UIDGID) {
		st->st_uid = (uid_t)a->uid;
		st->st_gid = (gid_t)a->gid;
	}
	if (a->flags & LIBSSH2_SFTP_ATTR_SIZE)
		st->st_size = (off_t)a->filesize;
	if (a->flags & LIBSSH2_SFTP_ATTR_ACMODTIME) {
		st->st_atim.tv_sec = (time_t)a->atime;
		st->st_mtim.tv_sec = (time_t)a->mtime;
		/* SFTP v3 has no change time; the modification time is the closest */
		st->st_ctim.tv_sec = (time_t)a->mtime;
	}
	st->st_blksize = 128 * 1024;
	st->st_blocks = (blkcnt_t)((st->st_size + 511) / 512);
}

/* lstat (or stat) of a server path: 0, or -errno (ENOENT quietly recorded). */
static int lstat_remote(struct call *c, const char *remote, LIBSSH2_SFTP_ATTRIBUTES *a, bool follow)
{
	int r = tick(c);

	if (r < 0)
		return r;
	r = libssh2_sftp_stat_ex(c->s->sftp, remote, (unsigned)strlen(remote),
	                         follow ? LIBSSH2_SFTP_STAT : LIBSSH2_SFTP_LSTAT, a);
	return r == 0 ? 0 : call_error(c, r);
}

/* What a name is on the server: 'd', 'l', 'f' (anything else), or 0 if missing. */
static char kind_of(struct call *c, const char *remote)
{
	LIBSSH2_SFTP_ATTRIBUTES a;
	int r = lstat_remote(c, remote, &a, false);

	ep_error_clear();
	if (r < 0)
		return 0;
	return LIBSSH2_SFTP_S_ISDIR(a.permissions) ? 'd' : LIBSSH2_SFTP_S_ISLNK(a.permissions) ? 'l' : 'f';
}

/* For NO_SUCH_FILE on remote: ENOTDIR if a directory on the way is a file, else ENOENT. */
static int refine_missing(struct call *c, const char *remote)
{
	LIBSSH2_SFTP_ATTRIBUTES a;
	int r;

	/* a path whose directory is missing never got as far as a remote name */
	if (!remote)
		return call_refused(c, ENOENT);
	g_autofree char *dir = g_path_get_dirname(remote);
	r = lstat_remote(c, dir, &a, true);

	ep_error_clear();
	if (r == 0 && !LIBSSH2_SFTP_S_ISDIR(a.permissions))
		return call_refused(c, ENOTDIR);
	return call_refused(c, ENOENT);
}

/* ---- the operations ---- */

static int op_ping(struct call *c, void *arg)
{
	LIBSSH2_SFTP_ATTRIBUTES a;

	(void)arg;
	return lstat_remote(c, c->s->root, &a, true);
}

static int sftp_ping(struct filestore *fs)
{
	return call_run(fs, "ping", "", true, op_ping, NULL);
}

struct stat_args {
	const char *path;
	struct stat *out;
};

static int op_lstat(struct call *c, void *arg)
{
	struct stat_args *a = arg;
	g_autofree char *remote = NULL;
	LIBSSH2_SFTP_ATTRIBUTES attrs;
	int r = call_path(c, a->path, CONFINE_PARENT, &remote);

	if (r == 0)
		r = lstat_remote(c, remote, &attrs, false);
	if (r == -ENOENT)
		return refine_missing(c, remote);
	if (r == 0)
		attrs_to_stat(&attrs, a->out);
	return r;
}

static int sftp_lstat(struct filestore *fs, const char *path, struct stat *out)
{
	struct stat_args a = { path, out };

	return call_run(fs, "lstat", path, true, op_lstat, &a);
}

struct readdir_args {
	const char *path;
	GPtrArray *out;
};

static int op_readdir(struct call *c, void *arg)
{
	struct readdir_args *a = arg;
	g_autoptr(GPtrArray) entries = filestore_dirents_new();
	g_autofree char *remote = NULL;
	g_autofree char *name = g_malloc(NAME_BUF);
	LIBSSH2_SFTP_HANDLE *h;
	int r = call_path(c, a->path, CONFINE_TARGET, &remote);

	if (r < 0 || (r = tick(c)) < 0)
		return r;
	h = libssh2_sftp_open_ex(c->s->sftp, remote, (unsigned)strlen(remote), 0, 0, LIBSSH2_SFTP_OPENDIR);
	if (!h) {
		int rc = libssh2_session_last_errno(c->s->ssh);

		if (fx_of(c, rc) == LIBSSH2_FX_NO_SUCH_FILE) {
			char kind = kind_of(c, remote);

			if (kind == 'f')
				return call_refused(c, ENOTDIR);
			return refine_missing(c, remote);
		}
		return call_error(c, rc);
	}
	for (;;) {
		LIBSSH2_SFTP_ATTRIBUTES attrs;
		struct filestore_dirent *d;
		int n;

		if ((r = tick(c)) < 0)
			break;
		n = libssh2_sftp_readdir_ex(h, name, NAME_BUF, NULL, 0, &attrs);
		if (n == 0)
			break;
		if (n < 0) {
			r = n == LIBSSH2_ERROR_BUFFER_TOO_SMALL ? ep_errorf(ENAMETOOLONG, "readdir %s: a name is "
			                                                    "too long", c->path)
			                                        : call_error(c, n);
			break;
		}
		if ((n == 1 && name[0] == '.') || (n == 2 && name[0] == '.' && name[1] == '.'))
			continue;
		d = g_new0(struct filestore_dirent, 1);
		d->name = g_strndup(name, (gsize)n);
		attrs_to_stat(&attrs, &d->st);
		g_ptr_array_add(entries, d);
	}
	/* the handle is gone with the connection if that broke */
	if (c->s->sftp && tick(c) == 0)
		libssh2_sftp_close_handle(h);
	if (r < 0)
		return r;
	for (guint i = 0; i < entries->len; i++)
		g_ptr_array_add(a->out, g_steal_pointer(&entries->pdata[i]));
	g_ptr_array_set_free_func(entries, NULL);
	return 0;
}

static int sftp_readdir(struct filestore *fs, const char *path, GPtrArray *out)
{
	struct readdir_args a = { path, out };

	return call_run(fs, "readdir", path, true, op_readdir, &a);
}

struct mode_args {
	const char *path;
	mode_t mode;
};

static int op_mkdir(struct call *c, void *arg)
{
	struct mode_args *a = arg;
	g_autofree char *remote = NULL;
	int r = call_path(c, a->path, CONFINE_PARENT, &remote);
	unsigned long fx;

	if (r < 0 || (r = tick(c)) < 0)
		return r;
	r = libssh2_sftp_mkdir_ex(c->s->sftp, remote, (unsigned)strlen(remote), (long)a->mode);
	if (r == 0)
		return 0;
	fx = fx_of(c, r);
	if (fx == LIBSSH2_FX_FAILURE && kind_of(c, remote))
		return call_refused(c, EEXIST);
	if (fx == LIBSSH2_FX_NO_SUCH_FILE)
		return refine_missing(c, remote);
	return call_error(c, r);
}

static int sftp_mkdir(struct filestore *fs, const char *path, mode_t mode)
{
	struct mode_args a = { path, mode };

	return call_run(fs, "mkdir", path, false, op_mkdir, &a);
}

static int op_rmdir(struct call *c, void *arg)
{
	const char *path = arg;
	g_autofree char *remote = NULL;
	int r = call_path(c, path, CONFINE_PARENT, &remote);
	unsigned long fx;
	char kind;

	if (r < 0 || (r = tick(c)) < 0)
		return r;
	r = libssh2_sftp_rmdir_ex(c->s->sftp, remote, (unsigned)strlen(remote));
	if (r == 0)
		return 0;
	fx = fx_of(c, r);
	if (fx == LIBSSH2_FX_FAILURE || fx == LIBSSH2_FX_NO_SUCH_FILE) {
		/* OpenSSH says FAILURE for ENOTEMPTY, NO_SUCH_FILE for ENOTDIR */
		kind = kind_of(c, remote);
		if (kind == 'd' && fx == LIBSSH2_FX_FAILURE)
			return call_refused(c, ENOTEMPTY);
		if (kind && kind != 'd')
			return call_refused(c, ENOTDIR);
		if (!kind)
			return refine_missing(c, remote);
	}
	return call_error(c, r);
}

static int sftp_rmdir(struct filestore *fs, const char *path)
{
	return call_run(fs, "rmdir", path, false, op_rmdir, (void *)path);
}

static int op_unlink(struct call *c, void *arg)
{
	const char *path = arg;
	g_autofree char *remote = NULL;
	int r = call_path(c, path, CONFINE_PARENT, &remote);
	unsigned long fx;

	if (r < 0 || (r = tick(c)) < 0)
		return r;
	r = libssh2_sftp_unlink_ex(c->s->sftp, remote, (unsigned)strlen(remote));
	if (r == 0)
		return 0;
	fx = fx_of(c, r);
	if (fx == LIBSSH2_FX_FAILURE && kind_of(c, remote) == 'd')
		return call_refused(c, EISDIR);
	if (fx == LIBSSH2_FX_NO_SUCH_FILE)
		return refine_missing(c, remote);
	return call_error(c, r);
}

static int sftp_unlink(struct filestore *fs, const char *path)
{
	return call_run(fs, "unlink", path, false, op_unlink, (void *)path);
}

struct rename_args {
	const char *from;
	const char *to;
	unsigned flags;
};

/* posix-rename@openssh.com: rename(2) on the server, replacing to atomically. */
static int posix_rename(struct call *c, const char *from, const char *to, unsigned long *status)
{
	g_autoptr(GByteArray) args = g_byte_array_new();

	put_string(args, "posix-rename@openssh.com");
	put_string(args, from);
	put_string(args, to);
	return raw_request(c, FXP_EXTENDED, args, status, NULL);
}

/* Plain SFTP rename: never replaces an existing name. */
static int plain_rename(struct call *c, const char *from, const char *to, unsigned long *status)
{
	int r = tick(c);

	if (r < 0)
		return r;
	r = libssh2_sftp_rename_ex(c->s->sftp, from, (unsigned)strlen(from), to, (unsigned)strlen(to), 0);
	if (r == 0)
		*status = LIBSSH2_FX_OK;
	else if (r == LIBSSH2_ERROR_SFTP_PROTOCOL)
		*status = libssh2_sftp_last_error(c->s->sftp);
	else
		return call_error(c, r);
	return 0;
}

/* Without posix-rename: move to aside, from to to, then remove the old one.
 * Not atomic: for a moment to does not exist. */
static int replace_by_steps(struct call *c, const char *from, const char *to, unsigned long *status)
{
	g_autofree char *dir = g_path_get_dirname(to);
	g_autofree char *aside = g_strdup_printf("%s/" FILESTORE_TEMP_PREFIX "%08x", dir, g_random_int());
	unsigned long ignored;
	int r = plain_rename(c, to, aside, status);

	if (r < 0 || *status != LIBSSH2_FX_OK)
		return r;
	r = plain_rename(c, from, to, status);
	if (r < 0 || *status != LIBSSH2_FX_OK) {
		if (r == 0)
			plain_rename(c, aside, to, &ignored);
		return r;
	}
	if (tick(c) == 0 && libssh2_sftp_unlink_ex(c->s->sftp, aside, (unsigned)strlen(aside)) != 0 &&
	    tick(c) == 0)
		libssh2_sftp_rmdir_ex(c->s->sftp, aside, (unsigned)strlen(aside));
	return 0;
}

static int op_rename(struct call *c, void *arg)
{
	struct rename_args *a = arg;
	g_autofree char *from = NULL, *to = NULL;
	unsigned long status = LIBSSH2_FX_OK;
	char from_kind, to_kind;
	int r = call_path(c, a->from, CONFINE_PARENT, &from);

	if (r == 0)
		r = call_path(c, a->to, CONFINE_PARENT, &to);
	if (r < 0)
		return r;
	if (a->flags & RENAME_NOREPLACE)
		r = plain_rename(c, from, to, &status);
	else if (c->s->posix_rename)
		r = posix_rename(c, from, to, &status);
	else {
		r = plain_rename(c, from, to, &status);
		if (r == 0 && status == LIBSSH2_FX_FAILURE && kind_of(c, to) && kind_of(c, from))
			r = replace_by_steps(c, from, to, &status);
	}
	if (r < 0 || status == LIBSSH2_FX_OK)
		return r;
	if (status != LIBSSH2_FX_FAILURE && status != LIBSSH2_FX_NO_SUCH_FILE)
		return call_status(c, status);
	/* SFTP v3 has one status for most rename(2) errors: find out which */
	from_kind = kind_of(c, from);
	to_kind = kind_of(c, to);
	if (!from_kind) {
		c->path = a->from;
		return refine_missing(c, from);
	}
	c->path = a->to;
	if ((a->flags & RENAME_NOREPLACE) && to_kind)
		return call_refused(c, EEXIST);
	if (to_kind == 'd' && from_kind != 'd')
		return call_refused(c, EISDIR);
	if (to_kind == 'd')
		return call_refused(c, ENOTEMPTY);
	if (to_kind && from_kind == 'd')
		return call_refused(c, ENOTDIR);
	if (!to_kind && status == LIBSSH2_FX_NO_SUCH_FILE)
		return refine_missing(c, to);
	return call_status(c, status);
}

static int sftp_rename(struct filestore *fs, const char *from, const char *to, unsigned flags)
{
	struct rename_args a = { from, to, flags };

	return call_run(fs, "rename", from, false, op_rename, &a);
}

struct symlink_args {
	const char *target;
	const char *path;
};

static int op_symlink(struct call *c, void *arg)
{
	struct symlink_args *a = arg;
	g_autoptr(GByteArray) args = g_byte_array_new();
	g_autofree char *remote = NULL;
	unsigned long status = LIBSSH2_FX_OK;
	int r = call_path(c, a->path, CONFINE_PARENT, &remote);

	if (r < 0)
		return r;
	/* OpenSSH takes (target, link), the reverse of the SFTP draft */
	put_string(args, c->s->openssh ? a->target : remote);
	put_string(args, c->s->openssh ? remote : a->target);
	r = raw_request(c, FXP_SYMLINK, args, &status, NULL);
	if (r < 0 || status == LIBSSH2_FX_OK)
		return r;
	if (status == LIBSSH2_FX_FAILURE && kind_of(c, remote))
		return call_refused(c, EEXIST);
	if (status == LIBSSH2_FX_NO_SUCH_FILE)
		return refine_missing(c, remote);
	return call_status(c, status);
}

static int sftp_symlink(struct filestore *fs, const char *target, const char *path)
{
	struct symlink_args a = { target, path };

	return call_run(fs, "symlink", path, false, op_symlink, &a);
}

struct readlink_args {
	const char *path;
	char **out;
};

static int op_readlink(struct call *c, void *arg)
{
	struct readlink_args *a = arg;
	g_autofree char *remote = NULL;
	unsigned long status = LIBSSH2_FX_OK;
	char kind;
	int r = call_path(c, a->path, CONFINE_PARENT, &remote);

	if (r == 0)
		r = raw_name(c, FXP_READLINK, remote, &status, a->out);
	if (r < 0 || status == LIBSSH2_FX_OK)
		return r;
	kind = kind_of(c, remote);
	if (kind && kind != 'l')
		return call_refused(c, EINVAL);
	if (!kind)
		return refine_missing(c, remote);
	return call_status(c, status);
}

static int sftp_readlink(struct filestore *fs, const char *path, char **out)
{
	struct readlink_args a = { path, out };

	return call_run(fs, "readlink", path, true, op_readlink, &a);
}

/* Set attributes on the name itself: lsetstat@openssh.com, or SETSTAT (which
 * follows a symlink; callers have made sure remote is not one). */
static int set_attrs(struct call *c, const char *remote, LIBSSH2_SFTP_ATTRIBUTES *attrs)
{
	unsigned long status = LIBSSH2_FX_OK;
	int r;

	if (c->s->lsetstat) {
		g_autoptr(GByteArray) args = g_byte_array_new();

		put_string(args, "lsetstat@openssh.com");
		put_string(args, remote);
		put_attrs(args, attrs);
		r = raw_request(c, FXP_EXTENDED, args, &status, NULL);
		if (r < 0 || status == LIBSSH2_FX_OK)
			return r;
		if (status == LIBSSH2_FX_NO_SUCH_FILE)
			return refine_missing(c, remote);
		return call_status(c, status);
	}
	if ((r = tick(c)) < 0)
		return r;
	r = libssh2_sftp_stat_ex(c->s->sftp, remote, (unsigned)strlen(remote), LIBSSH2_SFTP_SETSTAT, attrs);
	if (r == 0)
		return 0;
	if (fx_of(c, r) == LIBSSH2_FX_NO_SUCH_FILE)
		return refine_missing(c, remote);
	return call_error(c, r);
}

static int op_chmod(struct call *c, void *arg)
{
	struct mode_args *a = arg;
	g_autofree char *remote = NULL;
	LIBSSH2_SFTP_ATTRIBUTES attrs = { .flags = LIBSSH2_SFTP_ATTR_PERMISSIONS, .permissions = a->mode };
	LIBSSH2_SFTP_ATTRIBUTES now;
	int r = call_path(c, a->path, CONFINE_PARENT, &remote);

	if (r == 0)
		r = lstat_remote(c, remote, &now, false);
	if (r == -ENOENT)
		return refine_missing(c, remote);
	if (r < 0)
		return r;
	if (LIBSSH2_SFTP_S_ISLNK(now.permissions))
		return ep_errorf(ENOTSUP, "chmod %s: a symlink has no mode of its own", c->path);
	return set_attrs(c, remote, &attrs);
}

static int sftp_chmod(struct filestore *fs, const char *path, mode_t mode)
{
	struct mode_args a = { path, mode };

	return call_run(fs, "chmod", path, true, op_chmod, &a);
}

/* For a setstat on path: its remote name and current attributes; a symlink
 * only where the server sets a link's own attributes (what: for the message). */
static int setstat_target(struct call *c, const char *path, const char *what, char **remote,
                          LIBSSH2_SFTP_ATTRIBUTES *now)
{
	int r = call_path(c, path, CONFINE_PARENT, remote);

	if (r == 0)
		r = lstat_remote(c, *remote, now, false);
	if (r == -ENOENT)
		return refine_missing(c, *remote);
	if (r < 0)
		return r;
	if (LIBSSH2_SFTP_S_ISLNK(now->permissions) && !c->s->lsetstat)
		return ep_errorf(ENOTSUP, "%s %s: the server cannot change a symlink's own attributes", what, c->path);
	return 0;
}

struct chown_args {
	const char *path;
	uid_t uid;
	gid_t gid;
};

static int op_chown(struct call *c, void *arg)
{
	struct chown_args *a = arg;
	g_autofree char *remote = NULL;
	LIBSSH2_SFTP_ATTRIBUTES now, attrs = { .flags = LIBSSH2_SFTP_ATTR_UIDGID };
	int r = setstat_target(c, a->path, "chown", &remote, &now);

	if (r < 0)
		return r;
	attrs.uid = a->uid == (uid_t)-1 ? now.uid : a->uid;
	attrs.gid = a->gid == (gid_t)-1 ? now.gid : a->gid;
	return set_attrs(c, remote, &attrs);
}

/* Owners are kept only where [filestore] owners=true says the server may
 * set them and its uids are this host's (a shared directory of users). */
static int sftp_chown(struct filestore *fs, const char *path, uid_t uid, gid_t gid)
{
	struct chown_args a = { path, uid, gid };

	return call_run(fs, "chown", path, true, op_chown, &a);
}

struct utimens_args {
	const char *path;
	const struct timespec *times;
};

/* One time for SFTP v3 (whole seconds, 32 bits), from ts and the current value. */
static int v3_time(struct call *c, const struct timespec *ts, unsigned long current, unsigned long *out)
{
	time_t t;

	if (ts->tv_nsec == UTIME_OMIT) {
		*out = current;
		return 0;
	}
	t = ts->tv_nsec == UTIME_NOW ? time(NULL) : ts->tv_sec;
	if (t < 0 || (uint64_t)t > UINT32_MAX)
		return ep_errorf(EINVAL, "utimens %s: SFTP cannot store the time %jd", c->path, (intmax_t)t);
	*out = (unsigned long)t;
	return 0;
}

static int op_utimens(struct call *c, void *arg)
{
	struct utimens_args *a = arg;
	g_autofree char *remote = NULL;
	LIBSSH2_SFTP_ATTRIBUTES now, attrs = { .flags = LIBSSH2_SFTP_ATTR_ACMODTIME };
	int r = setstat_target(c, a->path, "utimens", &remote, &now);

	if (r < 0)
		return r;
	r = v3_time(c, &a->times[0], now.atime, &attrs.atime);
	if (r == 0)
		r = v3_time(c, &a->times[1], now.mtime, &attrs.mtime);
	return r < 0 ? r : set_attrs(c, remote, &attrs);
}

static int sftp_utimens(struct filestore *fs, const char *path, const struct timespec times[2])
{
	struct utimens_args a = { path, times };

	return call_run(fs, "utimens", path, true, op_utimens, &a);
}

struct truncate_args {
	const char *path;
	off_t size;
};

static int op_truncate(struct call *c, void *arg)
{
	struct truncate_args *a = arg;
	g_autofree char *remote = NULL;
	LIBSSH2_SFTP_ATTRIBUTES attrs = { .flags = LIBSSH2_SFTP_ATTR_SIZE, .filesize = (uint64_t)a->size };
	int r = call_path(c, a->path, CONFINE_TARGET, &remote);
	unsigned long fx;

	if (r < 0 || (r = tick(c)) < 0)
		return r;
	/* SETSTAT follows a symlink, which call_path() has checked */
	r = libssh2_sftp_stat_ex(c->s->sftp, remote, (unsigned)strlen(remote), LIBSSH2_SFTP_SETSTAT, &attrs);
	if (r == 0)
		return 0;
	fx = fx_of(c, r);
	if (fx == LIBSSH2_FX_NO_SUCH_FILE)
		return refine_missing(c, remote);
	if (fx == LIBSSH2_FX_FAILURE && kind_of(c, remote) == 'd')
		return call_refused(c, EISDIR);
	return call_error(c, r);
}

static int sftp_truncate(struct filestore *fs, const char *path, off_t size)
{
	struct truncate_args a = { path, size };

	return call_run(fs, "truncate", path, true, op_truncate, &a);
}

struct statvfs_args {
	const char *path;
	struct statvfs *out;
};

static int op_statvfs(struct call *c, void *arg)
{
	struct statvfs_args *a = arg;
	g_autofree char *remote = NULL;
	LIBSSH2_SFTP_STATVFS v;
	int r = call_path(c, a->path, CONFINE_TARGET, &remote);

	if (r < 0 || (r = tick(c)) < 0)
		return r;
	r = libssh2_sftp_statvfs(c->s->sftp, remote, strlen(remote), &v);
	if (r != 0) {
		if (fx_of(c, r) == LIBSSH2_FX_NO_SUCH_FILE)
			return refine_missing(c, remote);
		return call_error(c, r);
	}
	memset(a->out, 0, sizeof(*a->out));
	a->out->f_bsize = (unsigned long)v.f_bsize;
	a->out->f_frsize = (unsigned long)v.f_frsize;
	a->out->f_blocks = (fsblkcnt_t)v.f_blocks;
	a->out->f_bfree = (fsblkcnt_t)v.f_bfree;
	a->out->f_bavail = (fsblkcnt_t)v.f_bavail;
	a->out->f_files = (fsfilcnt_t)v.f_files;
	a->out->f_ffree = (fsfilcnt_t)v.f_ffree;
	a->out->f_favail = (fsfilcnt_t)v.f_favail;
	a->out->f_fsid = (unsigned long)v.f_fsid;
	a->out->f_namemax = (unsigned long)v.f_namemax;
	a->out->f_flag = ((v.f_flag & LIBSSH2_SFTP_ST_RDONLY) ? ST_RDONLY : 0) |
	                 ((v.f_flag & LIBSSH2_SFTP_ST_NOSUID) ? ST_NOSUID : 0);
	return 0;
}

static int sftp_statvfs(struct filestore *fs, const char *path, struct statvfs *out)
{
	struct statvfs_args a = { path, out };

	return call_run(fs, "statvfs", path, true, op_statvfs, &a);
}

/* ---- open files ---- */

struct open_args {
	struct filestore *fs;
	const char *path;
	int flags;
	mode_t mode;
	struct filestore_file **out;
};

static unsigned long fxf_flags(int flags)
{
	unsigned long f = 0;

	switch (flags & O_ACCMODE) {
	case O_RDONLY: f = LIBSSH2_FXF_READ; break;
	case O_WRONLY: f = LIBSSH2_FXF_WRITE; break;
	default: f = LIBSSH2_FXF_READ | LIBSSH2_FXF_WRITE; break;
	}
	if (flags & O_APPEND)
		f |= LIBSSH2_FXF_APPEND;
	if (flags & O_CREAT)
		f |= LIBSSH2_FXF_CREAT;
	if (flags & O_TRUNC)
		f |= LIBSSH2_FXF_TRUNC;
	if (flags & O_EXCL)
		f |= LIBSSH2_FXF_EXCL;
	return f;
}

static int op_open(struct call *c, void *arg)
{
	struct open_args *a = arg;
	struct sftp *b = c->b;
	struct session *s = c->s;
	g_autofree char *remote = NULL;
	LIBSSH2_SFTP_ATTRIBUTES attrs;
	LIBSSH2_SFTP_HANDLE *h;
	struct sftp_file *f;
	unsigned long fx;
	bool excl = (a->flags & O_CREAT) && (a->flags & O_EXCL);
	bool nofollow = (a->flags & O_NOFOLLOW) != 0;
	int r, rc;

	/* O_EXCL creates and never follows; O_NOFOLLOW refuses a symlink */
	r = call_path(c, a->path, excl || nofollow ? CONFINE_PARENT : CONFINE_TARGET, &remote);
	if (r < 0)
		return r;
	if (nofollow && kind_of(c, remote) == 'l')
		return call_refused(c, ELOOP);
	if ((r = tick(c)) < 0)
		return r;
	h = libssh2_sftp_open_ex(s->sftp, remote, (unsigned)strlen(remote), fxf_flags(a->flags),
	                         (long)a->mode, LIBSSH2_SFTP_OPENFILE);
	if (!h) {
		rc = libssh2_session_last_errno(s->ssh);
		fx = fx_of(c, rc);
		if (fx == LIBSSH2_FX_FAILURE) {
			char kind = kind_of(c, remote);

			if (excl && kind)
				return call_refused(c, EEXIST);
			if (kind == 'd')
				return call_refused(c, EISDIR);
		}
		if (fx == LIBSSH2_FX_NO_SUCH_FILE)
			return refine_missing(c, remote);
		return call_error(c, rc);
	}
	/* only regular files: a directory opens fine on most servers, then fails to read */
	r = tick(c);
	rc = r < 0 ? LIBSSH2_ERROR_TIMEOUT : libssh2_sftp_fstat_ex(h, &attrs, 0);
	if (rc != 0 || !LIBSSH2_SFTP_S_ISREG(attrs.permissions)) {
		if (rc == 0 && tick(c) == 0)
			libssh2_sftp_close_handle(h);
		if (rc != 0)
			return call_error(c, rc);
		return LIBSSH2_SFTP_S_ISDIR(attrs.permissions) ? call_refused(c, EISDIR)
		                                               : ep_errorf(EINVAL, "open %s: not a regular file",
		                                                           c->path);
	}
	f = g_new0(struct sftp_file, 1);
	f->s = s;
	f->path = g_strdup(a->path);
	g_mutex_lock(&b->mutex);
	f->h = h;
	f->generation = s->generation;
	s->files = g_list_prepend(s->files, f);
	g_mutex_unlock(&b->mutex);
	*a->out = &f->base;
	return 0;
}

static int sftp_file_open(struct filestore *fs, const char *path, int flags, mode_t mode,
                          struct filestore_file **out)
{
	struct open_args a = { fs, path, flags, mode, out };
	/* without O_CREAT, opening twice is harmless */
	bool idempotent = !(flags & (O_CREAT | O_TRUNC));

	return call_run(fs, "open", path, idempotent, op_open, &a);
}

/* Hold f's session; -EIO if the connection f was opened on is gone. */
static int file_begin(struct call *c, struct sftp_file *f)
{
	struct sftp *b = backend(f->base.fs);
	bool stale;
	int r;

	c->b = b;
	c->deadline = g_get_monotonic_time() + (gint64)f->base.fs->timeout_ms * 1000;
	c->path = f->path;
	c->attempts = 1;
	r = pool_take(b, f->s, c->deadline, &c->s);
	if (r < 0)
		return r;
	if (c->s->ssh && !session_alive(c->s))
		session_drop(c->s);
	g_mutex_lock(&b->mutex);
	stale = !f->h || f->generation != c->s->generation;
	g_mutex_unlock(&b->mutex);
	if (stale) {
		call_end(c);
		return ep_errorf(EIO, "%s: the connection to %s was lost since the file was opened; "
		                 "open it again", c->what, b->host);
	}
	r = tick(c);
	if (r < 0)
		call_end(c);
	return r;
}

static struct sftp_file *sftp_file(struct filestore_file *f)
{
	return (struct sftp_file *)f;
}

static ssize_t sftp_pread(struct filestore_file *file, void *buf, size_t size, off_t offset)
{
	struct sftp_file *f = sftp_file(file);
	struct call c = { .what = "read" };
	size_t done = 0;
	int r = file_begin(&c, f);

	if (r < 0)
		return r;
	/* always seek: it drops libssh2's read-ahead and its end-of-file mark,
	 * which would serve bytes from before a write through another handle, or
	 * stop at an old end after the file grew */
	libssh2_sftp_seek64(f->h, (libssh2_uint64_t)offset);
	while (done < size) {
		ssize_t n;

		if ((r = tick(&c)) < 0)
			break;
		n = libssh2_sftp_read(f->h, (char *)buf + done, size - done);
		if (n == 0)
			break;
		if (n < 0) {
			r = call_error(&c, (int)n);
			break;
		}
		done += (size_t)n;
	}
	call_end(&c);
	return r < 0 ? r : (ssize_t)done;
}

/* Make sense of a failed write: the server says FAILURE for a full disk too. */
static int write_error(struct call *c, struct sftp_file *f, int rc)
{
	LIBSSH2_SFTP_STATVFS v;

	if (fx_of(c, rc) == LIBSSH2_FX_FAILURE && tick(c) == 0 && libssh2_sftp_fstatvfs(f->h, &v) == 0 &&
	    v.f_bavail == 0)
		return call_refused(c, ENOSPC);
	return call_error(c, rc);
}

static ssize_t sftp_pwrite(struct filestore_file *file, const void *buf, size_t size, off_t offset)
{
	struct sftp_file *f = sftp_file(file);
	struct call c = { .what = "write" };
	size_t done = 0;
	int r = file_begin(&c, f);

	if (r < 0)
		return r;
	/* also drops read-ahead still in flight, which would confuse the write pipeline */
	libssh2_sftp_seek64(f->h, (libssh2_uint64_t)offset);
	while (done < size) {
		ssize_t n;

		if ((r = tick(&c)) < 0)
			break;
		/* libssh2 pipelines the whole buffer and returns what was acknowledged */
		n = libssh2_sftp_write(f->h, (const char *)buf + done, size - done);
		if (n < 0) {
			r = write_error(&c, f, (int)n);
			break;
		}
		done += (size_t)n;
	}
	call_end(&c);
	return r < 0 ? r : (ssize_t)done;
}

static int sftp_fsync(struct filestore_file *file, bool datasync)
{
	struct sftp_file *f = sftp_file(file);
	struct call c = { .what = "fsync" };
	int r = file_begin(&c, f);

	(void)datasync;
	if (r < 0)
		return r;
	r = libssh2_sftp_fsync(f->h);
	if (r != 0) {
		if (fx_of(&c, r) == LIBSSH2_FX_OP_UNSUPPORTED)
			r = ep_errorf(ENOTSUP, "fsync: %s does not support fsync@openssh.com", c.b->host);
		else
			r = call_error(&c, r);
	}
	call_end(&c);
	return r;
}

static int sftp_ftruncate(struct filestore_file *file, off_t size)
{
	struct sftp_file *f = sftp_file(file);
	struct call c = { .what = "ftruncate" };
	LIBSSH2_SFTP_ATTRIBUTES attrs = { .flags = LIBSSH2_SFTP_ATTR_SIZE, .filesize = (uint64_t)size };
	int r = file_begin(&c, f);

	if (r < 0)
		return r;
	r = libssh2_sftp_fstat_ex(f->h, &attrs, 1);
	if (r != 0)
		r = call_error(&c, r);
	call_end(&c);
	return r;
}

static int sftp_fstat(struct filestore_file *file, struct stat *out)
{
	struct sftp_file *f = sftp_file(file);
	struct call c = { .what = "fstat" };
	LIBSSH2_SFTP_ATTRIBUTES attrs;
	int r = file_begin(&c, f);

	if (r < 0)
		return r;
	r = libssh2_sftp_fstat_ex(f->h, &attrs, 0);
	if (r == 0)
		attrs_to_stat(&attrs, out);
	else
		r = call_error(&c, r);
	call_end(&c);
	return r;
}

static int sftp_file_close(struct filestore_file *file)
{
	struct sftp_file *f = sftp_file(file);
	struct sftp *b = backend(file->fs);
	struct call c = { .what = "close" };
	LIBSSH2_SFTP_HANDLE *h = NULL;
	int r = file_begin(&c, f);

	if (r == 0) {
		g_mutex_lock(&b->mutex);
		h = g_steal_pointer(&f->h);
		f->s->files = g_list_remove(f->s->files, f);
		g_mutex_unlock(&b->mutex);
		r = libssh2_sftp_close_handle(h);
		if (r != 0)
			r = call_error(&c, r);
		call_end(&c);
	} else {
		/* stale (nothing to close) or its session stayed busy: hand the
		 * handle to the session, which closes it when next used */
		g_mutex_lock(&b->mutex);
		f->s->files = g_list_remove(f->s->files, f);
		if (f->h && f->generation == f->s->generation) {
			struct orphan *o = g_new0(struct orphan, 1);

			o->handle = f->h;
			o->generation = f->generation;
			f->s->orphans = g_slist_prepend(f->s->orphans, o);
		}
		g_mutex_unlock(&b->mutex);
		/* a file whose connection is gone is closed as far as anyone can tell */
		if (r == -EIO)
			r = 0;
		ep_error_clear();
	}
	g_free(f->path);
	g_free(f);
	return r;
}

/* ---- open and close the store ---- */

/* A string from [filestore], or def. */
static char *config_string(GKeyFile *config, const char *key, const char *def)
{
	char *s = g_key_file_get_string(config, "filestore", key, NULL);

	if (s && !s[0])
		g_clear_pointer(&s, g_free);
	return s ? s : g_strdup(def);
}

static int config_int(GKeyFile *config, const char *key, int def, int min, int max, int *out)
{
	g_autoptr(GError) error = NULL;
	int v = g_key_file_get_integer(config, "filestore", key, &error);

	if (error) {
		if (!g_error_matches(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND))
			return ep_errorf(EINVAL, "[filestore] %s: %s", key, error->message);
		v = def;
	}
	if (v < min || v > max)
		return ep_errorf(EINVAL, "[filestore] %s must be %d..%d, not %d", key, min, max, v);
	*out = v;
	return 0;
}

static void sftp_free(struct sftp *b)
{
	for (int i = 0; b->sessions && i < b->n_sessions; i++)
		session_close(&b->sessions[i], true);
	g_free(b->sessions);
	g_mutex_clear(&b->mutex);
	g_cond_clear(&b->idle);
	g_free(b->host);
	g_free(b->user);
	g_free(b->key);
	g_free(b->public_key);
	g_free(b->known_hosts);
	g_free(b->root);
	g_free(b->down_message);
	g_free(b);
}

/* A readable regular file, or EINVAL naming the key. */
static int check_file_key(const char *key, const char *path)
{
	if (!path)
		return ep_errorf(EINVAL, "[filestore] %s is required for the sftp backend", key);
	if (access(path, R_OK) < 0)
		return ep_errorf(EINVAL, "[filestore] %s %s: %s", key, path, g_strerror(errno));
	return 0;
}

static int sftp_open(struct filestore *fs, GKeyFile *config)
{
	g_autofree char *confine = config_string(config, "confine", "check");
	struct sftp *b = g_new0(struct sftp, 1);
	struct call c = { .b = b, .what = "file store" };
	g_autoptr(GError) error = NULL;
	bool owners = g_key_file_get_boolean(config, "filestore", "owners", &error);
	int r, pool_size = 0;

	if (error && !g_error_matches(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND))
		return ep_errorf(EINVAL, "[filestore] owners must be true or false: %s", error->message);
	if (GPOINTER_TO_INT(g_once(&libssh2_once, libssh2_setup, NULL)) != 0)
		return ep_errorf(EIO, "cannot initialise libssh2");
	g_mutex_init(&b->mutex);
	g_cond_init(&b->idle);
	b->fs = fs;
	b->host = config_string(config, "host", NULL);
	b->user = config_string(config, "user", g_get_user_name());
	b->key = config_string(config, "key", NULL);
	b->public_key = config_string(config, "public_key", NULL);
	b->known_hosts = config_string(config, "known_hosts", NULL);
	b->root = config_string(config, "root", ".");
	b->check_symlinks = strcmp(confine, "server") != 0;
	r = config_int(config, "port", SFTP_DEFAULT_PORT, 1, 65535, &b->port);
	if (r == 0)
		r = config_int(config, "pool_size", SFTP_DEFAULT_POOL, 1, SFTP_MAX_POOL, &pool_size);
	if (r == 0 && !b->host)
		r = ep_errorf(EINVAL, "[filestore] host is required for the sftp backend");
	if (r == 0 && strcmp(confine, "check") != 0 && strcmp(confine, "server") != 0)
		r = ep_errorf(EINVAL, "[filestore] confine must be check or server, not '%s'", confine);
	if (r == 0)
		r = check_file_key("key", b->key);
	if (r == 0 && b->public_key)
		r = check_file_key("public_key", b->public_key);
	if (r == 0)
		r = check_file_key("known_hosts", b->known_hosts);
	if (r < 0) {
		sftp_free(b);
		return r;
	}
	b->n_sessions = pool_size;
	b->sessions = g_new0(struct session, pool_size);
	for (int i = 0; i < pool_size; i++) {
		b->sessions[i].b = b;
		b->sessions[i].index = i;
		b->sessions[i].sock = -1;
	}
	fs->priv = b;
	fs->description = g_strdup_printf("sftp %s@%s:%s (port %d)", b->user, b->host, b->root, b->port);
	fs->time_gran = 1000000000;
	/* a first connection now: a wrong key, host key or root is a configuration error */
	c.path = fs->description;
	c.deadline = g_get_monotonic_time() + (gint64)fs->timeout_ms * 1000;
	r = call_begin(&c);
	if (r < 0) {
		fs->priv = NULL;
		g_clear_pointer(&fs->description, g_free);
		sftp_free(b);
		return r;
	}
	fs->caps = FILESTORE_CAP_FOLLOW_SYMLINKS | (c.s->lsetstat ? FILESTORE_CAP_SYMLINK_TIMES : 0) |
	           (owners ? FILESTORE_CAP_CHOWN : 0);
	call_end(&c);
	return 0;
}

static void sftp_close(struct filestore *fs)
{
	struct sftp *b = backend(fs);

	if (b)
		sftp_free(b);
	fs->priv = NULL;
}

const struct filestore_ops filestore_sftp_ops = {
	.name = "sftp",
	.open = sftp_open,
	.close = sftp_close,
	.ping = sftp_ping,
	.lstat = sftp_lstat,
	.readdir = sftp_readdir,
	.mkdir = sftp_mkdir,
	.rmdir = sftp_rmdir,
	.unlink = sftp_unlink,
	.rename = sftp_rename,
	.symlink = sftp_symlink,
	.readlink = sftp_readlink,
	.chmod = sftp_chmod,
	.utimens = sftp_utimens,
	.truncate = sftp_truncate,
	.statvfs = sftp_statvfs,
	.chown = sftp_chown,
	.file_open = sftp_file_open,
	.pread = sftp_pread,
	.pwrite = sftp_pwrite,
	.fsync = sftp_fsync,
	.ftruncate = sftp_ftruncate,
	.fstat = sftp_fstat,
	.file_close = sftp_file_close,
};
