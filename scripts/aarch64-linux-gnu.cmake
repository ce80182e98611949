# Cross build for AArch64 Linux with clang (the compiler macOS builds use),
# run under qemu-aarch64: scripts/test.sh's AArch64 stage, set up by
# scripts/setup-aarch64.sh (Debian's arm64 libraries, multiarch).
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=scripts/aarch64-linux-gnu.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER clang)
set(CMAKE_C_COMPILER_TARGET aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH /usr/lib/aarch64-linux-gnu)
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
# qemu translates blocks of guest instructions together; qemu 10.0.2
# (Debian's bookworm-backports) on an AVX-512 x86-64 host got the unsigned
# 64-bit min of clang's vectorized loop (NEON CMHI against an all-ones
# register, then BIT) wrong that way, and right one instruction per block,
# as under a debugger (Debian 12's qemu 7.2 got the reproducer right either
# way). One instruction per block, then: -one-insn-per-tb since qemu 8.1,
# -singlestep before.
execute_process(COMMAND qemu-aarch64 -h OUTPUT_VARIABLE _mconv_qemu_help ERROR_QUIET)
if(_mconv_qemu_help MATCHES "one-insn-per-tb")
  set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -one-insn-per-tb)
else()
  set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -singlestep)
endif()
