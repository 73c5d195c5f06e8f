#!/bin/sh
# build.sh: firmware.elf for a Cortex-M4F from model.json, run in this directory.
#   ZIG      the zig compiler (default: zig; `python -m ziglang` works too)
#   TIMBER   the timber command (default: timber)
#   RUNTIME  the ARM run-time ABI helpers the model calls (`--size` lists them: soft double
#            arithmetic on an FPU that is single precision only): libgcc.a of arm-none-eabi-gcc
#            (`arm-none-eabi-gcc -mcpu=cortex-m4 -mfloat-abi=hard -mfpu=fpv4-sp-d16
#            -print-libgcc-file-name`) or a compiler-rt built for the same CPU.
set -eu
ZIG=${ZIG:-zig}
TIMBER=${TIMBER:-timber}
$TIMBER compile model.json --target thumbv7em-none-eabihf -o model/ --size
CFLAGS="-target thumb-freestanding-eabihf -mcpu=cortex_m4+vfp4d16sp -O2 -ffreestanding -Wall -Wextra -Werror -Imodel"
$ZIG cc $CFLAGS -c main.c -o main.o
$ZIG cc $CFLAGS -c startup.c -o startup.o
$ZIG ld.lld -T cortex-m4f.ld --gc-sections main.o startup.o model/model.o "$RUNTIME" -o firmware.elf
