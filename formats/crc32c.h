/*
 * crc32c.h - INTERNAL: CRC-32C (Castagnoli), the checksum of every
 * annkit container header, section table and section.
 *
 * Polynomial 0x1EDC6F41, used bit-reflected (0x82F63B78); initial value
 * 0xFFFFFFFF and final XOR 0xFFFFFFFF, as in iSCSI (RFC 3720, appendix
 * B.4) and the SSE4.2 `crc32` instruction.  Check value:
 * crc32c("123456789") = 0xE3069283.
 */
#ifndef ANN_CRC32C_H
#define ANN_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/**
 * Continue the CRC-32C @p crc (0 to start) over @p len bytes at @p data
 * and return the new value; ann_crc32c(ann_crc32c(0, a, n), b, m) equals
 * the CRC of a followed by b.  Uses the SSE4.2 instruction when the CPU
 * has it (decided once, at the first call), else a slicing-by-8 table.
 * Thread-safe.
 */
uint32_t ann_crc32c(uint32_t crc, const void *data, size_t len);

/** The portable slicing-by-8 implementation (for tests). */
uint32_t ann_crc32c_sw(uint32_t crc, const void *data, size_t len);

/**
 * The SSE4.2 implementation (for tests).  Falls back to
 * ann_crc32c_sw() when the CPU or the build lacks SSE4.2.
 */
uint32_t ann_crc32c_hw(uint32_t crc, const void *data, size_t len);

/** True when ann_crc32c() uses the SSE4.2 instruction on this CPU. */
int ann_crc32c_has_hw(void);

#endif
