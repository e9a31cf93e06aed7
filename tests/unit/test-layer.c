/* SPDX-License-Identifier: MIT */
/* runtime/layer.c on a real filesystem (a directory under /tmp), as root:
 * what an overlay upper may hold is kept (whiteouts, opaque directories,
 * symlinks not followed, owners shifted), what could carry privilege into
 * the next sandbox is refused (device nodes, setuid and setgid files,
 * owners outside the range), the caps hold. Skipped (77) when not root. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <cmocka.h>

#include "layer.h"
#include "sandbox.h"

#define BASE 200000u /* the source's id base */

static char root[64];
static int src, dst;

static int setup(void **state) {
        snprintf(root, sizeof(root), "/tmp/test-layer-XXXXXX");
        assert_non_null(mkdtemp(root));
        int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(mkdirat(fd, "src", 0755), 0);
        assert_int_equal(mkdirat(fd, "dst", 0755), 0);
        src = openat(fd, "src", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        dst = openat(fd, "dst", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_int_equal(fchown(src, BASE, BASE), 0);
        close(fd);
        return 0;
}

static int teardown(void **state) {
        close(src);
        close(dst);
        assert_int_equal(sp_layer_remove(AT_FDCWD, root), 0);
        return 0;
}

static void put(const char *name, const char *text, uid_t uid, mode_t mode) {
        int fd = openat(src, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
        assert_int_equal(fchown(fd, uid, uid), 0);
        assert_int_equal(fchmod(fd, mode), 0);
        close(fd);
}

static void test_keeps_what_an_upper_holds(void **state) {
        sp_layer_copy_opts o = {.src_id_base = BASE, .dst_id_base = 0};
        sp_layer_stats st = {};
        sp_error err = {};
        struct stat s;
        char buf[64];

        put("file", "hello", BASE + 1000, 0640);
        assert_int_equal(mkdirat(src, "opaque", 0755), 0);
        assert_int_equal(fchownat(src, "opaque", BASE + 1000, BASE + 1000, 0), 0);
        int od = openat(src, "opaque", O_RDONLY | O_DIRECTORY);
        assert_int_equal(fsetxattr(od, "trusted.overlay.opaque", "y", 1, 0), 0);
        assert_int_equal(fsetxattr(od, "user.other", "x", 1, 0), 0);
        close(od);
        assert_int_equal(mknodat(src, "gone", S_IFCHR | 0, makedev(0, 0)), 0); /* a whiteout */
        assert_int_equal(symlinkat("/etc/shadow", src, "link"), 0);
        assert_int_equal(fchownat(src, "link", BASE, BASE, AT_SYMLINK_NOFOLLOW), 0);

        assert_int_equal(sp_layer_copy(src, dst, &o, &st, &err), 0);
        assert_int_equal(st.whiteouts, 1);
        assert_int_equal(st.files, 5); /* root, file, opaque, gone, link */

        assert_int_equal(fstatat(dst, "file", &s, 0), 0);
        assert_int_equal(s.st_uid, 1000); /* image-relative, as the image has them */
        assert_int_equal(s.st_mode & 07777, 0640);
        int fd = openat(dst, "file", O_RDONLY);
        assert_int_equal(read(fd, buf, sizeof(buf)), 5);
        close(fd);
        assert_int_equal(fstatat(dst, "gone", &s, 0), 0);
        assert_true(S_ISCHR(s.st_mode) && s.st_rdev == makedev(0, 0));
        od = openat(dst, "opaque", O_RDONLY | O_DIRECTORY);
        assert_int_equal(fgetxattr(od, "trusted.overlay.opaque", buf, sizeof(buf)), 1);
        assert_int_equal(fgetxattr(od, "user.other", buf, sizeof(buf)), -1); /* not copied */
        close(od);
        assert_int_equal(fstatat(dst, "link", &s, AT_SYMLINK_NOFOLLOW), 0);
        assert_true(S_ISLNK(s.st_mode)); /* copied as a link, never followed */
        ssize_t n = readlinkat(dst, "link", buf, sizeof(buf));
        assert_int_equal(n, 11);
}

static void test_a_fork_shifts_owners_to_the_new_range(void **state) {
        sp_layer_copy_opts o = {.src_id_base = BASE, .dst_id_base = BASE + SP_ID_RANGE};
        sp_error err = {};
        struct stat s;

        put("f", "x", BASE + 1000, 0644);
        assert_int_equal(sp_layer_copy(src, dst, &o, NULL, &err), 0);
        assert_int_equal(fstatat(dst, "f", &s, 0), 0);
        assert_int_equal(s.st_uid, BASE + SP_ID_RANGE + 1000);
}

static void refused(const char *what) {
        sp_layer_copy_opts o = {.src_id_base = BASE};
        sp_error err = {};
        assert_int_equal(sp_layer_copy(src, dst, &o, NULL, &err), -EPERM);
        assert_non_null(strstr(err.message, what));
}

static void test_refuses_devices(void **state) {
        assert_int_equal(mknodat(src, "null", S_IFCHR | 0666, makedev(1, 3)), 0);
        refused("device node");
}

static void test_refuses_setuid_and_setgid(void **state) {
        put("suid", "x", BASE, 04755);
        refused("setuid");
}

static void test_refuses_setgid(void **state) {
        put("sgid", "x", BASE, 02755);
        refused("setgid");
}

static void test_refuses_foreign_owners(void **state) {
        put("host", "x", 0, 0644); /* host root's, not the sandbox's */
        refused("outside the sandbox's range");
}

static void test_size_cap(void **state) {
        sp_layer_copy_opts o = {.src_id_base = BASE, .max_bytes = 8};
        sp_error err = {};
        put("a", "12345", BASE, 0644);
        put("b", "67890", BASE, 0644);
        assert_int_equal(sp_layer_copy(src, dst, &o, NULL, &err), -EFBIG);
        o.max_bytes = 10;
        assert_int_equal(sp_layer_remove(dst, "a"), 0);
        assert_int_equal(sp_layer_remove(dst, "b"), 0);
        assert_int_equal(sp_layer_copy(src, dst, &o, NULL, &err), 0);
}

int main(void) {
        if (geteuid() != 0) {
                fprintf(stderr, "SKIP: needs root (chown, mknod, trusted.* xattrs)\n");
                return 77;
        }
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_keeps_what_an_upper_holds, setup, teardown),
                cmocka_unit_test_setup_teardown(test_a_fork_shifts_owners_to_the_new_range, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refuses_devices, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refuses_setuid_and_setgid, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refuses_setgid, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refuses_foreign_owners, setup, teardown),
                cmocka_unit_test_setup_teardown(test_size_cap, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
