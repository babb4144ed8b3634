// SPDX-License-Identifier: Apache-2.0
// sluice_native: the Node-API addon over libbpf.
#include <napi.h>

#include <bpf/libbpf.h>
#include <net/if.h>
#include <sys/file.h>
#include <malloc.h>

#include <cerrno>

#include "dataplane.h"
#include "errors.h"
#include "inspect.h"
#include "layouts.h"
#include "netns.h"

namespace sluice {

namespace {

Napi::Value LibbpfVersion(const Napi::CallbackInfo &info)
{
	return Napi::String::New(info.Env(), libbpf_version_string());
}

Napi::Value IfIndex(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *op = "ifIndex";
	std::string name = GetString(env, info[0], op, "name");
	std::string netns = GetOptString(env, info[1], op, "netnsPath");

	unsigned int idx;
	int err;
	{
		NetnsGuard guard;
		if ((err = guard.Enter(netns)))
			Throw(env, err, guard.syscall(), netns);
		errno = 0;
		idx = if_nametoindex(name.c_str());
		err = errno;
	}
	if (idx == 0) {
		std::string where = netns.empty() ? name : name + " in " + netns;
		Throw(env, err ? err : ENODEV, "if_nametoindex", where);
	}
	return Napi::Number::New(env, idx);
}

Napi::Value Flock(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *op = "flock";
	uint32_t fd = GetU32(env, info[0], op, "fd");
	std::string how = GetString(env, info[1], op, "op");
	int flags;
	/* Never waits: this runs on the JS thread, and a held lock is an
	 * answer for the caller, not something to block on. */
	if (how == "exclusive")
		flags = LOCK_EX | LOCK_NB;
	else if (how == "unlock")
		flags = LOCK_UN;
	else
		Throw(env, EINVAL, op, "op must be 'exclusive' or 'unlock', not '" + how + "'",
		      ErrorKind::TypeError);
	if (flock(static_cast<int>(fd), flags))
		Throw(env, errno, "flock", "fd " + std::to_string(fd));
	return env.Undefined();
}

/* mallopt(3) with a parameter named as glibc names it (without M_). */
Napi::Value Mallopt(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *op = "mallopt";
	std::string name = GetString(env, info[0], op, "param");
	uint32_t value = GetU32(env, info[1], op, "value");
	int param;
	if (name == "ARENA_MAX")
		param = M_ARENA_MAX;
	else if (name == "TRIM_THRESHOLD")
		param = M_TRIM_THRESHOLD;
	else if (name == "MMAP_THRESHOLD")
		param = M_MMAP_THRESHOLD;
	else
		Throw(env, EINVAL, op, "param must be ARENA_MAX, TRIM_THRESHOLD or MMAP_THRESHOLD, not '" + name + "'",
		      ErrorKind::TypeError);
	/* mallopt returns 1 on success, 0 on error (and sets no errno). */
	if (mallopt(param, static_cast<int>(value)) != 1)
		Throw(env, EINVAL, "mallopt", name + " " + std::to_string(value));
	return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports)
{
	InstallLibbpfPrint();
	exports.Set("Dataplane", Dataplane::Init(env));
	exports.Set("layouts", Napi::Function::New(env, Layouts, "layouts"));
	exports.Set("constants", Napi::Function::New(env, Constants, "constants"));
	exports.Set("libbpfVersion", Napi::Function::New(env, LibbpfVersion, "libbpfVersion"));
	exports.Set("ifIndex", Napi::Function::New(env, IfIndex, "ifIndex"));
	exports.Set("flock", Napi::Function::New(env, Flock, "flock"));
	exports.Set("mallopt", Napi::Function::New(env, Mallopt, "mallopt"));
	exports.Set("xdpQuery", Napi::Function::New(env, XdpQuery, "xdpQuery"));
	exports.Set("tcQuery", Napi::Function::New(env, TcQuery, "tcQuery"));
	exports.Set("cgroupQuery", Napi::Function::New(env, CgroupQuery, "cgroupQuery"));
	exports.Set("detachCgroupProgram", Napi::Function::New(env, DetachCgroupProgram, "detachCgroupProgram"));
	exports.Set("netnsCookie", Napi::Function::New(env, NetnsCookie, "netnsCookie"));
	exports.Set("progInfo", Napi::Function::New(env, ProgInfo, "progInfo"));
	exports.Set("pinnedMapInfo", Napi::Function::New(env, PinnedMapInfo, "pinnedMapInfo"));
	return exports;
}

} // namespace

} // namespace sluice

static Napi::Object InitModule(Napi::Env env, Napi::Object exports)
{
	return sluice::Init(env, exports);
}

NODE_API_MODULE(sluice_native, InitModule)
