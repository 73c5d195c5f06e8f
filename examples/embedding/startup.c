/* startup.c: the smallest Cortex-M4F start-up: the vector table, then Reset_Handler copies
 * .data, clears .bss, turns the FPU on (the model uses hardware floats: thumbv7em-none-eabihf)
 * and calls main.  The symbols come from cortex-m4f.ld. */
#include <stdint.h>

extern int main(void);
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;

void Reset_Handler(void);
void halt(void);

__attribute__((section(".isr_vector"), used)) static void (*const vectors[2])(void) = {
    (void (*)(void))&_estack,
    Reset_Handler,
};

/* Where the program ends: a debugger (or the test's emulator) stops here. */
__attribute__((noinline)) void halt(void)
{
    for (;;) {
    }
}

void Reset_Handler(void)
{
    uint32_t *src = &_sidata;
    for (uint32_t *dst = &_sdata; dst < &_edata; ++dst) {
        *dst = *src++;
    }
    for (uint32_t *dst = &_sbss; dst < &_ebss; ++dst) {
        *dst = 0U;
    }
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: full access to CP10 and CP11 (the FPU) */
    __asm__ volatile("dsb\n\tisb");
    (void)main();
    halt();
}
