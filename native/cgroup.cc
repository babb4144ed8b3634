// SPDX-License-Identifier: Apache-2.0
// The socket programs (bpf/sock_lb.bpf.c) on a cgroup v2, and the network
// namespace cookie they filter on.
#include "dataplane.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "inspect.h"
#include "netns.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

namespace sluice {

namespace {

enum bpf_attach_type CgroupType(Napi::Env env, const std::string &hook, const char *op)
{
	if (hook == "connect4")
		return BPF_CGROUP_INET4_CONNECT;
	if (hook == "sendmsg4")
		return BPF_CGROUP_UDP4_SENDMSG;
	if (hook == "recvmsg4")
		return BPF_CGROUP_UDP4_RECVMSG;
	if (hook == "getpeername4")
		return BPF_CGROUP_INET4_GETPEERNAME;
	if (hook == "connect6")
		return BPF_CGROUP_INET6_CONNECT;
	if (hook == "sendmsg6")
		return BPF_CGROUP_UDP6_SENDMSG;
	if (hook == "recvmsg6")
		return BPF_CGROUP_UDP6_RECVMSG;
	if (hook == "getpeername6")
		return BPF_CGROUP_INET6_GETPEERNAME;
	Throw(env, EINVAL, op,
	      "hook must be connect4, sendmsg4, recvmsg4, getpeername4, connect6, sendmsg6, recvmsg6 or getpeername6, not '" +
		      hook + "'",
	      ErrorKind::TypeError);
}

// The cgroup directory, opened: ENOENT/ENOTDIR name the path.
int OpenCgroup(Napi::Env env, const std::string &path)
{
	int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		Throw(env, errno, "open", path);
	return fd;
}

} // namespace

int LoadedObject::SockFd(const std::string &hook) const
{
	auto it = sockFds.find(hook);
	return it == sockFds.end() ? -1 : it->second;
}

Napi::Value Dataplane::AttachCgroup(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *op = "attachCgroup";
	Ready(env, op);
	std::string path = GetString(env, info[0], op, "cgroupPath");
	std::string hook = GetString(env, info[1], op, "hook");
	enum bpf_attach_type type = CgroupType(env, hook, op);
	Napi::Value replace = OptField(info[2], "replaceProgId");
	int progFd = loaded_->SockFd(hook);
	if (progFd < 0)
		Throw(env, ENOENT, op, "the object has no program for " + hook);

	int oldFd = -1;
	if (!replace.IsUndefined()) {
		uint32_t id = GetU32(env, replace, op, "replaceProgId");
		if ((oldFd = bpf_prog_get_fd_by_id(id)) < 0)
			Throw(env, -oldFd, "bpf_prog_get_fd_by_id", "program id " + std::to_string(id));
	}
	ScopedFd old(oldFd);
	ScopedFd cg(OpenCgroup(env, path));
	/* ALLOW_MULTI: other tools' programs on the cgroup run too (in
	 * attachment order); REPLACE swaps an earlier sluice's program in place,
	 * refused by the kernel (ENOENT) if it is no longer there. */
	struct bpf_prog_attach_opts o;
	ZeroOpts(&o);
	o.flags = BPF_F_ALLOW_MULTI;
	if (oldFd >= 0) {
		o.flags |= BPF_F_REPLACE;
		o.replace_prog_fd = oldFd;
	}
	if (int err = bpf_prog_attach_opts(progFd, cg.get(), type, &o))
		Throw(env, -err, "bpf_prog_attach_opts", path + " " + hook);
	return env.Undefined();
}

Napi::Value Dataplane::DetachCgroup(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *op = "detachCgroup";
	Ready(env, op);
	std::string path = GetString(env, info[0], op, "cgroupPath");
	std::string hook = GetString(env, info[1], op, "hook");
	enum bpf_attach_type type = CgroupType(env, hook, op);
	int progFd = loaded_->SockFd(hook);
	if (progFd < 0)
		Throw(env, ENOENT, op, "the object has no program for " + hook);
	ScopedFd cg(OpenCgroup(env, path));
	if (int err = bpf_prog_detach2(progFd, cg.get(), type))
		Throw(env, -err, "bpf_prog_detach2", path + " " + hook);
	return env.Undefined();
}

// Detach the program with this id from a cgroup's hook, whoever loaded it
// (`sluice kube-proxy --cleanup` finds an earlier daemon's by its maps).
Napi::Value DetachCgroupProgram(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *op = "detachCgroupProgram";
	std::string path = GetString(env, info[0], op, "cgroupPath");
	std::string hook = GetString(env, info[1], op, "hook");
	enum bpf_attach_type type = CgroupType(env, hook, op);
	uint32_t id = GetU32(env, info[2], op, "progId");
	int fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		Throw(env, -fd, "bpf_prog_get_fd_by_id", "program id " + std::to_string(id));
	ScopedFd prog(fd);
	ScopedFd cg(OpenCgroup(env, path));
	if (int err = bpf_prog_detach2(prog.get(), cg.get(), type))
		Throw(env, -err, "bpf_prog_detach2", path + " " + hook);
	return env.Undefined();
}

Napi::Value CgroupQuery(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *op = "cgroupQuery";
	std::string path = GetString(env, info[0], op, "cgroupPath");
	enum bpf_attach_type type = CgroupType(env, GetString(env, info[1], op, "hook"), op);
	ScopedFd cg(OpenCgroup(env, path));
	/* Programs attached to this cgroup itself, not inherited ones. */
	std::vector<uint32_t> ids(64);
	uint32_t flags = 0, count = ids.size();
	int err = bpf_prog_query(cg.get(), type, 0, &flags, ids.data(), &count);
	if (err == -ENOSPC) {
		ids.resize(count);
		err = bpf_prog_query(cg.get(), type, 0, &flags, ids.data(), &count);
	}
	if (err)
		Throw(env, -err, "bpf_prog_query", path);
	Napi::Array out = Napi::Array::New(env, count);
	for (uint32_t i = 0; i < count; i++)
		out.Set(i, ids[i]);
	return out;
}

Napi::Value NetnsCookie(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	std::string netns = GetOptString(env, info[0], "netnsCookie", "netnsPath");
	uint64_t cookie = 0;
	socklen_t len = sizeof(cookie);
	int err = 0;
	const char *call = "socket";
	{
		NetnsGuard guard;
		if ((err = guard.Enter(netns)))
			Throw(env, err, guard.syscall(), netns);
		/* A socket is made in the thread's namespace; its cookie is the
		 * namespace's. */
		ScopedFd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
		if (s.get() < 0) {
			err = errno;
		} else if (getsockopt(s.get(), SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len)) {
			call = "getsockopt";
			err = errno;
		}
	}
	if (err)
		Throw(env, err, call, netns.empty() ? "SO_NETNS_COOKIE" : "SO_NETNS_COOKIE in " + netns);
	return Napi::BigInt::New(env, cookie);
}

} // namespace sluice
