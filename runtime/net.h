/* SPDX-License-Identifier: MIT */
#pragma once

/* In a fresh network namespace: bring up `lo`, the only interface a
 * sandbox has. Uses rtnetlink through libnl-route. */
int sp_net_loopback_up(void);
