/* Calls from C, where an enum parameter may carry any int: the library
 * must refuse unknown hint values, whatever their bits. */
#include <stdint.h>

#include "gmem/hsakmt_hmadvise.h"

HSAKMT_STATUS c_caller_advise_with_raw_hint(HSAuint32 node, void *start,
					    HSAuint64 size, uint32_t raw_hint)
{
	return hsaKmtGmemAdvise(node, start, size, (HSA_GMEM_HINT)raw_hint);
}

const char *c_caller_hint_name(uint32_t raw_hint)
{
	return hsaKmtGmemHintName((HSA_GMEM_HINT)raw_hint);
}
