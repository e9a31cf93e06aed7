/* SPDX-License-Identifier: MIT */
/* Per-session egress: nft table, address pool, veth at take time. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "egress.h"
#include "log.h"
#include "macro.h"
#include "netd.h"
#include "netproxy.h"
#include "nft.h"
#include "resolver.h"
#include "time-util.h"
#include "veth.h"

#define MAX_OPEN_ADDRS 256   /* resolved addresses open per sandbox at once */
#define TTL_MIN 5u           /* seconds an answer stays open at least */
#define TTL_MAX 3600u
#define DENIED_RECENT 8
#define DENIED_TIMEOUT "10m" /* how long a denied (address, port) is remembered */

typedef struct open_addr {
        uint32_t addr; /* network order */
        usec_t expires;
} open_addr;

typedef struct denied_note {
        char what[80];   /* a name, or address:port */
        char reason[24];
} denied_note;

struct egress_link {
        egress *g;
        char session_id[33];
        unsigned index;
        char ifname[IF_NAMESIZE];
        int ifindex;
        uint32_t addr, gateway; /* network order */
        netpolicy policy;
        open_addr open[MAX_OPEN_ADDRS];
        unsigned n_open;
        uint64_t denied_names;
        denied_note recent[DENIED_RECENT];
        unsigned n_recent;
        /* while the helper makes its veth */
        bool attaching;
        unsigned tries;
        uint64_t netd_id;
        int pidfd, root_fd; /* borrowed from the sandbox, valid while attaching */
        egress_attached_fn cb;
        void *cb_userdata;
        usec_t attach_start;
        uint64_t work_usec;
};

struct egress {
        sd_event *event;
        sp_nft *nft;
        char *table, *uplink, *prefix;
        uint32_t pool_base; /* host order */
        unsigned n_slots, next_slot;
        egress_link **links;
        resolver *resolver;
        netproxy *proxy;
        netd *netd;
        uint64_t attached, detached, attach_failures, denied_names, proxy_refused;
        usec_t last_denied_log;
        uint64_t denied_not_logged;
        uint64_t bytes_in_done, bytes_out_done; /* of detached links */
};

static int parse_hostport(const char *s, struct sockaddr_in *ret) {
        char buf[32], *colon;
        unsigned long port = 53;

        if (!s || strlen(s) >= sizeof(buf))
                return -EINVAL;
        strcpy(buf, s);
        colon = strchr(buf, ':');
        if (colon) {
                char *end;
                *colon++ = '\0';
                port = strtoul(colon, &end, 10);
                if (*end || port == 0 || port > 65535)
                        return -EINVAL;
        }
        *ret = (struct sockaddr_in) {.sin_family = AF_INET, .sin_port = htons((uint16_t) port)};
        return inet_pton(AF_INET, buf, &ret->sin_addr) == 1 ? 0 : -EINVAL;
}

static const char *ip4(uint32_t a, char buf[static INET_ADDRSTRLEN]) {
        struct in_addr in = { a };
        return inet_ntop(AF_INET, &in, buf, INET_ADDRSTRLEN);
}

/* The daemon's table, whole. One transaction with "add" then "delete"
 * first, so that a table a crashed daemon left is replaced atomically. */
static int write_ruleset(const egress *g, const egress_options *o, const char *pool, char **ret) {
        char *t = NULL;
        unsigned port = o->resolver_port, pport = o->proxy_port;
        char connlimit[96] = "";

        if (o->max_connections)
                snprintf(connlimit, sizeof(connlimit),
                         "ct state new add @conns { ip saddr ct count over %u } goto deny\n", o->max_connections);
        if (asprintf(&t,
                     "add table inet %1$s\n"
                     "delete table inet %1$s\n"
                     "table inet %1$s {\n"
                     " set never4 { type ipv4_addr; flags interval; elements = { 0.0.0.0/8, 127.0.0.0/8,"
                     " 169.254.0.0/16, 224.0.0.0/3, %2$s } }\n"
                     " set private4 { type ipv4_addr; flags interval; elements = { 10.0.0.0/8, 100.64.0.0/10,"
                     " 172.16.0.0/12, 192.0.0.0/24, 192.168.0.0/16, 198.18.0.0/15 } }\n"
                     " set allow { type ipv4_addr . ipv4_addr . inet_service; flags timeout; }\n"
                     " set cidr { type ipv4_addr . ipv4_addr . inet_service; flags interval; }\n"
                     " set open { type ipv4_addr; }\n"

                     " set denied { type ipv4_addr . ipv4_addr . inet_proto . inet_service; flags dynamic,timeout;"
                     " size 16384; counter; }\n"
                     " set conns { type ipv4_addr; flags dynamic; size 16384; }\n"
                     " chain antispoof { type filter hook prerouting priority -300; policy accept;\n"
                     "  iifname \"%7$s*\" fib saddr . iif oif missing drop\n }\n"
                     " chain dns_redirect { type nat hook prerouting priority dstnat; policy accept;\n"
                     "  iifname \"%7$s*\" fib daddr type local meta l4proto { tcp, udp } th dport 53"
                     " redirect to :%3$u\n"
                     "  iifname \"%7$s*\" ip saddr != @open tcp dport { 80, 443 } fib daddr type != local"
                     " redirect to :%6$u\n }\n"
                     " chain masq { type nat hook postrouting priority srcnat; policy accept;\n"
                     "  iifname \"%7$s*\" oifname \"%4$s\" masquerade\n }\n"
                     " chain input { type filter hook input priority filter; policy accept;\n"
                     "  iifname \"%7$s*\" jump sandbox_in\n"
                     "  meta l4proto { tcp, udp } th dport { %3$u, %6$u } drop\n }\n"
                     " chain sandbox_in {\n"
                     "  ct state established,related accept\n"
                     "  meta l4proto { tcp, udp } th dport { %3$u, %6$u } ct status dnat accept\n"
                     "  goto deny\n }\n"
                     " chain forward { type filter hook forward priority filter; policy accept;\n"
                     "  iifname \"%7$s*\" jump sandbox_out\n"
                     "  oifname \"%7$s*\" ct state established,related accept\n"
                     "  oifname \"%7$s*\" drop\n }\n"
                     " chain sandbox_out {\n"
                     "  ct state established,related accept\n"
                     "  %5$s"
                     "  meta l4proto { tcp, udp } th dport { 53, 853 } goto deny\n"
                     "  ip daddr @never4 goto deny\n"
                     "  meta l4proto { tcp, udp } ip saddr . ip daddr . th dport @cidr accept\n"
                     "  ip daddr @private4 goto deny\n"
                     "  meta l4proto { tcp, udp } ip saddr . ip daddr . th dport @allow accept\n"
                     "  ip saddr @open accept\n"
                     "  goto deny\n }\n"
                     " chain deny {\n"
                     "  meta l4proto { tcp, udp } update @denied { ip saddr . ip daddr . meta l4proto . th dport"
                     " timeout " DENIED_TIMEOUT " }\n"
                     "  drop\n }\n"
                     "}\n",
                     g->table, pool, port, g->uplink, connlimit, pport, g->prefix) < 0)
                return -ENOMEM;
        *ret = t;
        return 0;
}

static int check_uplink(const char *uplink, sp_error *err) {
        char path[128], v = '0';
        int fd _cleanup_(closep) = -EBADF;

        if (if_nametoindex(uplink) == 0)
                return sp_error_set(err, -ENODEV, "[network] uplink %s: no such interface in the daemon's namespace",
                                    uplink);
        /* Replies come in on the uplink and are forwarded to the veth: IPv4
         * forwarding is decided by the interface a packet arrives on. That
         * is the operator's choice for their uplink, not ours to flip. */
        snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/forwarding", uplink);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || read(fd, &v, 1) != 1 || v != '1')
                return sp_error_set(err, -EINVAL,
                                    "[network] uplink %s has IPv4 forwarding off (sysctl "
                                    "net.ipv4.conf.%s.forwarding=1)", uplink, uplink);
        return 0;
}

static const netpolicy *resolver_lookup(void *userdata, uint32_t saddr, void **ret_link);
static void resolver_denied(void *userdata, void *link, const char *name, const char *reason);
static size_t resolver_answered(void *userdata, void *link, const char *name, uint32_t *addrs, uint32_t *ttls,
                                size_t n);
static void *proxy_lookup(void *userdata, uint32_t saddr);
static int proxy_check(void *userdata, void *link, uint32_t daddr, uint16_t dport, const char *name,
                       const char **reason);
static const netproxy_ops egress_proxy_ops = {
        .lookup = proxy_lookup,
        .check = proxy_check,
};
static const resolver_ops egress_resolver_ops = {
        .lookup = resolver_lookup,
        .denied = resolver_denied,
        .answered = resolver_answered,
};

int egress_new(sd_event *e, const egress_options *o, egress **ret, sp_error *err) {
        _cleanup_free_ char *rules = NULL;
        struct sockaddr_in upstream;
        netpolicy_cidr pool;
        sp_error nerr = {};
        egress *g;
        int r;

        if (netpolicy_parse_cidr(o->address_pool, &pool) < 0 || pool.prefixlen > 28)
                return sp_error_set(err, -EINVAL, "[network] address_pool %s: an IPv4 range of /28 or larger",
                                    o->address_pool);
        if (parse_hostport(o->upstream_dns, &upstream) < 0)
                return sp_error_set(err, -EINVAL, "[network] upstream_dns '%s': an IPv4 address, with :port or not",
                                    o->upstream_dns ? o->upstream_dns : "");
        if (!o->interface_prefix || !*o->interface_prefix || strlen(o->interface_prefix) > 8 ||
            strspn(o->interface_prefix, "abcdefghijklmnopqrstuvwxyz0123456789") != strlen(o->interface_prefix))
                return sp_error_set(err, -EINVAL, "[network] interface_prefix: 1-8 lower-case letters or digits");
        r = check_uplink(o->uplink, err);
        if (r < 0)
                return r;
        g = calloc(1, sizeof(*g));
        if (!g)
                return sp_error_set(err, -ENOMEM, "out of memory");
        g->event = sd_event_ref(e);
        g->table = strdup(o->table);
        g->uplink = strdup(o->uplink);
        g->prefix = strdup(o->interface_prefix);
        g->pool_base = pool.addr;
        g->n_slots = (unsigned) MIN((UINT64_C(1) << (32 - pool.prefixlen)) / 4, 16384u);
        g->links = calloc(g->n_slots, sizeof(*g->links));
        if (!g->table || !g->uplink || !g->prefix || !g->links) {
                egress_free(g);
                return sp_error_set(err, -ENOMEM, "out of memory");
        }
        r = netd_new(e, &g->netd);
        if (r < 0)
                sp_error_set(err, r, "Failed to start the network helper: %s", strerror(-r));
        if (r >= 0)
                r = sp_nft_new(&g->nft);
        if (r >= 0)
                r = write_ruleset(g, o, o->address_pool, &rules);
        if (r >= 0 && (r = sp_nft_run(g->nft, rules, 0, NULL, &nerr)) < 0)
                sp_error_set(err, r, "Failed to create nft table inet %s: %s", g->table, nerr.message);
        else if (r < 0)
                sp_error_set(err, r, "Failed to set up nftables: %s", strerror(-r));
        if (r >= 0) {
                /* a crashed daemon's veths, whose sandboxes are still alive */
                int n = sp_veth_sweep(g->prefix);
                if (n > 0)
                        log_info("Removed %d veth links left by an earlier daemon", n);
                r = resolver_new(e, o->resolver_port, &upstream, &egress_resolver_ops, g, &g->resolver);
                if (r < 0)
                        sp_error_set(err, r, "Failed to start the resolver on port %u: %s", o->resolver_port,
                                     strerror(-r));
        }
        if (r >= 0) {
                r = netproxy_new(e, o->proxy_port, o->max_connections, &egress_proxy_ops, g, &g->proxy);
                if (r < 0)
                        sp_error_set(err, r, "Failed to start the HTTP/TLS proxy on port %u: %s", o->proxy_port,
                                     strerror(-r));
        }
        if (r < 0) {
                egress_free(g);
                return r;
        }
        log_info("Egress: nft table inet %s, uplink %s, pool %s (%u sandboxes), upstream DNS %s, resolver port %u",
                 g->table, g->uplink, o->address_pool, g->n_slots, o->upstream_dns, o->resolver_port);
        *ret = g;
        return 0;
}

void egress_free(egress *g) {
        char cmd[128];
        sp_error nerr = {};

        if (!g)
                return;
        resolver_free(g->resolver);
        netproxy_free(g->proxy);
        netd_free(g->netd);
        if (g->nft && g->table) {
                snprintf(cmd, sizeof(cmd), "delete table inet %s\n", g->table);
                if (sp_nft_run(g->nft, cmd, 0, NULL, &nerr) < 0)
                        log_warning("Failed to remove nft table inet %s: %s", g->table, nerr.message);
        }
        sp_nft_free(g->nft);
        free(g->links);
        free(g->table);
        free(g->uplink);
        free(g->prefix);
        sd_event_unref(g->event);
        free(g);
}

static int claim_slot(egress *g, unsigned *ret) {
        /* round robin: a slot just freed may still have its old veth for
         * a moment (the kernel removes it with the namespace, off our path) */
        for (unsigned k = 0; k < g->n_slots; k++) {
                unsigned i = (g->next_slot + k) % g->n_slots;
                if (!g->links[i]) {
                        g->next_slot = (i + 1) % g->n_slots;
                        *ret = i;
                        return 0;
                }
        }
        return -EBUSY;
}

static int add_static_elements(egress_link *l, bool add) {
        char a[INET_ADDRSTRLEN], n[INET_ADDRSTRLEN];
        sp_error nerr = {};
        _cleanup_free_ char *cmd = NULL;
        size_t len = 0;
        FILE *f;
        int r;

        /* An allowlist without cidrs needs no element at all (its HTTP and
         * HTTPS go to the proxy by default, the rest by resolved address):
         * nothing to do at take time. "open" goes by address alone. */
        if (l->policy.mode == NETPOLICY_NONE || (l->policy.mode == NETPOLICY_ALLOW && l->policy.n_cidrs == 0))
                return 0;
        f = open_memstream(&cmd, &len);
        if (!f)
                return -ENOMEM;
        ip4(l->addr, a);
        if (l->policy.mode == NETPOLICY_OPEN)
                fprintf(f, "%s element inet %s open { %s }\n", add ? "add" : "delete", l->g->table, a);
        for (unsigned i = 0; i < l->policy.n_cidrs; i++)
                for (unsigned p = 0; p < l->policy.n_ports; p++)
                        fprintf(f, "%s element inet %s cidr { %s . %s/%u . %u }\n", add ? "add" : "delete",
                                l->g->table, a, ip4(htonl(l->policy.cidrs[i].addr), n), l->policy.cidrs[i].prefixlen,
                                l->policy.ports[p]);
        if (fclose(f) != 0)
                return -ENOMEM;
        r = sp_nft_run(l->g->nft, cmd, 0, NULL, &nerr);
        if (r < 0)
                log_session(LOG_WARNING, l->session_id, "nft: %s", nerr.message);
        return r;
}

static void link_free(egress_link *l) {
        if (l->g->links[l->index] == l)
                l->g->links[l->index] = NULL;
        netpolicy_done(&l->policy);
        free(l);
}

static void attach_done(int error, int ifindex, uint64_t work_usec, void *userdata);

/* Ask the helper for the veth of the slot the link holds. */
static int attach_send(egress_link *l) {
        egress *g = l->g;
        sp_veth_spec spec;

        snprintf(l->ifname, sizeof(l->ifname), "%s%u", g->prefix, l->index);
        l->gateway = htonl(g->pool_base + 4 * l->index + 1);
        l->addr = htonl(g->pool_base + 4 * l->index + 2);
        spec = (sp_veth_spec) {.host_name = l->ifname, .peer_name = "eth0", .prefixlen = 30,
                               .host_addr = {l->gateway}, .peer_addr = {l->addr},
                               .rate_bytes_per_s = (uint64_t) l->policy.rate_mbit * 1000000 / 8};
        return netd_request(g->netd, &spec, l->pidfd, l->root_fd, attach_done, l, &l->netd_id);
}

static void attach_finish(egress_link *l, int r) {
        egress_attached_fn cb = l->cb;
        void *ud = l->cb_userdata;
        sp_error err = {};

        l->attaching = false;
        l->cb = NULL;
        if (r >= 0)
                r = add_static_elements(l, true);
        if (r < 0) {
                l->g->attach_failures++;
                sp_error_set(&err, r, "cannot give the sandbox its network: %s", strerror(-r));
                link_free(l);
                cb(NULL, &err, ud);
                return;
        }
        l->g->attached++;
        log_session(LOG_DEBUG, l->session_id, "network %s on %s in %.2f ms (veth %.2f ms in the helper)",
                    l->policy.mode == NETPOLICY_OPEN ? "open" : "allowlist", l->ifname,
                    (now_mono() - l->attach_start) / 1000.0, l->work_usec / 1000.0);
        cb(l, NULL, ud);
}

static void attach_done(int error, int ifindex, uint64_t work_usec, void *userdata) {
        egress_link *l = userdata;
        unsigned slot;

        l->work_usec += work_usec;
        /* the previous holder's veth of that name is still being removed
         * with its namespace: the next slot */
        if (error == -EEXIST && ++l->tries < 4 && claim_slot(l->g, &slot) >= 0) {
                l->g->links[l->index] = NULL;
                l->index = slot;
                l->g->links[slot] = l;
                if (attach_send(l) >= 0)
                        return;
        }
        l->ifindex = ifindex;
        attach_finish(l, error);
}

int egress_attach(egress *g, const char *session_id, int pidfd, int root_fd, const netpolicy *p,
                  egress_attached_fn cb, void *userdata, egress_link **ret, sp_error *err) {
        egress_link *l;
        unsigned slot;
        int r;

        if (claim_slot(g, &slot) < 0)
                return sp_error_set(err, -EBUSY, "every address of the network pool is in use");
        l = calloc(1, sizeof(*l));
        if (!l)
                return sp_error_set(err, -ENOMEM, "out of memory");
        l->g = g;
        snprintf(l->session_id, sizeof(l->session_id), "%s", session_id);
        r = netpolicy_copy(p, &l->policy);
        if (r < 0) {
                free(l);
                return sp_error_set(err, r, "out of memory");
        }
        l->index = slot;
        g->links[slot] = l; /* claimed */
        l->pidfd = pidfd;
        l->root_fd = root_fd;
        l->cb = cb;
        l->cb_userdata = userdata;
        l->attaching = true;
        l->attach_start = now_mono();
        r = attach_send(l);
        if (r < 0) {
                g->attach_failures++;
                link_free(l);
                return sp_error_set(err, r, "cannot give the sandbox its network: %s", strerror(-r));
        }
        *ret = l;
        return 0;
}

/* The elements the resolver opened that are still there: delete them in
 * one transaction. One within a second of its timeout may be gone by the
 * time the kernel sees the batch, which would fail it whole: those are
 * left to expire on their own. */
static void delete_open_elements(egress_link *l) {
        char a[INET_ADDRSTRLEN], d[INET_ADDRSTRLEN];
        sp_error nerr = {};
        _cleanup_free_ char *cmd = NULL;
        usec_t now = now_mono();
        size_t len = 0;
        unsigned n = 0;
        FILE *f = open_memstream(&cmd, &len);

        if (!f)
                return;
        ip4(l->addr, a);
        for (unsigned i = 0; i < l->n_open; i++) {
                if (l->open[i].expires < now + USEC_PER_SEC)
                        continue;
                for (unsigned p = 0; p < l->policy.n_ports; p++, n++)
                        fprintf(f, "delete element inet %s allow { %s . %s . %u }\n", l->g->table, a,
                                ip4(l->open[i].addr, d), l->policy.ports[p]);
        }
        if (fclose(f) != 0 || n == 0)
                return;
        if (sp_nft_run(l->g->nft, cmd, 0, NULL, &nerr) < 0)
                log_session(LOG_WARNING, l->session_id, "nft: cannot remove its open addresses: %s", nerr.message);
}

/* Walk the denied set (nft's JSON): call fn for each element of this link. */
static void for_each_denied(egress_link *l, void (*fn)(egress_link *l, json_t *val, uint64_t packets, void *ud),
                            void *ud) {
        char cmd[128], a[INET_ADDRSTRLEN];
        const char *out = NULL;
        json_t *root, *items, *it;
        size_t i;

        snprintf(cmd, sizeof(cmd), "list set inet %s denied\n", l->g->table);
        if (sp_nft_run(l->g->nft, cmd, 1, &out, NULL) < 0 || !out)
                return;
        root = json_loads(out, 0, NULL);
        items = json_object_get(root, "nftables");
        ip4(l->addr, a);
        json_array_foreach(items, i, it) {
                json_t *elems = json_object_get(json_object_get(it, "set"), "elem"), *e;
                size_t k;
                json_array_foreach(elems, k, e) {
                        json_t *inner = json_object_get(e, "elem");
                        json_t *val = json_object_get(json_object_get(inner ? inner : e, "val"), "concat");
                        json_t *ctr = json_object_get(inner ? inner : e, "counter");
                        const char *src = json_string_value(json_array_get(val, 0));
                        if (src && strcmp(src, a) == 0)
                                fn(l, val, (uint64_t) json_integer_value(json_object_get(ctr, "packets")), ud);
                }
        }
        json_decref(root);
}

static void delete_one_denied(egress_link *l, json_t *val, uint64_t packets, void *ud) {
        FILE *f = ud;
        json_t *port = json_array_get(val, 3);
        fprintf(f, "delete element inet %s denied { %s . %s . %s . %" JSON_INTEGER_FORMAT " }\n", l->g->table,
                json_string_value(json_array_get(val, 0)), json_string_value(json_array_get(val, 1)),
                json_string_value(json_array_get(val, 2)), json_integer_value(port));
}

void egress_detach(egress_link *l) {
        egress *g;
        uint64_t rx = 0, tx = 0;

        if (!l)
                return;
        g = l->g;
        if (l->attaching) {
                /* its veth, if the helper makes it still, goes with the
                 * sandbox's namespace */
                netd_cancel(g->netd, l->netd_id);
                link_free(l);
                return;
        }
        resolver_forget(g->resolver, l);
        netproxy_forget(g->proxy, l);
        if (sp_veth_stats(l->ifindex, &rx, &tx) >= 0) {
                g->bytes_out_done += rx;
                g->bytes_in_done += tx;
        }
        delete_open_elements(l);
        (void) add_static_elements(l, false);
        {
                _cleanup_free_ char *cmd = NULL;
                size_t len = 0;
                sp_error nerr = {};
                FILE *f = open_memstream(&cmd, &len);
                if (f) {
                        for_each_denied(l, delete_one_denied, f);
                        if (fclose(f) == 0 && len > 0 && sp_nft_run(g->nft, cmd, 0, NULL, &nerr) < 0)
                                log_session(LOG_WARNING, l->session_id, "nft: cannot remove its denied entries: %s",
                                            nerr.message);
                }
        }
        g->detached++;
        link_free(l);
}

/* ---- the resolver's view --------------------------------------------- */

static egress_link *link_by_addr(egress *g, uint32_t saddr) {
        uint32_t h = ntohl(saddr) - g->pool_base;

        if (ntohl(saddr) < g->pool_base || h / 4 >= g->n_slots || h % 4 != 2)
                return NULL;
        return g->links[h / 4];
}

static const netpolicy *resolver_lookup(void *userdata, uint32_t saddr, void **ret_link) {
        egress_link *l = link_by_addr(userdata, saddr);

        if (!l)
                return NULL;
        *ret_link = l;
        return &l->policy;
}

static void note_denied(egress_link *l, const char *what, const char *reason) {
        denied_note *n = &l->recent[l->n_recent++ % DENIED_RECENT];

        snprintf(n->what, sizeof(n->what), "%s", what);
        snprintf(n->reason, sizeof(n->reason), "%s", reason);
}

/* A refusal in the log: at most one line a second for the whole daemon,
 * whatever the sandboxes send, saying how many were not logged. */
static void log_denied(egress *g, egress_link *l, const char *kind, const char *what, const char *reason) {
        usec_t now = now_mono();

        if (g->last_denied_log && now - g->last_denied_log < USEC_PER_SEC) {
                g->denied_not_logged++;
                return;
        }
        log_session(LOG_NOTICE, l->session_id, "%s refused: %.100s (%s)", kind, what, reason);
        if (g->denied_not_logged)
                log_notice("... and %" PRIu64 " more refusals not logged", g->denied_not_logged);
        g->last_denied_log = now;
        g->denied_not_logged = 0;
}

static void resolver_denied(void *userdata, void *link, const char *name, const char *reason) {
        egress *g = userdata;
        egress_link *l = link;

        g->denied_names++;
        l->denied_names++;
        note_denied(l, name, reason);
        log_denied(g, l, "DNS", name, reason);
}

/* May the sandbox reach this address at all (before its TTL)? */
static bool address_reachable(const egress_link *l, uint32_t addr) {
        static const netpolicy_cidr never[] = { { 0x00000000, 8 }, { 0x7f000000, 8 }, { 0xa9fe0000, 16 },
                                                 { 0xe0000000, 3 } };
        static const netpolicy_cidr private[] = { { 0x0a000000, 8 }, { 0x64400000, 10 }, { 0xac100000, 12 },
                                                   { 0xc0000000, 24 }, { 0xc0a80000, 16 }, { 0xc6120000, 15 } };
        uint32_t h = ntohl(addr);

        for (size_t i = 0; i < ELEMENTSOF(never); i++)
                if (netpolicy_cidr_contains(&never[i], h))
                        return false;
        if (h >= l->g->pool_base && h - l->g->pool_base < l->g->n_slots * 4)
                return false;
        for (unsigned i = 0; i < l->policy.n_cidrs; i++)
                if (netpolicy_cidr_contains(&l->policy.cidrs[i], h))
                        return true;
        /* a public name answering a private address: DNS rebinding */
        for (size_t i = 0; i < ELEMENTSOF(private); i++)
                if (netpolicy_cidr_contains(&private[i], h))
                        return false;
        return true;
}

static open_addr *find_open(egress_link *l, uint32_t addr, usec_t now) {
        open_addr *free_slot = NULL;

        for (unsigned i = 0; i < l->n_open; i++) {
                if (l->open[i].addr == addr)
                        return &l->open[i];
                if (!free_slot && l->open[i].expires <= now)
                        free_slot = &l->open[i];
        }
        if (free_slot) {
                *free_slot = (open_addr) {.addr = addr};
                return free_slot;
        }
        if (l->n_open == MAX_OPEN_ADDRS)
                return NULL;
        l->open[l->n_open] = (open_addr) {.addr = addr};
        return &l->open[l->n_open++];
}

static size_t resolver_answered(void *userdata, void *link, const char *name, uint32_t *addrs, uint32_t *ttls,
                                size_t n) {
        egress_link *l = link;
        char a[INET_ADDRSTRLEN], d[INET_ADDRSTRLEN];
        sp_error nerr = {};
        _cleanup_free_ char *cmd = NULL;
        usec_t now = now_mono();
        size_t len = 0, kept = 0, changes = 0;
        FILE *f = open_memstream(&cmd, &len);

        if (!f)
                return 0;
        ip4(l->addr, a);
        for (size_t i = 0; i < n; i++) {
                uint32_t ttl = MIN(MAX(ttls[i], TTL_MIN), TTL_MAX);
                open_addr *o;
                if (!address_reachable(l, addrs[i])) {
                        char what[80];
                        snprintf(what, sizeof(what), "%s -> %s", name, ip4(addrs[i], d));
                        note_denied(l, what, "address never reachable");
                        continue;
                }
                o = l->policy.mode == NETPOLICY_OPEN ? NULL : find_open(l, addrs[i], now);
                if (l->policy.mode != NETPOLICY_OPEN) {
                        if (!o)
                                continue; /* full: not answered rather than not enforced */
                        /* open already for longer than this answer: nothing to do */
                        if (o->expires < now + ttl * USEC_PER_SEC) {
                                bool live = o->expires > now + USEC_PER_SEC;
                                ip4(addrs[i], d);
                                for (unsigned p = 0; p < l->policy.n_ports; p++) {
                                        if (live)
                                                fprintf(f, "delete element inet %s allow { %s . %s . %u }\n",
                                                        l->g->table, a, d, l->policy.ports[p]);
                                        fprintf(f, "add element inet %s allow { %s . %s . %u timeout %us }\n",
                                                l->g->table, a, d, l->policy.ports[p], ttl);
                                }
                                o->expires = now + ttl * USEC_PER_SEC;
                                changes++;
                        } else
                                ttl = (uint32_t) ((o->expires - now) / USEC_PER_SEC);
                }
                addrs[kept] = addrs[i];
                ttls[kept++] = ttl;
        }
        if (fclose(f) != 0)
                return 0;
        if (changes > 0 && sp_nft_run(l->g->nft, cmd, 0, NULL, &nerr) < 0) {
                log_session(LOG_WARNING, l->session_id, "nft: cannot open %s's addresses: %s", name, nerr.message);
                return 0; /* what is not open is not answered */
        }
        return kept;
}

/* ---- the proxy's view ------------------------------------------------ */

static void *proxy_lookup(void *userdata, uint32_t saddr) {
        return link_by_addr(userdata, saddr);
}

static int proxy_check(void *userdata, void *link, uint32_t daddr, uint16_t dport, const char *name,
                       const char **reason) {
        egress_link *l = link;
        usec_t now = now_mono();
        bool port_ok = false, resolved = false;
        char what[80], d[INET_ADDRSTRLEN];

        for (unsigned i = 0; i < l->policy.n_ports; i++)
                port_ok = port_ok || l->policy.ports[i] == dport;
        for (unsigned i = 0; i < l->n_open; i++)
                resolved = resolved || (l->open[i].addr == daddr && l->open[i].expires > now);
        *reason = NULL;
        if (!port_ok)
                *reason = "port not listed";
        else if (!address_reachable(l, daddr))
                *reason = "address never reachable";
        else {
                for (unsigned i = 0; i < l->policy.n_cidrs; i++)
                        if (netpolicy_cidr_contains(&l->policy.cidrs[i], ntohl(daddr)))
                                return 0; /* listed by address: no name needed */
                if (!resolved)
                        *reason = "address not resolved";
                else if (!name)
                        *reason = "no SNI or Host";
                else if (!netpolicy_allows_name(&l->policy, name))
                        *reason = "SNI/Host not allowed";
                else
                        return 0;
        }
        snprintf(what, sizeof(what), "%.40s@%s:%u", name ? name : "", ip4(daddr, d), dport);
        note_denied(l, what, *reason);
        l->g->proxy_refused++;
        log_denied(l->g, l, "connection", what, *reason);
        return -EPERM;
}

/* ---- observability ---------------------------------------------------- */

typedef struct denied_acc {
        uint64_t packets;
        json_t *list;
} denied_acc;

static void collect_denied(egress_link *l, json_t *val, uint64_t packets, void *ud) {
        denied_acc *acc = ud;
        acc->packets += packets;
        if (json_array_size(acc->list) < 32)
                json_array_append_new(acc->list,
                                      json_pack("{s:O,s:O,s:O,s:I}", "address", json_array_get(val, 1), "protocol",
                                                json_array_get(val, 2), "port", json_array_get(val, 3), "packets",
                                                (json_int_t) packets));
}

json_t *egress_link_to_json(egress_link *l, bool with_denied) {
        char a[INET_ADDRSTRLEN], gw[INET_ADDRSTRLEN];
        uint64_t rx = 0, tx = 0;
        json_t *j;

        (void) sp_veth_stats(l->ifindex, &rx, &tx);
        j = json_pack("{s:s,s:s,s:s,s:I,s:I}", "address", ip4(l->addr, a), "gateway", ip4(l->gateway, gw),
                      "interface", l->ifname, "bytes_in", (json_int_t) tx, "bytes_out", (json_int_t) rx);
        if (j && with_denied) {
                denied_acc acc = {.list = json_array()};
                json_t *names = json_array();
                for_each_denied(l, collect_denied, &acc);
                for (unsigned i = 0; i < MIN(l->n_recent, (unsigned) DENIED_RECENT); i++)
                        json_array_append_new(names, json_pack("{s:s,s:s}", "name", l->recent[i].what, "reason",
                                                               l->recent[i].reason));
                json_object_set_new(j, "denied",
                                    json_pack("{s:I,s:I,s:o,s:o}", "dns", (json_int_t) l->denied_names, "packets",
                                              (json_int_t) acc.packets, "names", names, "connections", acc.list));
        }
        return j;
}

void egress_write_metrics(egress *g, FILE *f) {
        uint64_t in = g->bytes_in_done, out = g->bytes_out_done;
        resolver_stats rs = {};
        unsigned live = 0;

        for (unsigned i = 0; i < g->n_slots; i++) {
                uint64_t rx, tx;
                if (!g->links[i])
                        continue;
                live++;
                if (sp_veth_stats(g->links[i]->ifindex, &rx, &tx) >= 0)
                        in += tx, out += rx;
        }
        resolver_get_stats(g->resolver, &rs);
        fprintf(f,
                "# HELP sandpool_network_sessions Sessions with network now.\n"
                "# TYPE sandpool_network_sessions gauge\nsandpool_network_sessions %u\n"
                "# HELP sandpool_network_attach_total Sandboxes given network, and failures.\n"
                "# TYPE sandpool_network_attach_total counter\n"
                "sandpool_network_attach_total{result=\"ok\"} %" PRIu64 "\n"
                "sandpool_network_attach_total{result=\"failed\"} %" PRIu64 "\n"
                "# HELP sandpool_network_bytes_total Bytes through sandbox veths.\n"
                "# TYPE sandpool_network_bytes_total counter\n"
                "sandpool_network_bytes_total{direction=\"in\"} %" PRIu64 "\n"
                "sandpool_network_bytes_total{direction=\"out\"} %" PRIu64 "\n"
                "# HELP sandpool_dns_queries_total DNS questions from sandboxes, by answer.\n"
                "# TYPE sandpool_dns_queries_total counter\n"
                "sandpool_dns_queries_total{answer=\"answered\"} %" PRIu64 "\n"
                "sandpool_dns_queries_total{answer=\"nxdomain\"} %" PRIu64 "\n"
                "sandpool_dns_queries_total{answer=\"refused\"} %" PRIu64 "\n"
                "sandpool_dns_queries_total{answer=\"servfail\"} %" PRIu64 "\n"
                "# HELP sandpool_dns_denied_total Names refused to sandboxes.\n"
                "# TYPE sandpool_dns_denied_total counter\nsandpool_dns_denied_total %" PRIu64 "\n"
                "# HELP sandpool_proxy_refused_total HTTP/TLS connections refused by address, SNI or Host.\n"
                "# TYPE sandpool_proxy_refused_total counter\nsandpool_proxy_refused_total %" PRIu64 "\n",
                live, g->attached, g->attach_failures, in, out, rs.answered, rs.nxdomain, rs.refused, rs.servfail,
                g->denied_names, g->proxy_refused);
}
