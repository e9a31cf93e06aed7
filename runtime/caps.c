/* SPDX-License-Identifier: MIT */
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/capability.h>

#include "caps.h"
#include "macro.h"

static void cap_freep(cap_t *c) {
        if (*c)
                cap_free(*c);
}

int sp_caps_drop_bounding(void) {
        cap_t caps _cleanup_(cap_freep) = NULL;
        cap_value_t last = cap_max_bits() - 1;

        for (cap_value_t c = 0; c <= last; c++)
                if (cap_drop_bound(c) < 0 && errno != EINVAL)
                        return -errno;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                return -errno;
        caps = cap_get_proc();
        if (!caps)
                return -errno;
        if (cap_clear_flag(caps, CAP_INHERITABLE) < 0 || cap_set_proc(caps) < 0)
                return -errno;
        return 0;
}

int sp_caps_clear_all(void) {
        struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
        struct __user_cap_data_struct d[2] = {};
        return syscall(SYS_capset, &h, d) < 0 ? -errno : 0;
}
