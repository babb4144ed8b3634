// SPDX-License-Identifier: Apache-2.0
// netns.h: run a call inside another network namespace on this thread.
#ifndef SLUICE_NATIVE_NETNS_H
#define SLUICE_NATIVE_NETNS_H

#include <string>

namespace sluice {

// Enter() switches the calling thread into the namespace at `path` (e.g.
// /var/run/netns/NAME); the destructor switches back, whatever happened in
// between. An empty path is a no-op.
class NetnsGuard {
public:
	NetnsGuard() = default;
	~NetnsGuard();
	NetnsGuard(const NetnsGuard &) = delete;
	NetnsGuard &operator=(const NetnsGuard &) = delete;

	// 0, or a positive errno with syscall() naming the call that failed.
	int Enter(const std::string &path);
	const char *syscall() const { return syscall_; }

private:
	int orig_ = -1;
	bool entered_ = false;
	const char *syscall_ = "";
};

} // namespace sluice

#endif
