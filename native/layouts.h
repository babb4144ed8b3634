// SPDX-License-Identifier: Apache-2.0
// layouts.h: sizeof/offsetof of the shared structs, and the shared constants.
#ifndef SLUICE_NATIVE_LAYOUTS_H
#define SLUICE_NATIVE_LAYOUTS_H

#include <napi.h>

namespace sluice {

Napi::Value Layouts(const Napi::CallbackInfo &info);
Napi::Value Constants(const Napi::CallbackInfo &info);
// libbpf_num_possible_cpus(), checked once.
int NumCpus();

} // namespace sluice

#endif
