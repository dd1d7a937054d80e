#ifndef PANTAU_CFUZZDRIVER_H
#define PANTAU_CFUZZDRIVER_H
#include <stddef.h>
#include <stdint.h>

/// SwiftPM links an executable target's entry point as `<Target>_main`, so libFuzzer's own `main` is not used:
/// each fuzz target's entry point calls this, which hands over to libFuzzer's driver (LLVMFuzzerRunDriver).
int pantau_fuzz_run(int argc, char **argv, int (*test_one_input)(const uint8_t *data, size_t size));

#endif
