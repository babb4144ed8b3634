// SPDX-License-Identifier: Apache-2.0
// dataplane.h: the Dataplane object: owns the loaded BPF object and exposes
// load, attach, map access and test runs. No policy lives here.
#ifndef SLUICE_NATIVE_DATAPLANE_H
#define SLUICE_NATIVE_DATAPLANE_H

#include <napi.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "errors.h"
#include "mapops.h"

struct bpf_map;
struct bpf_object;
struct sluice_bpf;

namespace sluice {

struct MapEntry : MapShape {
	struct bpf_map *map = nullptr;
	uint32_t id = 0;
	uint32_t mapFlags = 0;
};

// What a successful load yields. Built on a worker thread, then owned by
// the Dataplane; destroying it closes every fd (pins and XDP/tc
// attachments stay).
struct LoadedObject {
	LoadedObject() = default;
	~LoadedObject();
	LoadedObject(const LoadedObject &) = delete;
	LoadedObject &operator=(const LoadedObject &) = delete;

	struct sluice_bpf *skel = nullptr; // the embedded object, or null
	struct bpf_object *obj = nullptr;  // skel->obj, or opened from a file
	char *logBuf = nullptr;            // the verifier log buffer
	std::map<std::string, MapEntry> maps;
	int xdpFd = -1;
	int tcFd = -1;
	int lookupFd = -1; // sluice_lookup, never attached; -1 if the object has none
	// The socket programs by hook (connect4, sendmsg4, recvmsg4,
	// getpeername4 and the same with 6); none if the object has them not
	// (objectPath).
	std::map<std::string, int> sockFds;
	std::string pinDir;

	int SockFd(const std::string &hook) const; // -1 if none (cgroup.cc)
	std::vector<std::string> reused;
};

struct Attachment {
	std::string hook;   // "xdp" or "tc"
	uint32_t ifindex;
	std::string how;    // xdp: "native"/"generic"; tc: "ingress"/"egress"
	std::string netns;  // empty: the caller's namespace
};

class Dataplane;

// Base of the addon's async operations (sharp's baton): inputs are copied
// into the subclass before Queue(), Run() works on plain C++ off the JS
// thread, Finish() builds the JS result. The JS object is kept alive and
// the BPF object open until the worker is done.
class DpWorker : public Napi::AsyncWorker {
public:
	DpWorker(Dataplane *dp, const char *name);
	~DpWorker() override;
	Napi::Promise Start();

protected:
	virtual void Run() = 0;
	virtual Napi::Value Finish(Napi::Env env) { return env.Undefined(); }
	virtual void Failed() {}
	void Fail(int err, const std::string &call, const std::string &detail = {});

	Dataplane *dp_;
	Failure failure_;

private:
	void Execute() override;
	void OnOK() override;
	void OnError(const Napi::Error &e) override;

	Napi::Promise::Deferred deferred_;
	Napi::ObjectReference self_;
};

class Dataplane : public Napi::ObjectWrap<Dataplane> {
public:
	static Napi::Function Init(Napi::Env env);
	explicit Dataplane(const Napi::CallbackInfo &info);
	~Dataplane() override;

private:
	friend class DpWorker;
	friend class LoadWorker;

	enum class State { Idle, Loading, Loaded, Closed };

	// Throws ECLOSED after close(), ENOTLOADED before load() resolved.
	void Ready(Napi::Env env, const char *op) const;
	void NotClosed(Napi::Env env, const char *op) const;
	const MapEntry &Map(Napi::Env env, const char *op, const Napi::Value &name) const;
	void Record(Attachment a);
	void Forget(const std::string &hook, uint32_t ifindex,
		    const std::string &how, const std::string &netns);
	Napi::Array AttachmentsArray(Napi::Env env) const;

	// lifecycle (dataplane.cc)
	Napi::Value Load(const Napi::CallbackInfo &info);
	Napi::Value StartLoad(const Napi::CallbackInfo &info);
	Napi::Value AttachXdp(const Napi::CallbackInfo &info);
	Napi::Value DetachXdp(const Napi::CallbackInfo &info);
	Napi::Value AttachTc(const Napi::CallbackInfo &info);
	Napi::Value DetachTc(const Napi::CallbackInfo &info);
	Napi::Value DestroyTcHook(const Napi::CallbackInfo &info);
	// the socket programs on a cgroup (cgroup.cc)
	Napi::Value AttachCgroup(const Napi::CallbackInfo &info);
	Napi::Value DetachCgroup(const Napi::CallbackInfo &info);
	Napi::Value Attachments(const Napi::CallbackInfo &info);
	Napi::Value Programs(const Napi::CallbackInfo &info);
	Napi::Value PinDir(const Napi::CallbackInfo &info);
	Napi::Value Unpin(const Napi::CallbackInfo &info);
	Napi::Value Close(const Napi::CallbackInfo &info);

	// maps (maps.cc)
	Napi::Value MapInfo(const Napi::CallbackInfo &info);
	Napi::Value MapLookup(const Napi::CallbackInfo &info);
	Napi::Value MapUpdate(const Napi::CallbackInfo &info);
	Napi::Value MapDelete(const Napi::CallbackInfo &info);
	Napi::Value MapDump(const Napi::CallbackInfo &info);
	Napi::Value MapLookupBatch(const Napi::CallbackInfo &info);
	Napi::Value MapUpdateBatch(const Napi::CallbackInfo &info);
	Napi::Value MapDeleteBatch(const Napi::CallbackInfo &info);
	Napi::Value MapClear(const Napi::CallbackInfo &info);
	Napi::Value PerCpuSum(const Napi::CallbackInfo &info);
	Napi::Value PerCpuSumAll(const Napi::CallbackInfo &info);
	Napi::Value ArrayWriteRegions(const Napi::CallbackInfo &info);
	Napi::Value ArrayRead(const Napi::CallbackInfo &info);
	Napi::Value MapCount(const Napi::CallbackInfo &info);
	Napi::Value StartMapCount(const Napi::CallbackInfo &info);

	// test runs (testrun.cc)
	Napi::Value TestRun(const Napi::CallbackInfo &info);
	Napi::Value TestRunLive(const Napi::CallbackInfo &info);
	Napi::Value StartTestRunLive(const Napi::CallbackInfo &info);

	State state_ = State::Idle;
	int inflight_ = 0;
	std::unique_ptr<LoadedObject> loaded_;
	std::string pinDir_;
	std::vector<Attachment> attachments_;
};

// What is attached to an interface's hooks, by whomever (dataplane.cc):
// module functions, next to the attach calls whose hooks they read.
Napi::Value XdpQuery(const Napi::CallbackInfo &info);
Napi::Value TcQuery(const Napi::CallbackInfo &info);
// The programs attached to a cgroup for a socket hook, and the cookie of a
// network namespace (cgroup.cc).
Napi::Value CgroupQuery(const Napi::CallbackInfo &info);
Napi::Value DetachCgroupProgram(const Napi::CallbackInfo &info);
Napi::Value NetnsCookie(const Napi::CallbackInfo &info);

// Argument helpers shared by the .cc files; all throw EINVAL TypeErrors.
struct Bytes {
	const uint8_t *data;
	size_t size;
};
Bytes GetBytes(Napi::Env env, const Napi::Value &v, const char *op,
	       const char *what);
uint32_t GetU32(Napi::Env env, const Napi::Value &v, const char *op,
		const char *what);
std::string GetString(Napi::Env env, const Napi::Value &v, const char *op,
		      const char *what);
// undefined/null -> empty
std::string GetOptString(Napi::Env env, const Napi::Value &v, const char *op,
			 const char *what);
Napi::Value OptField(const Napi::Value &opts, const char *name);
// Promise-returning methods reject rather than throw.
template <typename F> Napi::Value RejectOnThrow(Napi::Env env, F &&body)
{
	try {
		return body();
	} catch (const Napi::Error &e) {
		auto d = Napi::Promise::Deferred::New(env);
		d.Reject(e.Value());
		return d.Promise();
	}
}

} // namespace sluice

#endif
