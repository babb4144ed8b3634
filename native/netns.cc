// SPDX-License-Identifier: Apache-2.0
#include "netns.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace sluice {

int NetnsGuard::Enter(const std::string &path)
{
	if (path.empty())
		return 0;
	/* thread-self, not self: setns() moves only this thread, and the
	 * process's main thread may not be the one we run on. */
	orig_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (orig_ < 0) {
		syscall_ = "open";
		return errno;
	}
	int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		syscall_ = "open";
		return errno;
	}
	int rc = setns(fd, CLONE_NEWNET);
	int err = errno;
	close(fd);
	if (rc) {
		syscall_ = "setns";
		return err;
	}
	entered_ = true;
	return 0;
}

NetnsGuard::~NetnsGuard()
{
	/* Carrying on in the wrong namespace would silently point every later
	 * netlink call of this (the JS) thread at the wrong interfaces. */
	if (entered_ && setns(orig_, CLONE_NEWNET)) {
		std::fprintf(stderr, "sluice: cannot return to the original "
			     "network namespace: %s\n", std::strerror(errno));
		std::abort();
	}
	if (orig_ >= 0)
		close(orig_);
}

} // namespace sluice
