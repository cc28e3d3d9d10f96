/* Compiles only if the installed C headers are self-contained C. */
#include <gmem/hmadvise_abi.h>
#include <gmem/hsakmt_hmadvise.h>

int main(void)
{
	HSA_GMEM_BACKEND backend = HSA_GMEM_BACKEND_NONE;

	if (hsaKmtGmemGetBackend(&backend) != HSAKMT_STATUS_SUCCESS)
		return 1;
	/* Not opened: the library must say so, and name the hint. */
	if (hsaKmtGmemAdvise(0, (void *)0x10000, 4096,
			     HSA_GMEM_HINT_PREFETCH) !=
	    HSAKMT_STATUS_KERNEL_IO_CHANNEL_NOT_OPENED)
		return 2;
	return hsaKmtGmemHintName(HSA_GMEM_HINT_PIN)[0] == 'P' &&
			       HSA_GMEM_HMADV_PIN == 0x1006 ? 0 : 3;
}
