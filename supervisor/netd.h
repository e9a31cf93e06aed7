/* SPDX-License-Identifier: MIT */
#pragma once

/* The blocking half of giving a sandbox its network, off the event loop:
 * a helper process forked at start (while the daemon is small), in the
 * daemon's network namespace, that makes a sandbox's veth pair
 * (runtime/veth.c) and writes its /etc/resolv.conf, one request at a time,
 * and answers with the outcome. rtnetlink serialises on the kernel's
 * rtnl lock, which the teardown of every dying namespace on the host takes
 * too: a veth that takes 0.6 ms on a quiet host took 4.5 ms p50 and 18 ms
 * p90 under other sandboxes' churn, time the loop must not wait for. */

#include <netinet/in.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "veth.h"

typedef struct netd netd;

/* error 0 and the host end's ifindex, or error < 0; work_usec: the
 * helper's own time on it (the rest of the wait is the hand-off). */
typedef void (*netd_done_fn)(int error, int ifindex, uint64_t work_usec, void *userdata);

int netd_new(sd_event *e, netd **ret);
/* Stops the helper; callbacks of requests in flight are not called. */
void netd_free(netd *n);
/* Make the veth of spec for the sandbox whose PID 1 is pidfd, and write
 * nameserver <gateway> into its root_fd's etc/resolv.conf. The fds are
 * duplicated into the request. *ret_id names it for netd_cancel(). */
int netd_request(netd *n, const sp_veth_spec *spec, int pidfd, int root_fd, netd_done_fn cb, void *userdata,
                 uint64_t *ret_id);
/* The answer to that request will not be delivered. */
void netd_cancel(netd *n, uint64_t id);
