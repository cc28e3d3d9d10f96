/* SPDX-License-Identifier: MIT */
/*
 * hmadvise for ROCm programs: memory placement hints on KFD node ids.
 *
 * One API for both kernels: on a GMEM kernel the hints go to the hmadvise()
 * system call, on a stock ROCm kernel they become KFD SVM attributes
 * (AMDKFD_IOC_SVM through hsaKmtSVMSetAttr). docs/thunk.md has the full
 * mapping, the checks and the backend selection rules.
 *
 * Usage:
 *   hsaKmtGmemOpen();
 *   hsaKmtGmemAdvise(gpu_node, buf, bytes, HSA_GMEM_HINT_PREFETCH);
 *   hsaKmtGmemClose();
 * On failure, hsaKmtGmemLastErrorMessage() says why (per thread).
 */
#ifndef HSA_GMEM_HSAKMT_HMADVISE_H
#define HSA_GMEM_HSAKMT_HMADVISE_H

#include <stddef.h>

/* libhsakmt's types. Newer ROCm installs them under hsakmt/, Debian's
 * libhsakmt-dev 5.2.3 directly in the include folder. */
#if defined(__has_include)
#if __has_include(<hsakmt/hsakmttypes.h>)
#include <hsakmt/hsakmttypes.h>
#else
#include <hsakmttypes.h>
#endif
#else
#include <hsakmttypes.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define HSA_GMEM_API __attribute__((visibility("default")))

/* The version of this header; hsaKmtGmemGetVersion() gives the library's.
 * Before 1.0 a new minor version may also change or remove names (0.3 gave
 * every function the hsaKmtGmem prefix and every type and constant the
 * HSA_GMEM_ prefix; docs/thunk.md lists the old names); the library stays
 * libhsakmt-gmem.so.0 until 1.0. */
#define HSA_GMEM_VERSION_MAJOR 0
#define HSA_GMEM_VERSION_MINOR 3
#define HSA_GMEM_VERSION_PATCH 0

/* Structures the library fills start with StructSize: the caller sets it
 * to sizeof the structure it was compiled with, and the library writes no
 * more than that, so a structure may grow at its end in later versions. */
typedef struct _HSA_GMEM_VERSION {
	HSAuint32 StructSize;
	HSAuint32 Major;       /* incompatible changes (from 1.0 on) */
	HSAuint32 Minor;       /* additions (before 1.0: any change) */
	HSAuint32 Patch;
} HSA_GMEM_VERSION;

/* Hints. Values are this library's own and stable; they are not the
 * kernel's behavior numbers (those live in gmem/hmadvise_abi.h). */
typedef enum _HSA_GMEM_HINT {
	HSA_GMEM_HINT_PREFETCH = 1,          /* migrate to NodeId now */
	HSA_GMEM_HINT_DONTNEED = 2,          /* drop NodeId's copy; see NO_NODE */
	HSA_GMEM_HINT_PREFERRED_LOC = 3,     /* prefer NodeId's memory */
	HSA_GMEM_HINT_UNSET_PREFERRED_LOC = 4,
	HSA_GMEM_HINT_ACCESSED_BY = 5,       /* GPU NodeId maps it, no migration */
	HSA_GMEM_HINT_UNSET_ACCESSED_BY = 6,
	HSA_GMEM_HINT_NO_ACCESS = 7,         /* GPU NodeId must not map it */
	HSA_GMEM_HINT_UNSET_NO_ACCESS = 8,
	HSA_GMEM_HINT_READ_MOSTLY = 9,       /* range may be replicated */
	HSA_GMEM_HINT_UNSET_READ_MOSTLY = 10,
	HSA_GMEM_HINT_PIN = 11,              /* keep resident at NodeId */
	HSA_GMEM_HINT_UNPIN = 12,
	/* Keeps the type 32 bits wide, like libhsakmt's ..._SIZE values.
	 * The library reads a hint as a plain 32-bit value and refuses
	 * anything that is not listed above. */
	HSA_GMEM_HINT_SIZE = 0x7FFFFFFF,
} HSA_GMEM_HINT;

/* NodeId meaning "no node": only with HSA_GMEM_HINT_DONTNEED, where the range
 * is discarded like madvise(MADV_DONTNEED). Same value as INVALID_NODEID. */
#define HSA_GMEM_NO_NODE 0xFFFFFFFFu

/* Returned only when the active backend has no equivalent for a hint (for
 * example PIN on a stock KFD kernel). Nothing was changed in that case. */
#define HSA_GMEM_STATUS_NO_EQUIVALENT HSAKMT_STATUS_NOT_IMPLEMENTED

typedef enum _HSA_GMEM_BACKEND {
	HSA_GMEM_BACKEND_NONE = 0,           /* not opened */
	HSA_GMEM_BACKEND_SYSCALL = 1,        /* GMEM kernel: hmadvise() */
	HSA_GMEM_BACKEND_KFD_SVM = 2,        /* stock kernel, libhsakmt: AMDKFD_IOC_SVM */
	HSA_GMEM_BACKEND_ROCR_SVM = 3,       /* stock kernel, ROCr: hsa_amd_svm_* */
} HSA_GMEM_BACKEND;

/* One node of the KFD topology with its ids in every numbering. */
typedef struct _HSA_GMEM_NODE_INFO {
	HSAuint32 StructSize;  /* set by the caller: sizeof(HSA_GMEM_NODE_INFO) */
	HSAuint32 NodeId;      /* KFD node id (libhsakmt's NodeId) */
	HSAuint32 GpuId;       /* KFD gpu_id; 0 for a CPU node */
	HSAint32 GmemNodeId;   /* hmadvise hnid; -1 when the kernel gives none */
	HSAuint32 IsGpu;       /* 1 for a GPU node, 0 for a CPU node */
} HSA_GMEM_NODE_INFO;

/*
 * Opens the library: reads the KFD topology and selects the backend (the
 * hmadvise syscall when the kernel has it, else KFD SVM). Reference counted
 * like hsaKmtOpenKFD(); every successful open needs one hsaKmtGmemClose().
 * GMEM_THUNK_BACKEND=auto|syscall|kfd overrides the selection.
 */
HSA_GMEM_API HSAKMT_STATUS hsaKmtGmemOpen(void);
/* The library's version; needs no open. */
HSA_GMEM_API HSAKMT_STATUS hsaKmtGmemGetVersion(HSA_GMEM_VERSION *Version);
HSA_GMEM_API HSAKMT_STATUS hsaKmtGmemClose(void);

HSA_GMEM_API HSAKMT_STATUS hsaKmtGmemGetBackend(HSA_GMEM_BACKEND *Backend);

/*
 * Gives the hint for [Start, Start + Size) on KFD node NodeId.
 * Start must be page aligned (HSAKMT_STATUS_MEMORY_ALIGNMENT otherwise);
 * Size is rounded up to whole pages, like the kernel's hmadvise and madvise.
 * Everything is checked before the kernel is called.
 */
HSA_GMEM_API HSAKMT_STATUS hsaKmtGmemAdvise(HSAuint32 NodeId, void *Start,
					    HSAuint64 Size,
					    HSA_GMEM_HINT Hint);

/*
 * Stream-ordered PREFETCH: Stream is a hipStream_t (NULL: the null stream).
 * The range is checked now (same checks and statuses as hsaKmtGmemAdvise);
 * the migration runs when the stream reaches it, after the work queued
 * before, and work queued after waits for it (it is a host function on the
 * stream, hipLaunchHostFunc, from the program's own HIP runtime). The
 * library stays open until it has run. A failure of the migration itself
 * is reported by hsaKmtGmemGetAsyncError().
 */
HSA_GMEM_API HSAKMT_STATUS hsaKmtGmemPrefetchAsync(HSAuint32 NodeId,
						   void *Start,
						   HSAuint64 Size,
						   void *Stream);
/* The first failure of a stream-ordered prefetch since the last call
 * (HSAKMT_STATUS_SUCCESS if none), with its message; clears it. */
HSA_GMEM_API HSAKMT_STATUS hsaKmtGmemGetAsyncError(void);

HSA_GMEM_API HSAKMT_STATUS hsaKmtGmemGetNodeCount(HSAuint32 *NumNodes);
HSA_GMEM_API HSAKMT_STATUS hsaKmtGmemGetNodeInfo(HSAuint32 NodeId,
						 HSA_GMEM_NODE_INFO *Info);
HSA_GMEM_API HSAKMT_STATUS hsaKmtGmemNodeFromGpuId(HSAuint32 GpuId,
						   HSAuint32 *NodeId);
HSA_GMEM_API HSAKMT_STATUS hsaKmtGmemNodeFromGmemNode(HSAint32 GmemNodeId,
						      HSAuint32 *NodeId);

/*
 * HIP device ordinals, numbered as HIP numbers them: the GPU nodes in KFD
 * node order, filtered by ROCR_VISIBLE_DEVICES (indices or GPU-<uuid>) and
 * then HIP_VISIBLE_DEVICES (or CUDA_VISIBLE_DEVICES), as set at the first
 * hsaKmtGmemOpen(). DeviceOrdinal is what hipSetDevice() takes.
 */
HSA_GMEM_API HSAKMT_STATUS hsaKmtGmemGetHipDeviceCount(HSAuint32 *Count);
HSA_GMEM_API HSAKMT_STATUS hsaKmtGmemNodeFromHipDevice(HSAint32 DeviceOrdinal,
						       HSAuint32 *NodeId);

/* Why the last call on this thread failed; "" after a success. */
HSA_GMEM_API const char *hsaKmtGmemLastErrorMessage(void);

/* Name of a hint ("PREFETCH"), or NULL for an unknown value. */
HSA_GMEM_API const char *hsaKmtGmemHintName(HSA_GMEM_HINT Hint);

/*
 * The raw system call, with no checks and no translation: hnid is a GMEM
 * node id and behavior a value from gmem/hmadvise_abi.h. Returns 0, or -1
 * with errno set (ENOSYS when the kernel has no hmadvise).
 */
HSA_GMEM_API int hsaKmtGmemRawHmadvise(int hnid, unsigned long start,
				       size_t len, int behavior);

#ifdef __cplusplus
}
#endif

#endif /* HSA_GMEM_HSAKMT_HMADVISE_H */
