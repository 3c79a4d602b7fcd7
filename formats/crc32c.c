/*
 * crc32c.c - CRC-32C (Castagnoli) for the annkit container.
 *
 * Reflected polynomial 0x82F63B78 (0x1EDC6F41 bit-reversed), initial and
 * final XOR 0xFFFFFFFF (RFC 3720 B.4; formats/container.md section 5).
 * Two implementations give identical results:
 *  - slicing-by-8: eight 256-entry tables; table[0] is the classic
 *    byte-at-a-time table, table[k][b] is the CRC of byte b followed by k
 *    zero bytes, so eight input bytes are folded with eight lookups;
 *  - the SSE4.2 `crc32` instruction (8 bytes per instruction), compiled
 *    with a target attribute and chosen at run time with
 *    __builtin_cpu_supports("sse4.2"), so the library still runs on CPUs
 *    without it.
 */
#include <pthread.h>
#include <string.h>

#include "crc32c.h"

#if defined(__x86_64__) || defined(__i386__)
#define ANN_CRC_X86 1
#include <nmmintrin.h>
#else
#define ANN_CRC_X86 0
#endif

#define CRC32C_POLY 0x82F63B78u

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static int crc_hw;   /* set once by crc_init */

static void crc_init(void)
{
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
        crc_table[0][b] = c;
    }
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = crc_table[0][b];
        for (int t = 1; t < 8; t++) {
            c = (c >> 8) ^ crc_table[0][c & 0xff];
            crc_table[t][b] = c;
        }
    }
#if ANN_CRC_X86
    __builtin_cpu_init();
    crc_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#else
    crc_hw = 0;
#endif
}

static uint32_t crc_sw_raw(uint32_t c, const unsigned char *p, size_t len)
{
    while (len && ((uintptr_t)p & 7)) {
        c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xff];
        len--;
    }
    while (len >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        lo = __builtin_bswap32(lo);
        hi = __builtin_bswap32(hi);
#endif
        lo ^= c;
        c = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
            crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
            crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
            crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xff];
    return c;
}

/** Slicing-by-8 CRC-32C of @p len bytes at @p data, continuing @p crc (0 to start).  Thread-safe. */
uint32_t ann_crc32c_sw(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&crc_once, crc_init);
    return ~crc_sw_raw(~crc, data, len);
}

#if ANN_CRC_X86
__attribute__((target("sse4.2")))
static uint32_t crc_hw_raw(uint32_t c, const unsigned char *p, size_t len)
{
    while (len && ((uintptr_t)p & 7)) {
        c = _mm_crc32_u8(c, *p++);
        len--;
    }
#if defined(__x86_64__)
    uint64_t c64 = c;
    while (len >= 32) {
        uint64_t w0, w1, w2, w3;
        memcpy(&w0, p, 8);
        memcpy(&w1, p + 8, 8);
        memcpy(&w2, p + 16, 8);
        memcpy(&w3, p + 24, 8);
        c64 = _mm_crc32_u64(c64, w0);
        c64 = _mm_crc32_u64(c64, w1);
        c64 = _mm_crc32_u64(c64, w2);
        c64 = _mm_crc32_u64(c64, w3);
        p += 32;
        len -= 32;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c64 = _mm_crc32_u64(c64, w);
        p += 8;
        len -= 8;
    }
    c = (uint32_t)c64;
#else
    while (len >= 4) {
        uint32_t w;
        memcpy(&w, p, 4);
        c = _mm_crc32_u32(c, w);
        p += 4;
        len -= 4;
    }
#endif
    while (len--)
        c = _mm_crc32_u8(c, *p++);
    return c;
}
#endif

/** SSE4.2 CRC-32C (slicing-by-8 when the CPU lacks SSE4.2), continuing @p crc.  Thread-safe. */
uint32_t ann_crc32c_hw(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&crc_once, crc_init);
#if ANN_CRC_X86
    if (crc_hw)
        return ~crc_hw_raw(~crc, data, len);
#endif
    return ~crc_sw_raw(~crc, data, len);
}

/** 1 when this CPU has SSE4.2 and ann_crc32c() uses it, else 0. */
int ann_crc32c_has_hw(void)
{
    pthread_once(&crc_once, crc_init);
    return crc_hw;
}

/**
 * CRC-32C of @p len bytes at @p data continuing @p crc (0 to start): the
 * SSE4.2 version when the CPU has it (checked once), else slicing-by-8.
 * Thread-safe.
 */
uint32_t ann_crc32c(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&crc_once, crc_init);
#if ANN_CRC_X86
    if (crc_hw)
        return ~crc_hw_raw(~crc, data, len);
#endif
    return ~crc_sw_raw(~crc, data, len);
}
