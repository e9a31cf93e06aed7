/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "caps.h"
#include "macro.h"
#include "spawn.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define CHILD_STACK_SIZE (256u * 1024u)
#define MAX_CANDIDATES 64

/* Everything the vfork child needs, prepared by the parent: the child must
 * not allocate (it shares the parent's memory and heap). */
typedef struct spawn_child {
        const sp_spawn_req *req;
        const char *candidates[MAX_CANDIDATES];
        size_t n_candidates;
        const char *cwd;
        volatile int failed_errno; /* written by the child, read after it execs or exits */
        volatile int failed_stage; /* 0: exec, 1: chdir, 2: setup */
} spawn_child;

static const char *env_get(char **envp, const char *key) {
        size_t k = strlen(key);
        for (char **e = envp; e && *e; e++)
                if (strncmp(*e, key, k) == 0 && (*e)[k] == '=')
                        return *e + k + 1;
        return NULL;
}

static void write_str(int fd, const char *s) {
        (void) !write(fd, s, strlen(s));
}

static _noreturn_ void child_fail(spawn_child *c, int stage, int err, const char *what) {
        const char *desc = strerrordesc_np(err);
        c->failed_errno = err;
        c->failed_stage = stage;
        /* Like a shell: the reason goes to the command's own stderr. */
        write_str(2, "sandpool: ");
        write_str(2, what);
        write_str(2, ": ");
        write_str(2, desc ? desc : "error");
        write_str(2, "\n");
        _exit(stage == 0 && err == ENOENT ? 127 : 126);
}

static int child_main(void *arg) {
        spawn_child *c = arg;
        const sp_spawn_req *r = c->req;
        sigset_t none;
        int fds[3];

        /* PID 1 blocks SIGCHLD for its signalfd; the command starts clean. */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (setsid() < 0)
                child_fail(c, 2, errno, "setsid");

        /* Move the three fds out of the way first: one of them may already
         * sit on 0-2. */
        for (int i = 0; i < 3; i++) {
                fds[i] = fcntl(r->fds[i], F_DUPFD_CLOEXEC, 3);
                if (fds[i] < 0)
                        child_fail(c, 2, errno, "dup");
        }
        for (int i = 0; i < 3; i++)
                if (dup2(fds[i], i) < 0)
                        child_fail(c, 2, errno, "dup2");
        /* A terminal's line discipline signals its foreground group (Ctrl-C)
         * only once a session has it as its controlling terminal. */
        if (r->ctty && ioctl(0, TIOCSCTTY, 0) < 0)
                child_fail(c, 2, errno, "TIOCSCTTY");
        /* No fd of PID 1 (its control socket above all) reaches a command. */
        if (close_range(3, ~0U, 0) < 0)
                child_fail(c, 2, errno, "close_range");

        struct rlimit core = {0, 0}, nofile = {4096, 4096};
        (void) setrlimit(RLIMIT_CORE, &core);
        (void) setrlimit(RLIMIT_NOFILE, &nofile);

        gid_t gid = r->gid;
        if (setgroups(1, &gid) < 0 || setresgid(r->gid, r->gid, r->gid) < 0 ||
            setresuid(r->uid, r->uid, r->uid) < 0)
                child_fail(c, 2, errno, "switch user");
        /* Leaving uid 0 already emptied permitted and effective; a command
         * that runs as root inside needs them cleared by hand. */
        if (sp_caps_clear_all() < 0)
                child_fail(c, 2, errno, "drop capabilities");

        if (chdir(c->cwd) < 0)
                child_fail(c, 1, errno, c->cwd);

        int saved = ENOENT;
        for (size_t i = 0; i < c->n_candidates; i++) {
                execve(c->candidates[i], r->argv, r->envp);
                /* Keep looking on the usual errors, as execvp does. */
                if (errno != ENOENT && errno != ENOTDIR && errno != ESTALE)
                        saved = errno;
                if (errno != ENOENT && errno != ENOTDIR && errno != EACCES && errno != ESTALE)
                        break;
        }
        child_fail(c, 0, saved, r->argv[0]);
}

static int build_candidates(spawn_child *c, char **storage) {
        const char *arg0 = c->req->argv[0];
        if (strchr(arg0, '/')) {
                c->candidates[c->n_candidates++] = arg0;
                return 0;
        }
        const char *path = env_get(c->req->envp, "PATH");
        if (!path)
                path = DEFAULT_PATH;
        /* One buffer holds every "<dir>/<arg0>". */
        size_t need = strlen(path) + 1 + (strlen(arg0) + 3) * MAX_CANDIDATES;
        char *buf = malloc(need), *w = buf;
        if (!buf)
                return -ENOMEM;
        *storage = buf;
        for (const char *p = path; *p && c->n_candidates < MAX_CANDIDATES;) {
                const char *end = strchrnul(p, ':');
                size_t len = (size_t) (end - p);
                c->candidates[c->n_candidates++] = w;
                if (len == 0)
                        w += sprintf(w, "./%s", arg0) + 1; /* empty entry: current directory */
                else
                        w += sprintf(w, "%.*s/%s", (int) len, p, arg0) + 1;
                p = *end ? end + 1 : end;
        }
        return 0;
}

int sp_spawn_command(const sp_spawn_req *req, pid_t *ret_pid, int *ret_errno) {
        static void *stack;
        _cleanup_free_ char *storage = NULL;
        spawn_child c = {.req = req};
        int r;

        if (!req->argv || !req->argv[0] || !req->argv[0][0])
                return -EINVAL;
        if (!stack) {
                stack = mmap(NULL, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
                if (stack == MAP_FAILED) {
                        stack = NULL;
                        return -errno;
                }
        }
        c.cwd = req->cwd && req->cwd[0] ? req->cwd
                : req->uid == 0          ? "/root"
                                         : env_get(req->envp, "HOME");
        if (!c.cwd)
                c.cwd = "/";
        r = build_candidates(&c, &storage);
        if (r < 0)
                return r;

        /* CLONE_VFORK: we sleep until the child has exec'd or exited, so the
         * one static stack is never used by two children at once. */
        pid_t pid = clone(child_main, (char *) stack + CHILD_STACK_SIZE, CLONE_VM | CLONE_VFORK | SIGCHLD, &c);
        if (pid < 0)
                return -errno;
        *ret_pid = pid;
        *ret_errno = c.failed_errno;
        return 0;
}
