/* SPDX-License-Identifier: MIT */
/* Asking a sandbox's PID 1 to start a command: the request is serialized
 * here, the command itself is made in spawn.c, inside. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "proto.h"
#include "sandbox-internal.h"

#define EXEC_ARGS_MAX (2u * 1024u * 1024u) /* the kernel's default ARG_MAX */

void sp_exec_spec_init(sp_exec_spec *s) {
        *s = (sp_exec_spec){
                .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1,
                .uid = SP_SANDBOX_UID, .gid = SP_SANDBOX_GID,
        };
}

static size_t strv_bytes(char *const *v, uint32_t *ret_n) {
        size_t total = 0;
        uint32_t n = 0;
        for (; v && v[n]; n++)
                total += strlen(v[n]) + 1;
        *ret_n = n;
        return total;
}

static char *strv_pack(char *w, char *const *v) {
        for (size_t i = 0; v && v[i]; i++)
                w = stpcpy(w, v[i]) + 1;
        return w;
}

int sp_sandbox_spawn(sp_sandbox *sb, const sp_exec_spec *spec, uint64_t *ret_id, sp_error *err) {
        char home_env[32];
        char *default_env[] = {
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                home_env, "LANG=C.UTF-8", "TERM=dumb", NULL,
        };
        _cleanup_free_ char *payload = NULL;
        _cleanup_close_ int devnull = -EBADF, memfd = -EBADF;
        char *const *envp = spec->envp;
        uint32_t argc, envc;
        int fds[4];
        int r;

        if (!sp_sandbox_is_ready(sb))
                return sp_error_set(err, -ESRCH, "sandbox %s is not running", sb->name);
        if (!spec->argv || !spec->argv[0] || !spec->argv[0][0])
                return sp_error_set(err, -EINVAL, "empty argv");
        if (!envp) {
                snprintf(home_env, sizeof(home_env), "HOME=%s", spec->uid == 0 ? "/root" : "/home/sandbox");
                envp = default_env;
        }
        const char *cwd = spec->cwd ? spec->cwd : "";
        size_t strings = strv_bytes(spec->argv, &argc) + strv_bytes(envp, &envc) + strlen(cwd) + 1;
        if (strings > EXEC_ARGS_MAX)
                return sp_error_set(err, -E2BIG, "argv and environment are %zu bytes, more than the %u the kernel takes",
                                    strings, EXEC_ARGS_MAX);
        size_t len = sizeof(sp_msg_spawn) + strings;
        payload = malloc(len);
        if (!payload)
                return sp_error_set(err, -ENOMEM, "out of memory");
        sp_msg_spawn m = {.uid = spec->uid, .gid = spec->gid, .argc = argc, .envc = envc, .strings_len = (uint32_t) strings,
                          .flags = spec->ctty ? SP_SPAWN_CTTY : 0};
        memcpy(payload, &m, sizeof(m));
        char *w = strv_pack(payload + sizeof(m), spec->argv);
        w = strv_pack(w, envp);
        strcpy(w, cwd);

        int in[3] = {spec->stdin_fd, spec->stdout_fd, spec->stderr_fd};
        for (int i = 0; i < 3; i++) {
                if (in[i] < 0) {
                        if (devnull < 0 && (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
                                return sp_error_set(err, -errno, "open /dev/null: %m");
                        in[i] = devnull;
                }
                fds[i] = in[i];
        }
        uint32_t flags = 0;
        size_t nfds = 3;
        const void *inline_payload = payload;
        size_t inline_len = len;
        if (len > SP_MSG_INLINE_MAX) {
                /* Too large for one packet: hand PID 1 a sealed-size memfd. */
                memfd = memfd_create("sandpool-spawn", MFD_CLOEXEC);
                if (memfd < 0)
                        return sp_error_set(err, -errno, "memfd_create: %m");
                if (write(memfd, payload, len) != (ssize_t) len)
                        return sp_error_set(err, -EIO, "write spawn request: %m");
                fds[nfds++] = memfd;
                flags |= SP_SPAWN_PAYLOAD_IN_MEMFD;
                inline_payload = NULL;
                inline_len = 0;
        }
        uint64_t id = sb->next_id++;
        r = sp_msg_send(sb->ctl, SP_MSG_SPAWN, id, 0, flags, inline_payload, inline_len, fds, nfds);
        if (r < 0)
                return sp_error_set(err, r, "send spawn request to sandbox %s: %s", sb->name, strerror(-r));
        *ret_id = id;
        return 0;
}

int sp_sandbox_signal(sp_sandbox *sb, uint64_t id, int sig) {
        if (sig <= 0 || sig >= _NSIG)
                return -EINVAL;
        return sp_msg_send(sb->ctl, SP_MSG_SIGNAL, id, sig, 0, NULL, 0, NULL, 0);
}
