/* SPDX-License-Identifier: MIT */
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "init.h"
#include "proto.h"
#include "spawn.h"

#define SPAWN_PAYLOAD_MAX (16u * 1024u * 1024u)

typedef struct command {
        uint64_t id;
        pid_t pid;
        int spawn_errno;
} command;

typedef struct init_state {
        int ctl;
        command *cmds;
        size_t n_cmds, cap_cmds;
        char *buf; /* receive buffer, SP_MSG_INLINE_MAX + header */
} init_state;

static int track(init_state *s, uint64_t id, pid_t pid, int spawn_errno) {
        if (s->n_cmds == s->cap_cmds) {
                size_t cap = s->cap_cmds ? s->cap_cmds * 2 : 16;
                command *n = realloc(s->cmds, cap * sizeof(*n));
                if (!n)
                        return -ENOMEM;
                s->cmds = n;
                s->cap_cmds = cap;
        }
        s->cmds[s->n_cmds++] = (command){.id = id, .pid = pid, .spawn_errno = spawn_errno};
        return 0;
}

static command *find_by_id(init_state *s, uint64_t id) {
        for (size_t i = 0; i < s->n_cmds; i++)
                if (s->cmds[i].id == id)
                        return &s->cmds[i];
        return NULL;
}

/* Split n NUL-terminated strings from *p into a NULL-terminated vector. */
static char **split_strings(char **p, const char *end, uint32_t n) {
        char **v = calloc((size_t) n + 1, sizeof(char *));
        if (!v)
                return NULL;
        for (uint32_t i = 0; i < n; i++) {
                char *nul = memchr(*p, 0, (size_t) (end - *p));
                if (!nul) {
                        free(v);
                        return NULL;
                }
                v[i] = *p;
                *p = nul + 1;
        }
        return v;
}

static char *read_memfd_payload(int fd, size_t *ret_len) {
        struct stat st;
        if (fstat(fd, &st) < 0 || st.st_size <= 0 || (uint64_t) st.st_size > SPAWN_PAYLOAD_MAX)
                return NULL;
        char *b = malloc((size_t) st.st_size);
        if (!b)
                return NULL;
        ssize_t n = pread(fd, b, (size_t) st.st_size, 0);
        if (n != st.st_size) {
                free(b);
                return NULL;
        }
        *ret_len = (size_t) n;
        return b;
}

static int handle_spawn(init_state *s, const sp_msg_hdr *h, int fds[SP_MSG_MAX_FDS], size_t nfds) {
        _cleanup_free_ char *heap = NULL;
        _cleanup_free_ char **argv = NULL, **envp = NULL;
        const char *payload = (const char *) (h + 1);
        size_t len = h->len;
        sp_msg_spawn m;
        int spawn_errno = 0;
        pid_t pid;
        int r;

        if (nfds < 3)
                return -EBADMSG;
        if (h->flags & SP_SPAWN_PAYLOAD_IN_MEMFD) {
                if (nfds < 4 || !(heap = read_memfd_payload(fds[3], &len)))
                        return -E2BIG;
                payload = heap;
        }
        if (len < sizeof(m))
                return -EBADMSG;
        memcpy(&m, payload, sizeof(m));
        if (m.strings_len != len - sizeof(m) || m.argc == 0)
                return -EBADMSG;
        char *p = (char *) payload + sizeof(m), *end = p + m.strings_len;
        argv = split_strings(&p, end, m.argc);
        envp = argv ? split_strings(&p, end, m.envc) : NULL;
        if (!argv || !envp || !memchr(p, 0, (size_t) (end - p)))
                return -EBADMSG;

        sp_spawn_req req = {
                .argv = argv, .envp = envp, .cwd = p, .uid = m.uid, .gid = m.gid,
                .fds = {fds[0], fds[1], fds[2]}, .ctty = m.flags & SP_SPAWN_CTTY,
        };
        r = sp_spawn_command(&req, &pid, &spawn_errno);
        if (r < 0)
                return r;
        r = track(s, h->id, pid, spawn_errno);
        if (r < 0)
                return r;
        int32_t pid32 = pid;
        return sp_msg_send(s->ctl, SP_MSG_STARTED, h->id, 0, 0, &pid32, sizeof(pid32), NULL, 0);
}

static void reap(init_state *s) {
        for (;;) {
                struct rusage ru;
                int status;
                pid_t pid = wait4(-1, &status, WNOHANG, &ru);
                if (pid <= 0)
                        return;
                for (size_t i = 0; i < s->n_cmds; i++) {
                        if (s->cmds[i].pid != pid)
                                continue;
                        sp_msg_exit e = {
                                .exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                                .signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0,
                                .spawn_errno = s->cmds[i].spawn_errno,
                                .cpu_usec = (uint64_t) ru.ru_utime.tv_sec * 1000000u + (uint64_t) ru.ru_utime.tv_usec +
                                            (uint64_t) ru.ru_stime.tv_sec * 1000000u + (uint64_t) ru.ru_stime.tv_usec,
                                .maxrss_kib = (uint64_t) ru.ru_maxrss,
                        };
                        (void) sp_msg_send(s->ctl, SP_MSG_EXITED, s->cmds[i].id, 0, 0, &e, sizeof(e), NULL, 0);
                        s->cmds[i] = s->cmds[--s->n_cmds];
                        break;
                }
                /* anything else was an orphan: reaped, nothing to report */
        }
}

/* Returns < 0 when the control socket is gone. */
static int handle_control(init_state *s) {
        int fds[SP_MSG_MAX_FDS];
        size_t nfds = 0;
        ssize_t n = sp_msg_recv(s->ctl, s->buf, sizeof(sp_msg_hdr) + SP_MSG_INLINE_MAX, MSG_DONTWAIT, fds, &nfds);
        if (n == -EAGAIN)
                return 0;
        if (n == 0 || n == -ECONNRESET || n == -EPIPE)
                return -EPIPE;
        if (n < 0)
                return 0; /* a malformed packet from our own caller: drop it */

        const sp_msg_hdr *h = (const sp_msg_hdr *) s->buf;
        int r = 0;
        switch (h->type) {
        case SP_MSG_SPAWN:
                r = handle_spawn(s, h, fds, nfds);
                if (r < 0) {
                        sp_msg_exit e = {.exit_code = 126, .spawn_errno = -r};
                        (void) sp_msg_send(s->ctl, SP_MSG_EXITED, h->id, r, 0, &e, sizeof(e), NULL, 0);
                }
                break;
        case SP_MSG_SIGNAL: {
                command *c = find_by_id(s, h->id);
                /* The command leads its own session: the whole group goes. */
                if (c)
                        (void) kill(-c->pid, h->err);
                break;
        }
        default:
                break;
        }
        for (size_t i = 0; i < nfds; i++)
                safe_close(fds[i]);
        return 0;
}

void sp_init_run(int ctl) {
        init_state s = {.ctl = ctl};
        sigset_t chld;
        int sfd;

        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        sigprocmask(SIG_BLOCK, &chld, NULL);
        sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
        s.buf = malloc(sizeof(sp_msg_hdr) + SP_MSG_INLINE_MAX);
        if (sfd < 0 || !s.buf)
                _exit(1);

        for (;;) {
                struct pollfd p[2] = {{.fd = ctl, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        _exit(1);
                }
                if (p[1].revents) {
                        struct signalfd_siginfo si;
                        while (read(sfd, &si, sizeof(si)) > 0)
                                ;
                        reap(&s);
                }
                if (p[0].revents & POLLIN) {
                        if (handle_control(&s) < 0)
                                _exit(0);
                } else if (p[0].revents & (POLLHUP | POLLERR))
                        _exit(0);
        }
}
