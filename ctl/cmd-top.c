/* SPDX-License-Identifier: MIT */
/* sandpoolctl top: a live view of the pool and the sessions, refreshed
 * every second, sorted by cpu or memory. Plain ANSI escape sequences on
 * the alternate screen: every terminal emulator, tmux and screen speak
 * them, and the CLI needs no curses library for one screen of text. */
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "render.h"
#include "table.h"

#define CSI "\x1b["

typedef enum sort_key { SORT_CPU, SORT_MEMORY, _SORT_MAX } sort_key;
static const char *const sort_names[_SORT_MAX] = { "cpu", "memory" };

typedef struct top {
        ctl *c;
        bool once, color;
        uint64_t interval_ms;
        sort_key sort;
        unsigned rows, cols;
        json_t *prev;      /* id -> [cpu_usec, monotonic usec] of the previous frame */
        json_t *health;    /* last answers */
        json_t *sessions;
        char error[512];   /* why the last refresh failed, "" when it did not */
} top;

static volatile sig_atomic_t got_quit, got_winch;
static struct termios saved_termios;
static bool termios_saved;

static void on_quit(int sig) {
        got_quit = 1;
}

static void on_winch(int sig) {
        got_winch = 1;
}

static void help(void) {
        printf("Usage: sandpoolctl top [-d INTERVAL] [-o cpu|memory] [--once] [--json]\n"
               "\n"
               "A live view of the pool and the sessions, refreshed every INTERVAL (default\n"
               "1s). Keys: q quit, s switch the sort between cpu and memory, c cpu, m memory,\n"
               "+ and - slow down or speed up the refresh.\n"
               "\n"
               "  -d, --delay T    refresh interval (500ms, 2s, ...)\n"
               "  -o, --sort KEY   cpu (default) or memory\n"
               "      --once       print one frame and exit (no terminal needed)\n"
               "      --json       with --once: the health and the sessions as JSON\n");
}

static int64_t now_mono_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void terminal_restore(void) {
        if (!termios_saved)
                return;
        /* leave the alternate screen and show the cursor again */
        fputs(CSI "0m" CSI "?25h" CSI "?1049l", stdout);
        fflush(stdout);
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_termios);
        termios_saved = false;
}

static int terminal_setup(void) {
        struct termios t;

        if (tcgetattr(STDIN_FILENO, &saved_termios) < 0)
                return negative_errno();
        termios_saved = true;
        atexit(terminal_restore);
        t = saved_termios;
        /* keys arrive one by one and are not echoed; ISIG stays so that
         * Ctrl-C still quits (through on_quit, restoring the terminal) */
        t.c_lflag &= ~(tcflag_t) (ICANON | ECHO);
        t.c_cc[VMIN] = 0;
        t.c_cc[VTIME] = 0;
        if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) < 0)
                return negative_errno();
        fputs(CSI "?1049h" CSI "?25l" CSI "2J", stdout);
        fflush(stdout);
        return 0;
}

static void terminal_size(top *t) {
        struct winsize ws;

        t->rows = 24;
        t->cols = 80;
        if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) {
                t->rows = ws.ws_row;
                t->cols = ws.ws_col;
        }
}

static void annotate_cpu(top *t);

/* Fetch health and sessions; on failure keep the old figures and say why. */
static void refresh(top *t) {
        json_t *h = NULL, *s = NULL;
        char *msg = NULL;
        size_t len = 0;
        FILE *err = open_memstream(&msg, &len);
        int r;

        if (err)
                t->c->err = err; /* no stderr on the alternate screen */
        r = api_get_json(t->c, "/v1/health", "health", false, &h);
        if (r == 0)
                r = sessions_fetch(t->c, &s);
        t->c->err = stderr;
        if (err)
                fclose(err);
        t->error[0] = 0;
        if (r != 0) {
                /* the first line says it all */
                snprintf(t->error, sizeof(t->error), "%s", msg && *msg ? msg : "refresh failed");
                t->error[strcspn(t->error, "\n")] = 0;
        }
        free(msg);
        if (h) {
                json_decref(t->health);
                t->health = h;
        }
        if (s) {
                json_decref(t->sessions);
                t->sessions = s;
                annotate_cpu(t);
        }
}

/* cpu% of one CPU since the previous refresh, kept in each session as
 * "_cpu_pct" (absent on the first refresh, when there is nothing to
 * compare with). */
static void annotate_cpu(top *t) {
        json_t *next = json_object(), *s;
        int64_t now = now_mono_usec();
        size_t i;

        if (!next)
                return;
        json_array_foreach(t->sessions, i, s) {
                const char *id = json_str_or(s, "id", "");
                int64_t cpu = json_int_or(json_object_get(s, "usage"), "cpu_usec", -1);
                json_t *p = json_object_get(t->prev, id);

                if (cpu < 0)
                        continue;
                if (json_is_array(p)) {
                        int64_t pc = json_integer_value(json_array_get(p, 0));
                        int64_t pt = json_integer_value(json_array_get(p, 1));
                        if (now > pt && cpu >= pc)
                                json_object_set_new(s, "_cpu_pct", json_real((double) (cpu - pc) * 100.0 / (double) (now - pt)));
                }
                json_object_set_new(next, id, json_pack("[I,I]", (json_int_t) cpu, (json_int_t) now));
        }
        json_decref(t->prev);
        t->prev = next;
}

static double cpu_percent(json_t *s) {
        json_t *v = json_object_get(s, "_cpu_pct");

        return json_is_real(v) ? json_real_value(v) : -1;
}

static const char *color(const top *t, const char *seq) {
        return t->color ? seq : "";
}

/* End of a line: on the live screen, erase what the last frame left there. */
static const char *eol(const top *t) {
        return t->once ? "\n" : CSI "K\n";
}

/* "[####~~~===      ]": in use, warming, available, free capacity. */
static void print_pool_bar(top *t, FILE *f, json_t *pool, unsigned width) {
        int64_t max = json_int_or(pool, "max_capacity", 0), used = json_int_or(pool, "allocated", 0),
                warm = json_int_or(pool, "warming", 0), avail = json_int_or(pool, "available", 0);
        unsigned n[3], sum = 0;

        if (max <= 0)
                max = MAX(1, used + warm + avail);
        n[0] = (unsigned) (used * width / max);
        n[1] = (unsigned) (warm * width / max);
        n[2] = (unsigned) (avail * width / max);
        for (int i = 0; i < 3; i++) {
                n[i] = MIN(n[i], width - sum);
                sum += n[i];
        }
        fprintf(f, "[%s%.*s%s%.*s%s%.*s%s%*s]", color(t, CSI "1;31m"), (int) n[0], "########################################",
                color(t, CSI "0;36m"), (int) n[1], "~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~", color(t, CSI "0;32m"),
                (int) n[2], "========================================", color(t, CSI "0m"), (int) (width - sum), "");
}

static void print_header(top *t, FILE *f, double cpu_total, uint64_t mem_total, int64_t pids_total) {
        json_t *h = t->health, *pool = json_object_get(h, "pool");
        time_t now = time(NULL);
        struct tm tm;
        char clock[16], mem[32], line[512];
        unsigned bar = t->cols > 70 ? MIN(40u, t->cols - 70) + 10 : 10;

        localtime_r(&now, &tm);
        strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
        snprintf(line, sizeof(line), "sandpoold %s  %s  cgroup %s  %lld sessions  %s",
                 json_str_or(h, "version", "?"), t->error[0] ? "NO ANSWER (figures below are old)" : json_str_or(h, "status", "?"),
                 json_str_or(json_object_get(h, "cgroup"), "mode", "?"), (long long) json_int_or(h, "active_sessions", 0),
                 clock);
        line[MIN(sizeof(line) - 1, t->cols)] = 0;
        fprintf(f, "%s%s%s%s", color(t, CSI "1m"), line, color(t, CSI "0m"), eol(t));
        fprintf(f, "Pool ");
        print_pool_bar(t, f, pool, bar);
        snprintf(line, sizeof(line), " %lld in use %lld warming %lld ready / %lld max",
                 (long long) json_int_or(pool, "allocated", 0), (long long) json_int_or(pool, "warming", 0),
                 (long long) json_int_or(pool, "available", 0), (long long) json_int_or(pool, "max_capacity", 0));
        line[t->cols > bar + 7 ? MIN(sizeof(line) - 1, t->cols - bar - 7) : 0] = 0;
        fprintf(f, "%s%s", line, eol(t));
        snprintf(line, sizeof(line), "Load cpu %.1f%%  memory %s  pids %lld  sort %s  refresh %.1fs", cpu_total,
                 format_bytes(mem_total, mem, sizeof(mem)), (long long) pids_total, sort_names[t->sort],
                 (double) t->interval_ms / 1000.0);
        line[MIN(sizeof(line) - 1, t->cols)] = 0;
        fprintf(f, "%s%s", line, eol(t));
        if (t->error[0]) {
                snprintf(line, sizeof(line), "%s", t->error);
                line[MIN(sizeof(line) - 1, t->cols)] = 0;
                fprintf(f, "%s%s%s%s", color(t, CSI "1;31m"), line, color(t, CSI "0m"), eol(t));
        } else
                fprintf(f, "%s", eol(t));
}

static void add_session_row(table *tb, json_t *s, double pct, int64_t now_real) {
        json_t *u = json_object_get(s, "usage");
        int64_t mem = json_int_or(u, "memory_current", -1), lim = json_int_or(json_object_get(s, "limits"), "memory_mb", 0);
        int64_t created, active;
        char buf[64];

        table_addf(tb, "%.12s", json_str_or(s, "id", "?"));
        table_add(tb, uid_name(json_int_or(s, "owner_uid", -1), buf, sizeof(buf)));
        table_add(tb, json_str_or(s, "state", "?"));
        if (parse_api_time(json_str_or(s, "created_at", NULL), &created) == 0 && now_real > created)
                table_add(tb, format_duration_ms((uint64_t) (now_real - created) / 1000, buf, sizeof(buf)));
        else
                table_add(tb, "-");
        if (parse_api_time(json_str_or(s, "last_activity_at", NULL), &active) == 0 && now_real > active)
                table_add(tb, format_duration_ms((uint64_t) (now_real - active) / 1000, buf, sizeof(buf)));
        else
                table_add(tb, "-");
        if (pct < 0)
                table_add(tb, "-");
        else
                table_addf(tb, "%.1f", pct);
        table_add(tb, mem < 0 ? "-" : format_bytes((uint64_t) mem, buf, sizeof(buf)));
        if (mem >= 0 && lim > 0)
                table_addf(tb, "%.1f", (double) mem * 100.0 / (double) ((uint64_t) lim << 20));
        else
                table_add(tb, "-");
        table_addf(tb, "%lld", (long long) json_int_or(u, "pids_current", -1));
        table_addf(tb, "%lld", (long long) json_int_or(s, "running_commands", 0));
}

/* One whole frame into a buffer, written with one write: no flicker. */
static void render(top *t) {
        static const char *const headers[] = { "ID", "OWNER", "STATE", ">AGE", ">IDLE", ">CPU%", ">MEM", ">MEM%", ">PIDS", ">CMDS" };
        _cleanup_table_ table *tb = table_new(headers, ELEMENTSOF(headers));
        _cleanup_free_ double *keys = NULL;
        _cleanup_free_ char *frame = NULL, *body = NULL;
        size_t frame_len = 0, body_len = 0, n = json_array_size(t->sessions);
        FILE *f, *bf;
        json_t *s;
        int64_t now_real = now_realtime_usec(), pids = 0;
        double cpu_total = 0;
        uint64_t mem_total = 0;
        size_t i;

        keys = calloc(n + 1, sizeof(double));
        if (!tb || !keys)
                return;
        json_array_foreach(t->sessions, i, s) {
                json_t *u = json_object_get(s, "usage");
                double pct = cpu_percent(s);
                cpu_total += MAX(pct, 0);
                mem_total += (uint64_t) MAX(json_int_or(u, "memory_current", 0), 0);
                pids += MAX(json_int_or(u, "pids_current", 0), 0);
                keys[i] = t->sort == SORT_CPU ? pct : (double) json_int_or(u, "memory_current", -1);
                add_session_row(tb, s, pct, now_real);
        }
        table_sort(tb, keys, true);

        f = open_memstream(&frame, &frame_len);
        bf = open_memstream(&body, &body_len);
        if (!f || !bf) {
                if (f)
                        fclose(f);
                if (bf)
                        fclose(bf);
                return;
        }
        if (!t->once)
                fputs(CSI "H", f);
        print_header(t, f, cpu_total, mem_total, pids);
        table_print(tb, bf, t->once ? 0 : t->cols, color(t, CSI "7m"), color(t, CSI "0m"));
        fclose(bf);
        /* the table gets the rows left between the header (4) and the footer */
        {
                /* never a newline on the last row: the screen would scroll */
                unsigned room = t->once ? UINT32_MAX : (t->rows > 6 ? t->rows - 5 : 1), used = 0;
                unsigned shown = !t->once && n + 1 > room ? room - 1 : room;
                for (char *line = body, *end; line && *line && used < shown; line = end ? end + 1 : NULL, used++) {
                        end = strchr(line, '\n');
                        fprintf(f, "%.*s%s", end ? (int) (end - line) : (int) strlen(line), line, eol(t));
                }
                if (n == 0)
                        fprintf(f, "no sessions%s", eol(t));
                if (!t->once && n + 1 > room)
                        fprintf(f, "... %zu more%s", n + 1 - shown, eol(t));
        }
        if (!t->once) {
                char footer[256];
                snprintf(footer, sizeof(footer), " q quit  s sort (%s)  c cpu  m memory  +/- refresh", sort_names[t->sort]);
                footer[MIN(sizeof(footer) - 1, t->cols)] = 0;
                fprintf(f, CSI "J" CSI "%u;1H%s%-*s%s", t->rows, color(t, CSI "7m"), (int) t->cols, footer,
                        color(t, CSI "0m"));
        }
        fclose(f);
        for (size_t off = 0; frame && off < frame_len;) {
                ssize_t w = write(STDOUT_FILENO, frame + off, frame_len - off);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        break;
                off += (size_t) w;
        }
}

/* A key: false when it asks to quit. */
static bool handle_key(top *t, char k) {
        switch (k) {
        case 'q':
        case 'Q':
                return false;
        case 's':
        case 'S':
                t->sort = (t->sort + 1) % _SORT_MAX;
                break;
        case 'c':
                t->sort = SORT_CPU;
                break;
        case 'm':
                t->sort = SORT_MEMORY;
                break;
        case '+':
                t->interval_ms = MIN(t->interval_ms + 500, 60000u);
                break;
        case '-':
                t->interval_ms = t->interval_ms > 700 ? t->interval_ms - 500 : 200;
                break;
        }
        return true;
}

static int run_live(top *t) {
        struct sigaction sa = { .sa_handler = on_quit }, sw = { .sa_handler = on_winch };
        int64_t next_refresh = 0;
        int r;

        /* no SA_RESTART: poll() returns EINTR and the loop notices */
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        sigaction(SIGWINCH, &sw, NULL);
        r = terminal_setup();
        if (r < 0) {
                fprintf(stderr, "sandpoolctl top: cannot set up the terminal: %s\n", strerror(-r));
                return EXIT_FAIL;
        }
        terminal_size(t);
        while (!got_quit) {
                struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
                int64_t now = now_mono_usec();
                char keys[64];
                ssize_t n;
                bool redraw = false;

                if (now >= next_refresh) {
                        refresh(t);
                        next_refresh = now + (int64_t) t->interval_ms * 1000;
                        redraw = true;
                }
                if (got_winch) {
                        got_winch = 0;
                        terminal_size(t);
                        fputs(CSI "2J", stdout);
                        fflush(stdout);
                        redraw = true;
                }
                if (redraw)
                        render(t);
                now = now_mono_usec();
                if (poll(&p, 1, next_refresh > now ? (int) ((next_refresh - now + 999) / 1000) : 0) <= 0)
                        continue;
                if (p.revents & (POLLHUP | POLLERR))
                        break;
                n = read(STDIN_FILENO, keys, sizeof(keys));
                for (ssize_t i = 0; i < n; i++)
                        if (!handle_key(t, keys[i]))
                                got_quit = 1;
                /* a key changes the sort or the interval: show it now */
                if (!got_quit && n > 0)
                        render(t);
        }
        terminal_restore();
        return EXIT_OK;
}

static int parse_opts(top *t, int argc, char **argv) {
        enum { ARG_ONCE = 0x100 };
        static const struct option opts[] = {
                { "delay", required_argument, NULL, 'd' }, { "sort", required_argument, NULL, 'o' },
                { "once", no_argument, NULL, ARG_ONCE },   { "help", no_argument, NULL, 'h' },
                {},
        };
        int o;

        while ((o = getopt_long(argc, argv, "+d:o:h", opts, NULL)) >= 0)
                switch (o) {
                case 'd':
                        if (parse_duration_ms(optarg, &t->interval_ms) < 0 || t->interval_ms < 100) {
                                usage_error("top", "bad interval '%s' (at least 100ms)", optarg);
                                return -EINVAL;
                        }
                        break;
                case 'o':
                        if (streq(optarg, "cpu"))
                                t->sort = SORT_CPU;
                        else if (streq(optarg, "memory") || streq(optarg, "mem"))
                                t->sort = SORT_MEMORY;
                        else {
                                usage_error("top", "sort by cpu or memory, not '%s'", optarg);
                                return -EINVAL;
                        }
                        break;
                case ARG_ONCE:
                        t->once = true;
                        break;
                case 'h':
                        help();
                        return 0;
                default:
                        return -EINVAL;
                }
        if (optind < argc) {
                usage_error("top", "unexpected argument '%s'", argv[optind]);
                return -EINVAL;
        }
        return 1;
}

static void top_done(top *t) {
        json_decref(t->prev);
        json_decref(t->health);
        json_decref(t->sessions);
}

int cmd_top(ctl *c, int argc, char **argv) {
        _cleanup_(top_done) top t = { .c = c, .interval_ms = 1000 };
        int r;

        r = parse_opts(&t, argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_USAGE : EXIT_OK;
        t.prev = json_object();
        if (c->json && !t.once) {
                usage_error("top", "--json needs --once (for a stream of figures, poll 'sessions --json')");
                return EXIT_USAGE;
        }
        if (!t.once && (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))) {
                fprintf(stderr, "sandpoolctl top: needs a terminal; use 'top --once' for one frame, or "
                                "'sessions --json' in scripts\n");
                return EXIT_USAGE;
        }
        if (t.once) {
                json_auto_t *h = NULL, *s = NULL, *o = NULL;
                r = api_get_json(c, "/v1/health", "health", false, &h);
                if (r == 0)
                        r = sessions_fetch(c, &s);
                if (r != 0)
                        return r;
                if (c->json) {
                        o = json_pack("{s:O,s:O}", "health", h, "sessions", s);
                        print_json(o);
                        return EXIT_OK;
                }
                t.health = json_incref(h);
                t.sessions = json_incref(s);
                terminal_size(&t);
                t.color = false;
                render(&t);
        } else {
                t.color = !getenv("NO_COLOR");
                c->timeout_ms = 5000; /* a stuck daemon must not freeze the screen */
                r = run_live(&t);
        }
        return r;
}
