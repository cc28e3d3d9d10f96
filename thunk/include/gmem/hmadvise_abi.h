/* SPDX-License-Identifier: MIT */
/*
 * PROVISIONAL kernel ABI of the hmadvise() system call.
 *
 * These numbers mirror the draft of include/uapi/linux/gmem.h, which is not
 * merged anywhere yet. They are kept in this one header so that updating the
 * thunk to the final uapi is a one-file change: when the kernel header
 * exists, replace the values below (or include it) and rebuild. The names
 * are the kernel's (HMADV_*, __NR_hmadvise) with the library's HSA_GMEM_
 * prefix, so this header never clashes with the uapi one.
 *
 * The draft syscall number: 463 was the next free x86_64 number in Linux
 * 6.12, but Linux 6.13 gave 463 to setxattrat(). The presence probe (see
 * docs/thunk.md, "Backend selection") therefore also requires GMEM's sysfs
 * directory, /sys/kernel/mm/gmem.
 */
#ifndef HSA_GMEM_HMADVISE_ABI_H
#define HSA_GMEM_HMADVISE_ABI_H

/* System call number. A kernel whose uapi headers have hmadvise (any
 * architecture, arm64 included) gives __NR_hmadvise; otherwise only the
 * provisional x86_64 number is known. Without HSA_GMEM_NR_HMADVISE the
 * library builds without the syscall backend (every probe answers ENOSYS). */
#include <sys/syscall.h>
#if defined(__NR_hmadvise)
#define HSA_GMEM_NR_HMADVISE __NR_hmadvise
#elif defined(__x86_64__)
#define HSA_GMEM_NR_HMADVISE 463 /* PROVISIONAL */
#endif

/* "No node": only valid with HSA_GMEM_HMADV_DONTNEED, where it discards
 * the range like madvise(MADV_DONTNEED). */
#define HSA_GMEM_HMADV_NO_NODE (-1)

/* Behaviors shared with madvise(2); values are madvise's. */
#define HSA_GMEM_HMADV_DONTNEED 4
#define HSA_GMEM_HMADV_PREFETCH 26 /* as in the GMEM RFC */

/* GMEM extensions, in their own range so they never collide with MADV_*. */
#define HSA_GMEM_HMADV_EXTENSION_BASE 0x1000
#define HSA_GMEM_HMADV_PREFERRED_LOC 0x1000
#define HSA_GMEM_HMADV_UNSET_PREFERRED_LOC 0x1001
#define HSA_GMEM_HMADV_ACCESSED_BY 0x1002
#define HSA_GMEM_HMADV_UNSET_ACCESSED_BY 0x1003
#define HSA_GMEM_HMADV_READ_MOSTLY 0x1004
#define HSA_GMEM_HMADV_UNSET_READ_MOSTLY 0x1005
#define HSA_GMEM_HMADV_PIN 0x1006
#define HSA_GMEM_HMADV_UNPIN 0x1007
#define HSA_GMEM_HMADV_NO_ACCESS 0x1008
#define HSA_GMEM_HMADV_UNSET_NO_ACCESS 0x1009

/* The behavior and length of the presence probe: hmadvise(NO_NODE, 0, 0,
 * HSA_GMEM_HMADV_PROBE_BEHAVIOR), made only where /sys/kernel/mm/gmem
 * exists. ENOSYS means "not there". */
#define HSA_GMEM_HMADV_PROBE_BEHAVIOR 0

#endif /* HSA_GMEM_HMADVISE_ABI_H */
