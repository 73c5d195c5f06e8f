/* main.c: run a Timber model on a Cortex-M4F board and print its result on UART0.
 *
 * Bare metal: no libc, no printf.  Characters go to the UART data register of a TI TM4C123
 * (Tiva C LaunchPad; the Stellaris LM4F120 is the same), 0x4000C000; set UART0_DR to your
 * board's.  Each output is printed as the hexadecimal bits of the float, so the text is exact:
 * 0x3f000000 is 0.5.  The model comes from
 *
 *     timber compile model.json --target thumbv7em-none-eabihf -o model/
 *
 * which writes model/model.o and model/model.h (TIMBER_N_FEATURES, TIMBER_N_OUTPUTS,
 * timber_infer_single).  tests/backends/test_embedding.py builds it with build.sh and runs it under an emulator.
 */
#include <stdint.h>

#include "model.h"

#define UART0_DR (*(volatile uint32_t *)0x4000C000u)

static void put_char(char c)
{
    UART0_DR = (uint32_t)(unsigned char)c;
}

static void put_text(const char *s)
{
    for (uint32_t i = 0U; s[i] != '\0'; ++i) {
        put_char(s[i]);
    }
}

/* The 32 bits of a float as "0x" and 8 hex digits: exact, no printf, no libm. */
static void put_float_bits(float v)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *const p = (const unsigned char *)&v;
    uint32_t bits = 0U;
    for (uint32_t i = 0U; i < 4U; ++i) {
        bits |= (uint32_t)p[i] << (8U * i); /* little-endian, as every Cortex-M here */
    }
    put_text("0x");
    for (uint32_t shift = 32U; shift > 0U; shift -= 4U) {
        put_char(digits[(bits >> (shift - 4U)) & 0xFU]);
    }
}

/* Sensor rows, e.g. filled from the ADC or an IMU; NaN marks a missing reading. */
static const timber_input_t rows[3][TIMBER_N_FEATURES] = {
    {0.25f, -1.5f, 0.75f, 2.0f},
    {-0.5f, 0.125f, -2.25f, 0.0f},
    {1.0f, __builtin_nanf(""), 0.5f, -0.75f},
};

int main(void)
{
    int status = 0;
    for (uint32_t r = 0U; r < 3U; ++r) {
        timber_output_t out[TIMBER_N_OUTPUTS];
        if (timber_infer_single(rows[r], out, 0) != TIMBER_OK) {
            put_text("error\n");
            status = 1;
        } else {
            put_text("row ");
            put_char("0123456789"[r]);
            put_text(":");
            for (uint32_t k = 0U; k < (uint32_t)TIMBER_N_OUTPUTS; ++k) {
                put_text(" ");
                put_float_bits(out[k]);
            }
            put_text("\n");
        }
    }
    return status;
}
