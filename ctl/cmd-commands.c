/* SPDX-License-Identifier: MIT */
/* Background commands from the command line:
 *   sandpoolctl commands SESSION         GET /v1/sessions/{id}/commands
 *   sandpoolctl logs [-f] SESSION CID    GET .../commands/{cid}/output, resumed by offset
 *   sandpoolctl shell [SESSION]          a terminal over GET .../attach (WebSocket) */
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "table.h"

static void commands_help(void) {
        printf("Usage: sandpoolctl commands SESSION\n"
               "\n"
               "List the background commands of a session: id, state, pid inside the\n"
               "sandbox, exit, bytes of output, the command line.\n");
}

static int check_session(const char *id) {
        if (session_id_valid(id))
                return 0;
        fprintf(stderr, "sandpoolctl: '%s' is not a session id (32 hex digits)\n", id);
        return EXIT_NOT_FOUND;
}

static void argv_line(json_t *argv, char *buf, size_t size) {
        size_t n = 0;
        size_t i;
        json_t *a;

        buf[0] = 0;
        json_array_foreach(argv, i, a) {
                if (n + 1 >= size)
                        break;
                n += (size_t) snprintf(buf + n, size - n, "%s%s", i ? " " : "", json_string_value(a) ?: "");
        }
}

int cmd_commands(ctl *c, int argc, char **argv) {
        int r = parse_help_only(argc, argv, commands_help);

        if (r >= 0)
                return r;
        if (argc - optind != 1) {
                usage_error("commands", "expected one session id");
                return EXIT_USAGE;
        }
        if ((r = check_session(argv[optind])))
                return r;
        return commands_print(c, argv[optind]);
}

int commands_print(ctl *c, const char *sid) {
        json_auto_t *list = NULL;
        char target[160];
        int r;

        snprintf(target, sizeof(target), "/v1/sessions/%s/commands", sid);
        r = api_get_json(c, target, "commands", true, &list);
        if (r)
                return r;
        if (c->json) {
                print_json(list);
                return EXIT_OK;
        }
        printf("%-6s %-8s %-7s %-10s %-10s %s\n", "ID", "STATE", "PID", "EXIT", "OUTPUT", "COMMAND");
        size_t i;
        json_t *cmd;
        json_array_foreach(json_object_get(list, "commands"), i, cmd) {
                char ex[32] = "-", line[256];
                if (streq(json_str_or(cmd, "state", ""), "exited")) {
                        json_t *sig = json_object_get(cmd, "signal");
                        if (json_is_integer(sig))
                                snprintf(ex, sizeof(ex), "signal %d", (int) json_integer_value(sig));
                        else
                                snprintf(ex, sizeof(ex), "%d", (int) json_int_or(cmd, "exit_code", -1));
                }
                argv_line(json_object_get(cmd, "argv"), line, sizeof(line));
                int64_t bytes = json_int_or(json_object_get(cmd, "stdout"), "bytes", 0) +
                                json_int_or(json_object_get(cmd, "stderr"), "bytes", 0);
                printf("%-6d %-8s %-7d %-10s %-10lld %s\n", (int) json_int_or(cmd, "id", 0),
                       json_str_or(cmd, "state", "?"), (int) json_int_or(cmd, "pid", 0), ex, (long long) bytes,
                       line);
        }
        return EXIT_OK;
}

/* ---- logs --------------------------------------------------------------------- */

static void logs_help(void) {
        printf("Usage: sandpoolctl logs [-f] SESSION CID\n"
               "\n"
               "Print what a background command wrote: its stdout to stdout, its stderr to\n"
               "stderr, byte for byte. -f/--follow waits for more until the command exits;\n"
               "a lost connection is resumed from the last byte received, so nothing is\n"
               "printed twice. Bytes the daemon no longer holds are reported on stderr.\n");
}

static int write_all(int fd, const void *p, size_t n) {
        const char *b = p;

        while (n > 0) {
                ssize_t k = write(fd, b, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                b += k;
                n -= (size_t) k;
        }
        return 0;
}

/* One event: 1 when it ends the stream (exit, caught up, gone). */
static int logs_event(json_t *ev, uint64_t off[2], int *ret_status) {
        const char *type = json_str_or(ev, "type", "");
        int which = streq(type, "stdout") ? 0 : streq(type, "stderr") ? 1 : -1;

        if (which >= 0) {
                json_t *d = json_object_get(ev, "data");
                _cleanup_free_ char *raw = strdup(json_string_value(d) ?: "");
                ssize_t n = raw ? base64_decode(raw, strlen(raw)) : -ENOMEM;
                if (n < 0)
                        return -EINVAL;
                (void) write_all(which ? STDERR_FILENO : STDOUT_FILENO, raw, (size_t) n);
                off[which] = (uint64_t) json_int_or(ev, "offset", 0) + (uint64_t) n;
                return 0;
        }
        if (streq(type, "dropped")) {
                fprintf(stderr, "sandpoolctl: %lld bytes of %s are no longer held by the daemon\n",
                        (long long) json_int_or(ev, "bytes", 0), json_str_or(ev, "stream", "?"));
                return 0;
        }
        if (streq(type, "exit")) {
                *ret_status = EXIT_OK;
                return 1;
        }
        if (streq(type, "caught_up") || streq(type, "gone")) {
                *ret_status = streq(type, "gone") ? EXIT_NOT_FOUND : EXIT_OK;
                return 1;
        }
        return 0;
}

/* One GET: 1 when the stream ended as it should, 0 when the connection
 * broke (resume), else an exit code. */
static int logs_once(ctl *c, const char *sid, long cid, bool follow, uint64_t off[2], int *ret_status) {
        char target[256];
        _cleanup_free_ char *line = NULL;
        size_t len = 0, cap = 0;
        http_response resp;
        http_conn *conn;
        char buf[65536];
        ssize_t n;
        int r;

        snprintf(target, sizeof(target), "/v1/sessions/%s/commands/%ld/output?encoding=base64&stdout_offset=%llu"
                 "&stderr_offset=%llu%s", sid, cid, (unsigned long long) off[0], (unsigned long long) off[1],
                 follow ? "&follow=true" : "");
        r = api_connection(c, &conn);
        if (r >= 0)
                r = http_send_head(conn, "GET", target, NULL, -1);
        if (r >= 0)
                r = http_read_head(conn, &resp);
        if (r < 0)
                return report_transport_error(c, r, "logs");
        if (resp.status != 200) {
                api_reply rep = {.status = resp.status};
                if (http_read_body_all(conn, &resp, 1 << 20, &rep.body, &rep.body_len) >= 0)
                        rep.json = json_loadb(rep.body, rep.body_len, 0, NULL);
                r = report_http_error(c, &rep, "logs", true);
                api_reply_done(&rep);
                return r;
        }
        while ((n = http_read_body(conn, &resp, buf, sizeof(buf))) > 0)
                for (ssize_t i = 0; i < n; i++) {
                        if (buf[i] != '\n') {
                                if (len + 1 >= cap) {
                                        char *p = realloc(line, cap = cap ? cap * 2 : 65536);
                                        if (!p)
                                                return EXIT_FAIL;
                                        line = p;
                                }
                                line[len++] = buf[i];
                                continue;
                        }
                        json_auto_t *ev = json_loadb(line, len, 0, NULL);
                        len = 0;
                        if (!ev)
                                continue;
                        if ((r = logs_event(ev, off, ret_status)) != 0) {
                                api_disconnect(c);
                                return r < 0 ? EXIT_FAIL : 1;
                        }
                }
        api_disconnect(c);
        return 0; /* the connection broke mid-stream: resume */
}

int cmd_logs(ctl *c, int argc, char **argv) {
        static const struct option opts[] = {
                {"follow", no_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'}, {}};
        uint64_t off[2] = {0, 0};
        bool follow = false;
        int opt, r, status = EXIT_OK;

        optind = 1;
        while ((opt = getopt_long(argc, argv, "+fh", opts, NULL)) != -1)
                switch (opt) {
                case 'f': follow = true; break;
                case 'h': logs_help(); return EXIT_OK;
                default: return EXIT_USAGE;
                }
        if (argc - optind != 2) {
                usage_error("logs", "expected a session id and a command id");
                return EXIT_USAGE;
        }
        if ((r = check_session(argv[optind])))
                return r;
        char *end;
        long cid = strtol(argv[optind + 1], &end, 10);
        if (*end || cid <= 0) {
                usage_error("logs", "'%s' is not a command id", argv[optind + 1]);
                return EXIT_USAGE;
        }
        for (int attempt = 0; attempt < 50; attempt++) {
                r = logs_once(c, argv[optind], cid, follow, off, &status);
                if (r == 1)
                        return status;
                if (r != 0)
                        return r;
                /* a broken connection: again from the last byte we have */
                struct timespec ts = {0, 100 * 1000 * 1000};
                nanosleep(&ts, NULL);
        }
        fprintf(stderr, "sandpoolctl: the connection keeps breaking; giving up\n");
        return EXIT_UNREACHABLE;
}

/* ---- shell -------------------------------------------------------------------- */

static void shell_help(void) {
        printf("Usage: sandpoolctl shell [SESSION]\n"
               "\n"
               "An interactive shell on a terminal in a session (a new session when none is\n"
               "named, ended when the shell exits). The local terminal is in raw mode while\n"
               "it runs and restored after; its size follows the local one. The exit status\n"
               "is the shell's (128+N when killed by signal N).\n");
}

static struct termios saved_tio;
static bool tio_saved;
static volatile sig_atomic_t winch;

static void tty_restore(void) {
        if (tio_saved)
                (void) tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
        tio_saved = false;
}

static void on_winch(int sig) {
        winch = 1;
}

static void term_size(unsigned *rows, unsigned *cols) {
        struct winsize ws = {};

        if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) < 0 || ws.ws_row == 0)
                ws.ws_row = 24, ws.ws_col = 80;
        *rows = ws.ws_row;
        *cols = ws.ws_col;
}

/* A WebSocket client frame: masked, as RFC 6455 requires of clients. */
static int ws_send(int fd, unsigned opcode, const void *p, size_t n) {
        unsigned char hdr[14], mask[4];
        size_t h = 0;
        _cleanup_free_ unsigned char *b = malloc(n + 14);

        if (!b || getrandom(mask, sizeof(mask), 0) != sizeof(mask))
                return -EIO;
        hdr[h++] = (unsigned char) (0x80 | opcode);
        if (n < 126)
                hdr[h++] = (unsigned char) (0x80 | n);
        else {
                hdr[h++] = 0x80 | 126;
                hdr[h++] = (unsigned char) (n >> 8);
                hdr[h++] = (unsigned char) n;
        }
        memcpy(hdr + h, mask, 4);
        h += 4;
        memcpy(b, hdr, h);
        for (size_t i = 0; i < n; i++)
                b[h + i] = ((const unsigned char *) p)[i] ^ mask[i % 4];
        return write_all(fd, b, h + n);
}

static int ws_connect(ctl *c, const char *target) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        char req[512], head[4096];
        size_t n = 0;
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0)
                return -errno;
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", c->socket);
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                int e = -errno;
                close(fd);
                return e;
        }
        /* The key only proves that the server speaks WebSocket; a fixed
         * one is as good as any for a socket of our own. */
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: c2FuZHBvb2xjdGwgc2hlbGw=\r\nSec-WebSocket-Version: 13\r\n\r\n", target);
        if (write_all(fd, req, strlen(req)) < 0)
                goto fail;
        /* read the head byte by byte: frames may follow it at once */
        while (n + 1 < sizeof(head)) {
                if (read(fd, head + n, 1) != 1)
                        goto fail;
                n++;
                if (n >= 4 && memcmp(head + n - 4, "\r\n\r\n", 4) == 0)
                        break;
        }
        head[n] = 0;
        if (strncmp(head, "HTTP/1.1 101", 12) == 0)
                return fd;
fail:
        close(fd);
        return -EPROTO;
}

/* Frames from the daemon: output to stdout; the close frame's reason
 * ("exit N", "signal N") gives the status. 1 when closed. */
static int ws_pump_in(int fd, unsigned char *buf, size_t *len, int *ret_status) {
        for (;;) {
                if (*len < 2)
                        return 0;
                size_t h = 2, n = buf[1] & 0x7f;
                if (n == 126) {
                        if (*len < 4)
                                return 0;
                        n = (size_t) buf[2] << 8 | buf[3], h = 4;
                } else if (n == 127) {
                        if (*len < 10)
                                return 0;
                        n = 0;
                        for (int i = 0; i < 8; i++)
                                n = n << 8 | buf[2 + i];
                        h = 10;
                }
                if (*len < h + n)
                        return 0;
                unsigned op = buf[0] & 0x0f;
                if (op == 0x1 || op == 0x2 || op == 0x0)
                        (void) write_all(STDOUT_FILENO, buf + h, n);
                else if (op == 0x9)
                        (void) ws_send(fd, 0xA, buf + h, n);
                else if (op == 0x8) {
                        char reason[128] = "";
                        int v;
                        if (n > 2)
                                snprintf(reason, sizeof(reason), "%.*s", (int) (n - 2), buf + h + 2);
                        if (sscanf(reason, "exit %d", &v) == 1)
                                *ret_status = v;
                        else if (sscanf(reason, "signal %d", &v) == 1)
                                *ret_status = EXIT_EXEC_SIGNAL_BASE + v;
                        return 1;
                }
                memmove(buf, buf + h + n, *len - h - n);
                *len -= h + n;
        }
}

static void send_resize(ctl *c, const char *sid, long cid) {
        json_auto_t *body = NULL;
        api_reply rep = {};
        char target[160];
        unsigned rows, cols;

        term_size(&rows, &cols);
        body = json_pack("{s:i,s:i}", "rows", (int) rows, "cols", (int) cols);
        snprintf(target, sizeof(target), "/v1/sessions/%s/commands/%ld/resize", sid, cid);
        if (body && api_request_json(c, "POST", target, body, &rep) >= 0)
                api_reply_done(&rep);
}

static int shell_loop(ctl *c, const char *sid, long cid, int fd) {
        static unsigned char in[1 << 20];
        size_t in_len = 0;
        int status = EXIT_EXEC_CTL;

        for (;;) {
                if (winch) {
                        winch = 0;
                        send_resize(c, sid, cid);
                }
                struct pollfd p[2] = {{.fd = STDIN_FILENO, .events = POLLIN}, {.fd = fd, .events = POLLIN}};
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return EXIT_EXEC_CTL;
                }
                if (p[0].revents & (POLLIN | POLLHUP)) {
                        char b[4096];
                        ssize_t n = read(STDIN_FILENO, b, sizeof(b));
                        if (n <= 0 || ws_send(fd, 0x2, b, (size_t) n) < 0)
                                return status;
                }
                if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
                        ssize_t n = read(fd, in + in_len, sizeof(in) - in_len);
                        if (n <= 0)
                                return status;
                        in_len += (size_t) n;
                        if (ws_pump_in(fd, in, &in_len, &status) == 1 || in_len == sizeof(in))
                                return status;
                }
        }
}

static int shell_start(ctl *c, const char *sid, long *ret_cid) {
        json_auto_t *body = NULL;
        api_reply rep = {};
        char target[160];
        unsigned rows, cols;
        int r;

        term_size(&rows, &cols);
        body = json_pack("{s:s,s:{s:i,s:i}}", "shell",
                         "if [ -x /bin/bash ]; then exec /bin/bash -i; else exec /bin/sh -i; fi", "pty", "rows",
                         (int) rows, "cols", (int) cols);
        snprintf(target, sizeof(target), "/v1/sessions/%s/commands", sid);
        r = api_request_json(c, "POST", target, body, &rep);
        if (r < 0)
                return report_transport_error(c, r, "shell");
        if (rep.status != 201)
                r = report_http_error(c, &rep, "shell", true);
        else
                *ret_cid = (long) json_int_or(rep.json, "id", 0);
        api_reply_done(&rep);
        return r;
}

int cmd_shell(ctl *c, int argc, char **argv) {
        _cleanup_free_ char *own = NULL;
        char target[192];
        const char *sid;
        long cid = 0;
        int r = parse_help_only(argc, argv, shell_help), fd, status;

        if (r >= 0)
                return r;
        if (argc - optind > 1) {
                usage_error("shell", "expected at most one session id");
                return EXIT_USAGE;
        }
        if (argc - optind == 1) {
                sid = argv[optind];
                if ((r = check_session(sid)))
                        return r;
        } else {
                api_reply rep = {};
                r = api_request(c, "POST", "/v1/sessions", NULL, NULL, 0, &rep);
                if (r < 0)
                        return report_transport_error(c, r, "shell");
                if (rep.status != 201 || !(own = strdup(json_str_or(rep.json, "id", "")))) {
                        r = report_http_error(c, &rep, "shell", false);
                        api_reply_done(&rep);
                        return r ? r : EXIT_FAIL;
                }
                api_reply_done(&rep);
                sid = own;
                fprintf(stderr, "sandpoolctl: session %s (ended when the shell exits)\r\n", sid);
        }
        r = shell_start(c, sid, &cid);
        if (r == 0) {
                snprintf(target, sizeof(target), "/v1/sessions/%s/commands/%ld/attach", sid, cid);
                fd = ws_connect(c, target);
                if (fd < 0) {
                        r = report_transport_error(c, fd, "shell");
                } else {
                        if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
                                struct termios raw = saved_tio;
                                cfmakeraw(&raw);
                                tio_saved = tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0;
                                atexit(tty_restore);
                        }
                        signal(SIGWINCH, on_winch);
                        status = shell_loop(c, sid, cid, fd);
                        tty_restore();
                        close(fd);
                        r = status;
                }
        }
        if (own) {
                api_reply rep = {};
                snprintf(target, sizeof(target), "/v1/sessions/%s", own);
                if (api_request(c, "DELETE", target, NULL, NULL, 0, &rep) >= 0)
                        api_reply_done(&rep);
        }
        return r;
}
