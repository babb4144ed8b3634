// SPDX-License-Identifier: Apache-2.0
// shared.h: bpf/include/sluice_shared.h for C++. The header is C and guards
// its layouts with C11 _Static_assert, which g++ does not know; in C++ the
// same check is spelled static_assert.
#ifndef SLUICE_NATIVE_SHARED_H
#define SLUICE_NATIVE_SHARED_H

#define _Static_assert static_assert
#include "sluice_shared.h"
#undef _Static_assert

#endif
