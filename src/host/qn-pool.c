#include "config.h"

#include "qn-pool.h"

#include <errno.h>
#include <fcntl.h>
#include <numa.h>
#include <numaif.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib-unix.h>
#include <json-glib/json-glib.h>

#include "qn-error.h"
#include "qn-json.h"
#include "qn-ledger.h"
#include "qn-size.h"

#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6 /* include/uapi/linux/magic.h */
#endif

/* A refill step: fallocate at most this much under the ledger lock, so that a launch waits
 * for at most one step. */
#define QN_POOL_STEP (128 * QN_MiB)
/* Refill starts this long after the last take: the launch that took a file is still
 * starting QEMU then, and zeroing beside it takes memory bandwidth (and, on a small host, the
 * CPU) it would use. Measured in bench/launch.c "Warm pool". */
#define QN_POOL_QUIET_US (2 * G_TIME_SPAN_SECOND)

typedef struct {
    gint fd;
    guint64 bytes;
} QnPoolFile;

/* What the pool keeps for one `pool` entry. */
typedef struct {
    guint node;
    guint64 page_size;
    guint64 target;          /* bytes to keep ready */
    gchar *dir;              /* the hugetlbfs mount its files are made on */
    GArray *files;           /* QnPoolFile, ready */
    guint64 ready;           /* sum of files[].bytes */
    guint64 filling;         /* bytes of the file being made (not yet ready) */
    guint64 made;            /* bytes allocated since the start */
    guint64 last_take;       /* bytes of the last take: the next files are made that size */
    gchar *error;            /* why the last refill step failed, or NULL */
} QnPoolShelf;

typedef struct {
    const QnConfig *cfg;
    GMutex lock;             /* shelves' files, ready, filling, error */
    GCond wake;              /* a take or a drain: the refill thread looks again */
    GPtrArray *shelves;      /* QnPoolShelf* */
    gboolean stop;
    gint64 last_take_us;     /* monotonic time of the last take, 0: none yet */
    GMainLoop *loop;
    uid_t allowed[3];        /* peers that may take: root, us, libvirt-qemu */
} QnPool;

static void
qn_pool_shelf_free(gpointer p)
{
    QnPoolShelf *s = p;

    for (guint i = 0; i < s->files->len; i++) {
        close(g_array_index(s->files, QnPoolFile, i).fd);
    }
    g_array_unref(s->files);
    g_free(s->dir);
    g_free(s->error);
    g_free(s);
}

/* The next file's size: the last take's (fleets launch the same sizes again), else the
 * largest power-of-two number of pages that fits the deficit. */
static guint64
qn_pool_next_size(const QnPoolShelf *s)
{
    guint64 deficit = s->target - s->ready;
    guint64 pages = deficit / s->page_size;
    guint64 p2 = 1;

    if (s->last_take != 0 && s->last_take <= deficit) {
        return s->last_take;
    }
    while (p2 * 2 <= pages) {
        p2 *= 2;
    }
    return p2 * s->page_size;
}

/* Waits until no take for QN_POOL_QUIET_US. Returns TRUE when the service stops. */
static gboolean
qn_pool_wait_quiet(QnPool *pool)
{
    gboolean stop;

    g_mutex_lock(&pool->lock);
    while (!pool->stop && pool->last_take_us != 0 &&
           g_get_monotonic_time() < pool->last_take_us + QN_POOL_QUIET_US) {
        g_cond_wait_until(&pool->wake, &pool->lock, pool->last_take_us + QN_POOL_QUIET_US);
    }
    stop = pool->stop;
    g_mutex_unlock(&pool->lock);
    return stop;
}

/* One refill step of @s: grow the file being made by at most QN_POOL_STEP under the ledger
 * lock. Called with pool->lock NOT held. Returns FALSE on failure (s->error says why). */
static gboolean
qn_pool_fill_step(QnPool *pool, QnPoolShelf *s, gint fd, guint64 size, guint64 *done)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(QnLedger) ledger = qn_ledger_open(pool->cfg->state_dir, &error);
    guint64 step = MAX(QN_POOL_STEP / s->page_size, 1) * s->page_size;
    guint64 len = MIN(step, size - *done);
    int rc;

    if (ledger == NULL) {
        g_mutex_lock(&pool->lock);
        g_free(s->error);
        s->error = g_strdup(error->message);
        g_mutex_unlock(&pool->lock);
        return FALSE;
    }
    while ((rc = fallocate(fd, 0, (off_t)*done, (off_t)len)) != 0 && errno == EINTR) {
    }
    if (rc != 0) {
        g_mutex_lock(&pool->lock);
        g_free(s->error);
        s->error = g_strdup_printf("node %u: fallocate: %s", s->node, g_strerror(errno));
        g_mutex_unlock(&pool->lock);
        return FALSE;
    }
    *done += len;
    g_mutex_lock(&pool->lock);
    s->filling = *done;
    s->made += len;
    if (*done == size) {
        QnPoolFile f = { fd, size };

        g_array_append_val(s->files, f);
        s->ready += size;
        s->filling = 0;
        g_clear_pointer(&s->error, g_free);
    }
    g_mutex_unlock(&pool->lock);
    return TRUE;
}

/* Makes one file for @s; FALSE when it could not (the shelf waits for a wake-up). */
static gboolean
qn_pool_fill_one(QnPool *pool, QnPoolShelf *s, guint64 size)
{
    struct bitmask *nodes = numa_allocate_nodemask();
    guint64 done = 0;
    gint fd;

    numa_bitmask_setbit(nodes, s->node);
    /* hugetlbfs allocates a fallocate()d page under the calling thread's policy */
    if (set_mempolicy(MPOL_BIND, nodes->maskp, nodes->size + 1) != 0) {
        numa_free_nodemask(nodes);
        return FALSE;
    }
    numa_free_nodemask(nodes);
    fd = open(s->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {
        g_mutex_lock(&pool->lock);
        g_free(s->error);
        s->error = g_strdup_printf("node %u: create a file on '%s': %s", s->node, s->dir,
                                   g_strerror(errno));
        g_mutex_unlock(&pool->lock);
        return FALSE;
    }
    while (done < size) {
        if (qn_pool_wait_quiet(pool) || !qn_pool_fill_step(pool, s, fd, size, &done)) {
            close(fd); /* the pages of a half-made file go back to the kernel */
            g_mutex_lock(&pool->lock);
            s->filling = 0;
            g_mutex_unlock(&pool->lock);
            return FALSE;
        }
    }
    return TRUE;
}

/* The refill thread: at idle priority (it runs only when no launch wants the CPU), tops
 * every shelf up; sleeps until a take, or 5 s after a failure. */
static gpointer
qn_pool_refill(gpointer data)
{
    QnPool *pool = data;
    struct sched_param sp = { 0 };

    (void)sched_setscheduler(0, SCHED_IDLE, &sp);
    for (;;) {
        gboolean worked = FALSE, failed = FALSE;

        for (guint i = 0; i < pool->shelves->len; i++) {
            QnPoolShelf *s = g_ptr_array_index(pool->shelves, i);
            guint64 size = 0;

            g_mutex_lock(&pool->lock);
            if (!pool->stop && s->ready < s->target) {
                size = qn_pool_next_size(s);
            }
            g_mutex_unlock(&pool->lock);
            if (size == 0) {
                continue;
            }
            if (qn_pool_fill_one(pool, s, size)) {
                worked = TRUE;
            } else {
                failed = TRUE;
            }
        }
        g_mutex_lock(&pool->lock);
        if (pool->stop) {
            g_mutex_unlock(&pool->lock);
            return NULL;
        }
        if (!worked) {
            gint64 until = g_get_monotonic_time() + (failed ? 5 : 3600) * G_TIME_SPAN_SECOND;

            g_cond_wait_until(&pool->wake, &pool->lock, until);
        }
        g_mutex_unlock(&pool->lock);
    }
}

static gboolean
qn_pool_peer_allowed(const QnPool *pool, gint fd, gboolean drain, struct ucred *ret_cred)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        return FALSE;
    }
    *ret_cred = cred;
    for (guint i = 0; i < (drain ? 2 : G_N_ELEMENTS(pool->allowed)); i++) {
        if (cred.uid == pool->allowed[i]) {
            return TRUE;
        }
    }
    return FALSE;
}

static gchar *
qn_pool_status_json(QnPool *pool)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autoptr(JsonNode) root = NULL;

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "version");
    json_builder_add_int_value(b, 2); /* the JSON family's version (README) */
    json_builder_set_member_name(b, "shelves");
    json_builder_begin_array(b);
    g_mutex_lock(&pool->lock);
    for (guint i = 0; i < pool->shelves->len; i++) {
        const QnPoolShelf *s = g_ptr_array_index(pool->shelves, i);

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "node");
        json_builder_add_int_value(b, s->node);
        json_builder_set_member_name(b, "page_size");
        json_builder_add_int_value(b, (gint64)s->page_size);
        json_builder_set_member_name(b, "target_bytes");
        json_builder_add_int_value(b, (gint64)s->target);
        json_builder_set_member_name(b, "ready_bytes");
        json_builder_add_int_value(b, (gint64)s->ready);
        json_builder_set_member_name(b, "files");
        json_builder_add_int_value(b, s->files->len);
        json_builder_set_member_name(b, "filling_bytes");
        json_builder_add_int_value(b, (gint64)s->filling);
        json_builder_set_member_name(b, "made_bytes");
        json_builder_add_int_value(b, (gint64)s->made);
        json_builder_set_member_name(b, "error");
        if (s->error != NULL) {
            json_builder_add_string_value(b, s->error);
        } else {
            json_builder_add_null_value(b);
        }
        json_builder_end_object(b);
    }
    g_mutex_unlock(&pool->lock);
    json_builder_end_array(b);
    json_builder_end_object(b);
    root = json_builder_get_root(b);
    json_generator_set_root(gen, root);
    return json_generator_to_data(gen, NULL);
}

/* `take NODE PAGESIZE BYTES`: the smallest ready file of that shelf that holds BYTES, cut to
 * exactly BYTES (ftruncate frees the tail's pages to the kernel: hugetlbfs
 * hugetlb_vmtruncate), or -1. */
static gint
qn_pool_take_file(QnPool *pool, guint node, guint64 ps, guint64 bytes)
{
    gint fd = -1;

    g_mutex_lock(&pool->lock);
    for (guint i = 0; i < pool->shelves->len; i++) {
        QnPoolShelf *s = g_ptr_array_index(pool->shelves, i);
        gint best = -1;

        if (s->node != node || s->page_size != ps || bytes % ps != 0) {
            continue;
        }
        for (guint k = 0; k < s->files->len; k++) {
            const QnPoolFile *f = &g_array_index(s->files, QnPoolFile, k);

            if (f->bytes >= bytes &&
                (best < 0 || f->bytes < g_array_index(s->files, QnPoolFile, best).bytes)) {
                best = (gint)k;
            }
        }
        if (best >= 0) {
            QnPoolFile f = g_array_index(s->files, QnPoolFile, best);

            if (f.bytes == bytes || ftruncate(f.fd, (off_t)bytes) == 0) {
                g_array_remove_index(s->files, (guint)best);
                s->ready -= f.bytes;
                s->last_take = bytes;
                pool->last_take_us = g_get_monotonic_time();
                fd = f.fd;
                g_cond_signal(&pool->wake);
            }
        }
    }
    g_mutex_unlock(&pool->lock);
    return fd;
}

static void
qn_pool_reply(gint fd, const char *text, gint pass_fd)
{
    struct iovec iov = { (void *)text, strlen(text) };
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

    if (pass_fd >= 0) {
        struct cmsghdr *c;

        memset(&u, 0, sizeof(u));
        msg.msg_control = u.buf;
        msg.msg_controllen = sizeof(u.buf);
        c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    (void)sendmsg(fd, &msg, MSG_NOSIGNAL);
}

/* One request from one connection; the peer's bytes are checked, never trusted. */
static void
qn_pool_serve(QnPool *pool, gint fd)
{
    char buf[QN_POOL_REQUEST_MAX + 1];
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_TRUNC);
    g_auto(GStrv) words = NULL;
    struct ucred cred = { .uid = (uid_t)-1 };
    gboolean drain;

    if (n <= 0 || n > QN_POOL_REQUEST_MAX) {
        qn_pool_reply(fd, "error request too long or empty", -1);
        return;
    }
    buf[n] = '\0';
    words = g_strsplit(g_strstrip(buf), " ", 5);
    drain = strcmp(words[0], "drain") == 0;
    if (!qn_pool_peer_allowed(pool, fd, drain, &cred)) {
        g_message("pool: refused '%s' from uid %d", drain ? "drain" : "request", (int)cred.uid);
        qn_pool_reply(fd, "error not allowed", -1);
        return;
    }
    if (strcmp(words[0], "status") == 0 && words[1] == NULL) {
        g_autofree gchar *json = qn_pool_status_json(pool);

        qn_pool_reply(fd, json, -1);
    } else if (drain && words[1] == NULL) {
        g_mutex_lock(&pool->lock);
        pool->stop = TRUE;
        g_cond_signal(&pool->wake);
        g_mutex_unlock(&pool->lock);
        g_main_loop_quit(pool->loop);
        qn_pool_reply(fd, "ok", -1); /* the files close when the service has stopped */
    } else if (strcmp(words[0], "take") == 0 && g_strv_length(words) == 4) {
        guint64 node, ps, bytes;
        gint file;

        if (!g_ascii_string_to_unsigned(words[1], 10, 0, 4095, &node, NULL) ||
            !g_ascii_string_to_unsigned(words[2], 10, 4096, G_MAXUINT64, &ps, NULL) ||
            !g_ascii_string_to_unsigned(words[3], 10, 1, G_MAXUINT64, &bytes, NULL)) {
            qn_pool_reply(fd, "error bad take", -1);
            return;
        }
        file = qn_pool_take_file(pool, (guint)node, ps, bytes);
        /* The file becomes the peer's: QEMU reopens it by /proc/self/fd/N, which checks the
         * inode's owner and mode (ours, 0600), so libvirt-qemu must own it. */
        if (file >= 0 && fchown(file, cred.uid, cred.gid) != 0) {
            close(file); /* its pages go back; the peer allocates itself */
            file = -1;
        }
        if (file < 0) {
            qn_pool_reply(fd, "none", -1);
            return;
        }
        {
            g_autofree gchar *ok = g_strdup_printf("ok %" G_GUINT64_FORMAT, bytes);

            g_message("pool: %" G_GUINT64_FORMAT " bytes of node %u to uid %d", bytes,
                      (guint)node, (int)cred.uid);
            qn_pool_reply(fd, ok, file);
            close(file); /* the peer holds it now (or nobody: the pages go back) */
        }
    } else {
        qn_pool_reply(fd, "error unknown request", -1);
    }
}

static gboolean
qn_pool_on_accept(gint fd, GIOCondition cond, gpointer data)
{
    QnPool *pool = data;
    gint c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

    (void)cond;
    if (c >= 0) {
        struct timeval tv = { 1, 0 };

        /* a peer that connects and says nothing holds us for 1 s at most */
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        qn_pool_serve(pool, c);
        close(c);
    }
    return G_SOURCE_CONTINUE;
}

static gboolean
qn_pool_on_signal(gpointer data)
{
    QnPool *pool = data;

    g_mutex_lock(&pool->lock);
    pool->stop = TRUE;
    g_cond_signal(&pool->wake);
    g_mutex_unlock(&pool->lock);
    g_main_loop_quit(pool->loop);
    return G_SOURCE_REMOVE;
}

/* The listening socket, after the pool lock: one service per state directory. */
static gint
qn_pool_listen(const char *state_dir, gint *ret_lock, GError **error)
{
    g_autofree gchar *lock = g_build_filename(state_dir, "pool.lock", NULL);
    g_autofree gchar *path = g_build_filename(state_dir, QN_POOL_SOCKET, NULL);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    gint lfd, fd;

    lfd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (lfd < 0 || flock(lfd, LOCK_EX | LOCK_NB) != 0) {
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "pool lock '%s': %s", lock,
                    errno == EWOULDBLOCK ? "another pool service runs" : g_strerror(errno));
        if (lfd >= 0) {
            close(lfd);
        }
        return -1;
    }
    if (strlen(path) >= sizeof(addr.sun_path)) {
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "pool socket '%s': path too long", path);
        close(lfd);
        return -1;
    }
    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    unlink(path); /* a killed service's socket: we hold the lock, nobody serves it */
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        chmod(path, 0666) != 0 || listen(fd, 64) != 0) {
        /* 0666: every user may connect; SO_PEERCRED decides who is served */
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "pool socket '%s': %s", path,
                    g_strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        close(lfd);
        return -1;
    }
    *ret_lock = lfd;
    return fd;
}

gboolean
qn_pool_run(const QnConfig *cfg, const QnTopology *topo, GError **error)
{
    QnPool pool = { .cfg = cfg };
    GThread *refill;
    gint lfd = -1, fd;
    struct passwd *pw = getpwnam("libvirt-qemu");
    g_autoptr(QnLedger) ledger = NULL;

    g_return_val_if_fail(cfg != NULL && topo != NULL, FALSE);
    if (cfg->pool->len == 0) {
        g_set_error(error, QN_ERROR, QN_ERROR_BAD_CONFIG,
                    "pool: nothing to keep (set pool or QEMU_NUMA_POOL, e.g. 0:4G)");
        return FALSE;
    }
    pool.shelves = g_ptr_array_new_with_free_func(qn_pool_shelf_free);
    for (guint i = 0; i < cfg->pool->len; i++) {
        const QnPoolSpec *spec = &g_array_index(cfg->pool, QnPoolSpec, i);
        QnPoolShelf *s = g_new0(QnPoolShelf, 1);
        const QnHugetlbfsMount *m;

        s->node = spec->node;
        s->page_size = spec->page_size ? spec->page_size : topo->default_page_size;
        s->target = spec->bytes - spec->bytes % MAX(s->page_size, 1);
        s->files = g_array_new(FALSE, TRUE, sizeof(QnPoolFile));
        g_ptr_array_add(pool.shelves, s);
        m = qn_topology_mount_for(topo, s->page_size);
        if (cfg->hugetlbfs[0] != '\0') {
            s->dir = g_strdup(cfg->hugetlbfs);
        } else if (m != NULL) {
            s->dir = g_strdup(m->path);
        }
        if (s->dir == NULL || qn_topology_node(topo, s->node) == NULL || s->target == 0) {
            g_autofree gchar *ps = qn_size_format(s->page_size);

            g_set_error(error, QN_ERROR, QN_ERROR_BAD_CONFIG,
                        "pool entry %u:%s: no such node or no hugetlbfs mount of %s pages",
                        s->node, ps, ps);
            g_ptr_array_unref(pool.shelves);
            return FALSE;
        }
    }
    /* the state directory made and checked the ledger's way */
    ledger = qn_ledger_open(cfg->state_dir, error);
    if (ledger == NULL) {
        g_ptr_array_unref(pool.shelves);
        return FALSE;
    }
    g_clear_pointer(&ledger, qn_ledger_close);
    fd = qn_pool_listen(cfg->state_dir, &lfd, error);
    if (fd < 0) {
        g_ptr_array_unref(pool.shelves);
        return FALSE;
    }
    pool.allowed[0] = 0;
    pool.allowed[1] = geteuid();
    pool.allowed[2] = pw != NULL ? pw->pw_uid : 0;
    g_mutex_init(&pool.lock);
    g_cond_init(&pool.wake);
    pool.loop = g_main_loop_new(NULL, FALSE);
    g_unix_fd_add(fd, G_IO_IN, qn_pool_on_accept, &pool);
    g_unix_signal_add(SIGTERM, qn_pool_on_signal, &pool);
    g_unix_signal_add(SIGINT, qn_pool_on_signal, &pool);
    refill = g_thread_new("qn-pool-refill", qn_pool_refill, &pool);
    g_main_loop_run(pool.loop);
    g_thread_join(refill);
    {
        g_autofree gchar *path = g_build_filename(cfg->state_dir, QN_POOL_SOCKET, NULL);

        unlink(path);
    }
    close(fd);
    g_ptr_array_unref(pool.shelves); /* closes every file: the pages go back to the kernel */
    g_main_loop_unref(pool.loop);
    g_cond_clear(&pool.wake);
    g_mutex_clear(&pool.lock);
    close(lfd);
    return TRUE;
}

/* Connects to the service; -1 when none listens. */
static gint
qn_pool_connect(const char *state_dir)
{
    g_autofree gchar *path = g_build_filename(state_dir, QN_POOL_SOCKET, NULL);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    struct timeval tv = { 5, 0 };
    gint fd;

    if (strlen(path) >= sizeof(addr.sun_path)) {
        return -1;
    }
    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends @request, receives the reply (and at most one fd) into @buf (NUL-terminated). */
static gssize
qn_pool_call(gint fd, const char *request, char *buf, gsize size, gint *ret_fd)
{
    union {
        char b[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = { buf, size - 1 };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
                          .msg_controllen = sizeof(u.b) };
    struct cmsghdr *c;
    gssize n;

    *ret_fd = -1;
    if (send(fd, request, strlen(request), MSG_NOSIGNAL) < 0) {
        return -1;
    }
    n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0) {
        return -1;
    }
    buf[n] = '\0';
    for (c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
            c->cmsg_len == CMSG_LEN(sizeof(int))) {
            memcpy(ret_fd, CMSG_DATA(c), sizeof(int));
        }
    }
    if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) {
        if (*ret_fd >= 0) {
            close(*ret_fd);
            *ret_fd = -1;
        }
        return -1;
    }
    return n;
}

gint
qn_pool_take(const char *state_dir, guint node, guint64 page_size, guint64 bytes,
             GError **error)
{
    gint fd = qn_pool_connect(state_dir), file = -1;
    g_autofree gchar *req = g_strdup_printf("take %u %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT,
                                            node, page_size, bytes);
    g_autofree gchar *want = g_strdup_printf("ok %" G_GUINT64_FORMAT, bytes);
    char buf[64];
    struct stat st;
    struct statfs sfs;

    if (fd < 0) {
        return -1;
    }
    if (qn_pool_call(fd, req, buf, sizeof(buf), &file) < 0 || strcmp(buf, want) != 0) {
        close(fd);
        if (file >= 0) {
            close(file);
        }
        return -1;
    }
    close(fd);
    /* the pool's word is checked: a regular hugetlbfs file of that page size and size */
    if (file < 0 || fstat(file, &st) != 0 || !S_ISREG(st.st_mode) ||
        (guint64)st.st_size != bytes || fstatfs(file, &sfs) != 0 ||
        sfs.f_type != HUGETLBFS_MAGIC || (guint64)sfs.f_bsize != page_size) {
        g_set_error(error, QN_ERROR, QN_ERROR_HUGEPAGES,
                    "pool: the file for node %u is not %" G_GUINT64_FORMAT " bytes of "
                    "hugetlbfs", node, bytes);
        if (file >= 0) {
            close(file);
        }
        return -1;
    }
    return file;
}

gchar *
qn_pool_request(const char *state_dir, const char *request, GError **error)
{
    gint fd = qn_pool_connect(state_dir), file = -1;
    g_autofree char *buf = g_malloc(QN_POOL_REPLY_MAX + 1);
    gssize n;

    if (fd < 0) {
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "no pool service on '%s/%s'",
                    state_dir, QN_POOL_SOCKET);
        return NULL;
    }
    n = qn_pool_call(fd, request, buf, QN_POOL_REPLY_MAX + 1, &file);
    close(fd);
    if (file >= 0) {
        close(file);
    }
    if (n < 0) {
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "pool service: %s: no reply", request);
        return NULL;
    }
    return g_steal_pointer(&buf);
}

GHashTable *
qn_pool_ready_pages(const char *state_dir, guint64 page_size)
{
    GHashTable *out = g_hash_table_new(g_direct_hash, g_direct_equal);
    g_autofree gchar *text = qn_pool_request(state_dir, "status", NULL);
    g_autoptr(JsonNode) root = NULL;
    JsonArray *shelves;

    if (text == NULL) {
        return out;
    }
    root = qn_json_parse_bounded(text, strlen(text), QN_JSON_MAX_DEPTH, QN_POOL_REPLY_MAX,
                                 NULL);
    if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root) ||
        !json_object_has_member(json_node_get_object(root), "shelves") ||
        !JSON_NODE_HOLDS_ARRAY(json_object_get_member(json_node_get_object(root), "shelves"))) {
        return out;
    }
    shelves = json_object_get_array_member(json_node_get_object(root), "shelves");
    for (guint i = 0; i < json_array_get_length(shelves); i++) {
        JsonNode *n = json_array_get_element(shelves, i);
        JsonObject *o;
        gint64 node, ps, ready;

        if (!JSON_NODE_HOLDS_OBJECT(n)) {
            continue;
        }
        o = json_node_get_object(n);
        node = json_object_get_int_member_with_default(o, "node", -1);
        ps = json_object_get_int_member_with_default(o, "page_size", 0);
        ready = json_object_get_int_member_with_default(o, "ready_bytes", 0);
        if (node >= 0 && ps > 0 && (guint64)ps == page_size && ready > 0) {
            g_hash_table_insert(out, GINT_TO_POINTER((gint)node),
                                GSIZE_TO_POINTER((gsize)((guint64)ready / (guint64)ps)));
        }
    }
    return out;
}

/* Adds the pool service's ready pages of every node and page size to `free` (@as_free) or
 * records them in `ours_ready`. */
static void
qn_pool_count(QnTopology *topo, const char *state_dir, gboolean as_free)
{
    g_autofree gchar *path = g_build_filename(state_dir, QN_POOL_SOCKET, NULL);

    if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
        return; /* no service: no connect, no cost */
    }
    for (guint i = 0; i < topo->page_sizes->len; i++) {
        guint64 ps = g_array_index(topo->page_sizes, guint64, i);
        g_autoptr(GHashTable) ready = qn_pool_ready_pages(state_dir, ps);
        GHashTableIter it;
        gpointer k, v;

        g_hash_table_iter_init(&it, ready);
        while (g_hash_table_iter_next(&it, &k, &v)) {
            const QnHostNode *n = qn_topology_node(topo, (guint)GPOINTER_TO_INT(k));
            QnHugepagePool *hp = n ? qn_host_node_pool(n, ps) : NULL;

            if (hp != NULL && as_free) {
                hp->free += GPOINTER_TO_SIZE(v);
            } else if (hp != NULL) {
                hp->ours_ready = GPOINTER_TO_SIZE(v);
            }
        }
    }
}

void
qn_pool_count_free(QnTopology *topo, const char *state_dir)
{
    qn_pool_count(topo, state_dir, TRUE);
}

void
qn_pool_count_ready(QnTopology *topo, const char *state_dir)
{
    qn_pool_count(topo, state_dir, FALSE);
}
