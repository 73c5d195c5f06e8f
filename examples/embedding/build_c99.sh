#!/bin/sh
# build_c99.sh: the same firmware from C99 sources (the MISRA C:2012 profile) instead of model.o:
# any C compiler, here zig's clang in a freestanding build (no libc, no <math.h>).
set -eu
ZIG=${ZIG:-zig}
TIMBER=${TIMBER:-timber}
$TIMBER compile model.json --target c99 --misra -o model/
CFLAGS="-target thumb-freestanding-eabihf -mcpu=cortex_m4+vfp4d16sp -O2 -ffreestanding -Wall -Wextra -Werror -Imodel"
$ZIG cc $CFLAGS -std=c99 -Wpedantic -ffp-contract=off -c model/model.c -o model.o
$ZIG cc $CFLAGS -std=c99 -Wpedantic -ffp-contract=off -c model/model_data.c -o model_data.o
$ZIG cc $CFLAGS -c main.c -o main.o
$ZIG cc $CFLAGS -c startup.c -o startup.o
$ZIG ld.lld -T cortex-m4f.ld --gc-sections main.o startup.o model.o model_data.o "$RUNTIME" -o firmware.elf
