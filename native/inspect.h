// SPDX-License-Identifier: Apache-2.0
// inspect.h: kernel objects read by id or by pin, whoever loaded them: a
// program's identity and maps, a pinned map's shape, a map's memory.
#ifndef SLUICE_NATIVE_INSPECT_H
#define SLUICE_NATIVE_INSPECT_H

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane.h"

struct bpf_prog_info;

namespace sluice {

// Owns a file descriptor: closed on every way out of a scope, thrown JS
// errors included.
class ScopedFd {
public:
	explicit ScopedFd(int fd = -1) : fd_(fd) {}
	~ScopedFd();
	ScopedFd(const ScopedFd &) = delete;
	ScopedFd &operator=(const ScopedFd &) = delete;

	int get() const { return fd_; }

private:
	int fd_;
};

Napi::Value ProgInfo(const Napi::CallbackInfo &info);
Napi::Value PinnedMapInfo(const Napi::CallbackInfo &info);

// The program's info; with mapIds, the ids of the maps it uses too.
// 0 or a positive errno of bpf_obj_get_info_by_fd.
int GetProgInfo(int fd, struct bpf_prog_info *info, std::vector<uint32_t> *mapIds);

// The "name" of a bpf_prog_info, which is not NUL-terminated at full length.
std::string ProgName(const struct bpf_prog_info &info);

// The mapInfo()/pinnedMapInfo() result: m's shape and id, and the bytes
// the kernel accounts to the map now (throws if fdinfo cannot be read).
Napi::Object MapInfoObject(Napi::Env env, const MapEntry &m, const std::string &what);

} // namespace sluice

#endif
