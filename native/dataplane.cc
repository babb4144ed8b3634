// SPDX-License-Identifier: Apache-2.0
#include "dataplane.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "inspect.h"
#include "layouts.h"
#include "netns.h"
#include "sluice.skel.h"

namespace sluice {

namespace {

constexpr size_t kLogSize = 4 << 20;

// The .rodata variables we set; their types come from the skeleton, so a
// renamed or retyped variable fails the build.
using FibRedirect = decltype(sluice_bpf::sluice_bpf__rodata::cfg_fib_redirect);
using StatelessReply = decltype(sluice_bpf::sluice_bpf__rodata::cfg_stateless_reply);
using RejectRate = decltype(sluice_bpf::sluice_bpf__rodata::cfg_reject_rate);
using RejectBurst = decltype(sluice_bpf::sluice_bpf__rodata::cfg_reject_burst);

int MkdirP(const std::string &path)
{
	for (size_t pos = 1; pos <= path.size(); pos++) {
		if (pos != path.size() && path[pos] != '/')
			continue;
		std::string part = path.substr(0, pos);
		if (mkdir(part.c_str(), 0700) && errno != EEXIST)
			return errno;
	}
	return 0;
}

// Writes one variable of the object's .rodata before load, found by name in
// the object's BTF (works for the embedded object and for objectPath alike).
int SetRodata(struct bpf_object *obj, const char *var, const void *val,
	      size_t size, std::string *detail)
{
	struct bpf_map *map = nullptr, *m;
	bpf_object__for_each_map(m, obj) {
		const char *name = bpf_map__name(m);
		size_t len = std::strlen(name);
		if (len >= 7 && std::strcmp(name + len - 7, ".rodata") == 0)
			map = m;
	}
	struct btf *btf = bpf_object__btf(obj);
	*detail = std::string("object has no .rodata variable ") + var;
	if (!map || !btf)
		return ENOENT;
	int sec = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
	if (sec < 0)
		return ENOENT;
	const struct btf_type *t = btf__type_by_id(btf, sec);
	const struct btf_var_secinfo *vs = btf_var_secinfos(t);
	for (int i = 0; i < btf_vlen(t); i++, vs++) {
		const struct btf_type *vt = btf__type_by_id(btf, vs->type);
		if (std::strcmp(btf__name_by_offset(btf, vt->name_off), var))
			continue;
		size_t total;
		const void *init = bpf_map__initial_value(map, &total);
		if (!init || vs->size != size || vs->offset + size > total) {
			*detail = std::string("unexpected layout of .rodata variable ") + var;
			return EINVAL;
		}
		std::vector<uint8_t> data(static_cast<const uint8_t *>(init),
					  static_cast<const uint8_t *>(init) + total);
		std::memcpy(data.data() + vs->offset, val, size);
		*detail = var;
		return -bpf_map__set_initial_value(map, data.data(), total);
	}
	return ENOENT;
}

uint32_t XdpFlags(Napi::Env env, const std::string &mode, const char *op)
{
	if (mode == "native")
		return XDP_FLAGS_DRV_MODE;
	if (mode == "generic")
		return XDP_FLAGS_SKB_MODE;
	Throw(env, EINVAL, op, "mode must be 'native' or 'generic', not '" + mode + "'",
	      ErrorKind::TypeError);
}

enum bpf_tc_attach_point TcPoint(Napi::Env env, const std::string &dir,
				 const char *op)
{
	if (dir == "ingress")
		return BPF_TC_INGRESS;
	if (dir == "egress")
		return BPF_TC_EGRESS;
	Throw(env, EINVAL, op, "direction must be 'ingress' or 'egress', not '" + dir + "'",
	      ErrorKind::TypeError);
}

void EnterNetns(Napi::Env env, NetnsGuard &guard, const std::string &path)
{
	if (int err = guard.Enter(path))
		Throw(env, err, guard.syscall(), path);
}

// An options argument: undefined, null or an object.
void CheckOptions(Napi::Env env, const Napi::Value &opts, const char *op)
{
	if (!opts.IsUndefined() && !opts.IsNull() && !opts.IsObject())
		Throw(env, EINVAL, op, "options must be an object", ErrorKind::TypeError);
}

std::string Where(uint32_t ifindex, const std::string &how,
		  const std::string &netns)
{
	std::string s = "ifindex " + std::to_string(ifindex) + " " + how;
	if (!netns.empty())
		s += " in " + netns;
	return s;
}

struct LoadOptions {
	std::string pinDir;
	std::string objectPath;
	bool setFib = false;
	FibRedirect fib = 0;
	bool setStateless = false;
	StatelessReply stateless = 0;
	/* Other .rodata settings, all __u32: cfg_<name> -> value. */
	std::vector<std::pair<std::string, uint32_t>> settings;
	bool setRejectRate = false;
	RejectRate rejectRate = 0;
	bool setRejectBurst = false;
	RejectBurst rejectBurst = 0;
	/* Map capacities chosen at load time (e.g. a smaller conntrack for
	 * tests); a pinned map of another size is then refused by libbpf. */
	std::vector<std::pair<std::string, uint32_t>> maxEntries;
	/* Another process's maps, opened to read them (see above). */
	bool observer = false;
};

} // namespace

LoadedObject::~LoadedObject()
{
	if (skel)
		sluice_bpf__destroy(skel);
	else if (obj)
		bpf_object__close(obj);
	std::free(logBuf);
}

// ---- workers ----

DpWorker::DpWorker(Dataplane *dp, const char *name)
	: Napi::AsyncWorker(dp->Env(), name), dp_(dp),
	  deferred_(Napi::Promise::Deferred::New(dp->Env())),
	  self_(Napi::Persistent(dp->Value()))
{
	dp_->inflight_++;
}

DpWorker::~DpWorker() = default;

Napi::Promise DpWorker::Start()
{
	Napi::Promise p = deferred_.Promise();
	Queue();
	return p;
}

void DpWorker::Fail(int err, const std::string &call, const std::string &detail)
{
	failure_.err = err < 0 ? -err : err;
	failure_.syscall = call;
	failure_.detail = detail;
}

void DpWorker::Execute()
{
	Run();
	if (failure_.failed())
		SetError(failure_.syscall);
}

void DpWorker::OnOK()
{
	Napi::Env env = Env();
	try {
		Napi::Value v = Finish(env);
		deferred_.Resolve(v);
	} catch (const Napi::Error &e) {
		deferred_.Reject(e.Value());
	}
	if (--dp_->inflight_ == 0 && dp_->state_ == Dataplane::State::Closed)
		dp_->loaded_.reset();
}

void DpWorker::OnError(const Napi::Error &)
{
	Failed();
	deferred_.Reject(MakeError(Env(), failure_).Value());
	if (--dp_->inflight_ == 0 && dp_->state_ == Dataplane::State::Closed)
		dp_->loaded_.reset();
}

class LoadWorker : public DpWorker {
public:
	LoadWorker(Dataplane *dp, LoadOptions opts)
		: DpWorker(dp, "sluice:load"), opts_(std::move(opts)) {}

private:
	void Run() override;
	Napi::Value Finish(Napi::Env env) override;
	void Failed() override;
	void FailLibbpf(int err, const char *call, const std::string &detail,
			const LibbpfCapture &cap);

	LoadOptions opts_;
	std::unique_ptr<LoadedObject> lo_;
};

void LoadWorker::FailLibbpf(int err, const char *call, const std::string &detail,
			    const LibbpfCapture &cap)
{
	Fail(err, call, detail);
	if (failure_.detail.empty())
		failure_.detail = cap.FirstLine();
	failure_.libbpfLog = cap.text();
}

void LoadWorker::Run()
{
	LibbpfCapture cap;
	auto lo = std::make_unique<LoadedObject>();

	if (NumCpus() <= 0)
		return Fail(-NumCpus(), "libbpf_num_possible_cpus");

	lo->logBuf = static_cast<char *>(std::calloc(1, kLogSize));
	if (!lo->logBuf)
		return Fail(ENOMEM, "calloc");
	bpf_object_open_opts oo;
	ZeroOpts(&oo);
	oo.kernel_log_buf = lo->logBuf;
	oo.kernel_log_size = kLogSize;
	/* Level 0: libbpf loads without a log and, only if a load fails,
	 * retries at level 1 into our buffer. Level 1 from the start would
	 * trace every successful load too, which is slow and can overflow
	 * the buffer (ENOSPC) for a program that is fine. */
	oo.kernel_log_level = 0;

	if (opts_.objectPath.empty()) {
		lo->skel = sluice_bpf__open_opts(&oo);
		if (!lo->skel)
			return FailLibbpf(errno, "sluice_bpf__open_opts", "", cap);
		lo->obj = lo->skel->obj;
	} else {
		lo->obj = bpf_object__open_file(opts_.objectPath.c_str(), &oo);
		if (!lo->obj)
			return FailLibbpf(errno, "bpf_object__open_file",
					  opts_.objectPath + ": " + cap.FirstLine(), cap);
	}

	struct bpf_program *xdp = bpf_object__find_program_by_name(lo->obj, "sluice_xdp");
	struct bpf_program *tc = bpf_object__find_program_by_name(lo->obj, "sluice_tc");
	if (!xdp || !tc)
		return Fail(ENOENT, "bpf_object__find_program_by_name",
			    xdp ? "sluice_tc" : "sluice_xdp");
	/* Optional: objects given by objectPath (the benchmark's baselines)
	 * have none; testRun('lookup') then fails with ENOENT. */
	struct bpf_program *lookup = bpf_object__find_program_by_name(lo->obj, "sluice_lookup");
	const std::pair<const char *, const char *> sockProgs[] = {
		{"connect4", "sluice_connect4"}, {"sendmsg4", "sluice_sendmsg4"},
		{"recvmsg4", "sluice_recvmsg4"}, {"getpeername4", "sluice_getpeer4"},
		{"connect6", "sluice_connect6"}, {"sendmsg6", "sluice_sendmsg6"},
		{"recvmsg6", "sluice_recvmsg6"}, {"getpeername6", "sluice_getpeer6"},
	};

	std::string detail;
	int err = 0;
	if (opts_.setFib)
		err = SetRodata(lo->obj, "cfg_fib_redirect", &opts_.fib,
				sizeof(opts_.fib), &detail);
	if (!err && opts_.setStateless)
		err = SetRodata(lo->obj, "cfg_stateless_reply", &opts_.stateless,
				sizeof(opts_.stateless), &detail);
	for (const auto &st : opts_.settings) {
		if (err)
			break;
		err = SetRodata(lo->obj, ("cfg_" + st.first).c_str(), &st.second,
				sizeof(st.second), &detail);
	}
	if (!err && opts_.setRejectRate)
		err = SetRodata(lo->obj, "cfg_reject_rate", &opts_.rejectRate,
				sizeof(opts_.rejectRate), &detail);
	if (!err && opts_.setRejectBurst)
		err = SetRodata(lo->obj, "cfg_reject_burst", &opts_.rejectBurst,
				sizeof(opts_.rejectBurst), &detail);
	if (err)
		return Fail(err, "bpf_map__set_initial_value", detail);

	for (const auto &me : opts_.maxEntries) {
		struct bpf_map *m = bpf_object__find_map_by_name(lo->obj, me.first.c_str());
		if (!m)
			return Fail(ENOENT, "bpf_object__find_map_by_name", me.first);
		if ((err = bpf_map__set_max_entries(m, me.second)))
			return FailLibbpf(err, "bpf_map__set_max_entries", me.first, cap);
	}

	std::map<std::string, bool> existed;
	struct bpf_map *map;
	if (!opts_.pinDir.empty()) {
		if ((err = MkdirP(opts_.pinDir)))
			return Fail(err, "mkdir", opts_.pinDir);
		bpf_object__for_each_map(map, lo->obj) {
			/* A program array holds the programs the entry points
			 * tail-call (the IPv6 path), and libbpf fills it with
			 * this load's at load. An owner reuses the pinned one:
			 * the programs still attached tail-call into the new
			 * IPv6 program from that moment (never into nothing:
			 * the kernel empties an array when its last holder goes,
			 * and the pin holds it past a daemon's death). An
			 * observer gets one of its own, so that its programs,
			 * loaded with its settings, never go under the running
			 * ones. */
			if (bpf_map__is_internal(map) ||
			    (opts_.observer &&
			     bpf_map__type(map) == BPF_MAP_TYPE_PROG_ARRAY))
				continue;
			std::string path = opts_.pinDir + "/" + bpf_map__name(map);
			existed[bpf_map__name(map)] = access(path.c_str(), F_OK) == 0;
			if ((err = bpf_map__set_pin_path(map, path.c_str())))
				return FailLibbpf(err, "bpf_map__set_pin_path", path, cap);
		}
	}

	lo->logBuf[0] = '\0';
	err = lo->skel ? sluice_bpf__load(lo->skel) : bpf_object__load(lo->obj);
	if (err) {
		FailLibbpf(err, "bpf_object__load", "", cap);
		failure_.hasVerifierLog = true;
		failure_.verifierLog = lo->logBuf;
		return;
	}
	/* Nothing reads the buffer after load. */
	std::free(lo->logBuf);
	lo->logBuf = nullptr;

	lo->xdpFd = bpf_program__fd(xdp);
	lo->tcFd = bpf_program__fd(tc);
	lo->lookupFd = lookup ? bpf_program__fd(lookup) : -1;
	for (const auto &sp : sockProgs) {
		if (struct bpf_program *p = bpf_object__find_program_by_name(lo->obj, sp.second))
			lo->sockFds[sp.first] = bpf_program__fd(p);
	}
	bpf_object__for_each_map(map, lo->obj) {
		if (bpf_map__is_internal(map))
			continue;
		MapEntry e;
		struct bpf_map_info info;
		uint32_t len = sizeof(info);
		std::memset(&info, 0, sizeof(info));
		e.map = map;
		e.fd = bpf_map__fd(map);
		/* From the kernel: a reused pin may differ from the ELF. */
		if ((err = bpf_obj_get_info_by_fd(e.fd, &info, &len)))
			return Fail(err, "bpf_obj_get_info_by_fd", bpf_map__name(map));
		e.type = info.type;
		e.keySize = info.key_size;
		e.valueSize = info.value_size;
		e.maxEntries = info.max_entries;
		e.id = info.id;
		e.mapFlags = info.map_flags;
		e.perCpu = IsPerCpu(e.type);
		e.valueBytes = e.perCpu ? size_t((e.valueSize + 7) & ~7u) * NumCpus()
					: e.valueSize;
		if (existed[bpf_map__name(map)] && bpf_map__is_pinned(map))
			lo->reused.push_back(bpf_map__name(map));
		lo->maps.emplace(bpf_map__name(map), e);
	}
	lo->pinDir = opts_.pinDir;
	lo_ = std::move(lo);
}

Napi::Value LoadWorker::Finish(Napi::Env env)
{
	if (dp_->state_ == Dataplane::State::Closed) {
		lo_.reset();
		Failure f;
		f.err = EBADF;
		f.code = kCodeClosed;
		f.syscall = "load";
		f.detail = "closed while loading";
		throw MakeError(env, f);
	}
	Napi::Array reused = Napi::Array::New(env, lo_->reused.size());
	for (size_t i = 0; i < lo_->reused.size(); i++)
		reused.Set(i, lo_->reused[i]);
	dp_->pinDir_ = lo_->pinDir;
	dp_->loaded_ = std::move(lo_);
	dp_->state_ = Dataplane::State::Loaded;

	Napi::Object out = Napi::Object::New(env);
	out.Set("reused", reused);
	return out;
}

void LoadWorker::Failed()
{
	if (dp_->state_ == Dataplane::State::Loading)
		dp_->state_ = Dataplane::State::Idle;
}

// ---- the object ----

Napi::Function Dataplane::Init(Napi::Env env)
{
	return DefineClass(env, "Dataplane", {
		InstanceMethod<&Dataplane::Load>("load"),
		InstanceMethod<&Dataplane::AttachXdp>("attachXdp"),
		InstanceMethod<&Dataplane::DetachXdp>("detachXdp"),
		InstanceMethod<&Dataplane::AttachTc>("attachTc"),
		InstanceMethod<&Dataplane::DetachTc>("detachTc"),
		InstanceMethod<&Dataplane::DestroyTcHook>("destroyTcHook"),
		InstanceMethod<&Dataplane::AttachCgroup>("attachCgroup"),
		InstanceMethod<&Dataplane::DetachCgroup>("detachCgroup"),
		InstanceMethod<&Dataplane::Attachments>("attachments"),
		InstanceMethod<&Dataplane::Programs>("programs"),
		InstanceMethod<&Dataplane::MapInfo>("mapInfo"),
		InstanceMethod<&Dataplane::MapLookup>("mapLookup"),
		InstanceMethod<&Dataplane::MapUpdate>("mapUpdate"),
		InstanceMethod<&Dataplane::MapDelete>("mapDelete"),
		InstanceMethod<&Dataplane::MapDump>("mapDump"),
		InstanceMethod<&Dataplane::MapLookupBatch>("mapLookupBatch"),
		InstanceMethod<&Dataplane::MapCount>("mapCount"),
		InstanceMethod<&Dataplane::MapUpdateBatch>("mapUpdateBatch"),
		InstanceMethod<&Dataplane::MapDeleteBatch>("mapDeleteBatch"),
		InstanceMethod<&Dataplane::MapClear>("mapClear"),
		InstanceMethod<&Dataplane::PerCpuSum>("perCpuSum"),
		InstanceMethod<&Dataplane::PerCpuSumAll>("perCpuSumAll"),
		InstanceMethod<&Dataplane::ArrayWriteRegions>("arrayWriteRegions"),
		InstanceMethod<&Dataplane::ArrayRead>("arrayRead"),
		InstanceMethod<&Dataplane::TestRun>("testRun"),
		InstanceMethod<&Dataplane::TestRunLive>("testRunLive"),
		InstanceMethod<&Dataplane::Unpin>("unpin"),
		InstanceMethod<&Dataplane::Close>("close"),
		InstanceAccessor<&Dataplane::PinDir>("pinDir"),
	});
}

Dataplane::Dataplane(const Napi::CallbackInfo &info)
	: Napi::ObjectWrap<Dataplane>(info) {}

Dataplane::~Dataplane() = default;

void Dataplane::NotClosed(Napi::Env env, const char *op) const
{
	if (state_ != State::Closed)
		return;
	Failure f;
	f.err = EBADF;
	f.code = kCodeClosed;
	f.syscall = op;
	f.detail = "dataplane is closed";
	throw MakeError(env, f);
}

void Dataplane::Ready(Napi::Env env, const char *op) const
{
	NotClosed(env, op);
	if (state_ == State::Loaded)
		return;
	Failure f;
	f.err = EBADF;
	f.code = kCodeNotLoaded;
	f.syscall = op;
	f.detail = state_ == State::Loading ? "load() has not finished"
					    : "load() first";
	throw MakeError(env, f);
}

const MapEntry &Dataplane::Map(Napi::Env env, const char *op,
			       const Napi::Value &name) const
{
	Ready(env, op);
	std::string n = GetString(env, name, op, "map name");
	auto it = loaded_->maps.find(n);
	if (it == loaded_->maps.end())
		Throw(env, ENOENT, op, "no map named '" + n + "'");
	return it->second;
}

void Dataplane::Forget(const std::string &hook, uint32_t ifindex,
		       const std::string &how, const std::string &netns)
{
	for (auto it = attachments_.begin(); it != attachments_.end();) {
		if (it->hook == hook && it->ifindex == ifindex && it->netns == netns &&
		    (how.empty() || it->how == how))
			it = attachments_.erase(it);
		else
			++it;
	}
}

void Dataplane::Record(Attachment a)
{
	Forget(a.hook, a.ifindex, a.how, a.netns);
	attachments_.push_back(std::move(a));
}

Napi::Array Dataplane::AttachmentsArray(Napi::Env env) const
{
	Napi::Array out = Napi::Array::New(env, attachments_.size());
	for (size_t i = 0; i < attachments_.size(); i++) {
		const Attachment &a = attachments_[i];
		Napi::Object o = Napi::Object::New(env);
		o.Set("hook", a.hook);
		o.Set("ifindex", a.ifindex);
		o.Set(a.hook == "xdp" ? "mode" : "direction", a.how);
		if (!a.netns.empty())
			o.Set("netnsPath", a.netns);
		out.Set(i, o);
	}
	return out;
}

Napi::Value Dataplane::Load(const Napi::CallbackInfo &info)
{
	return RejectOnThrow(info.Env(), [&] { return StartLoad(info); });
}

Napi::Value Dataplane::StartLoad(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *op = "load";
	NotClosed(env, op);
	if (state_ != State::Idle)
		Throw(env, EALREADY, op, state_ == State::Loading
			  ? "a load is in progress" : "already loaded");

	LoadOptions o;
	Napi::Value opts = info[0];
	if (!opts.IsUndefined() && !opts.IsNull() && !opts.IsObject())
		Throw(env, EINVAL, op, "options must be an object", ErrorKind::TypeError);
	o.pinDir = GetOptString(env, OptField(opts, "pinDir"), op, "pinDir");
	while (o.pinDir.size() > 1 && o.pinDir.back() == '/')
		o.pinDir.pop_back();
	o.objectPath = GetOptString(env, OptField(opts, "objectPath"), op, "objectPath");
	Napi::Value fib = OptField(opts, "fibRedirect");
	if (!fib.IsUndefined()) {
		if (!fib.IsBoolean())
			Throw(env, EINVAL, op, "fibRedirect must be a boolean",
			      ErrorKind::TypeError);
		o.setFib = true;
		o.fib = fib.As<Napi::Boolean>().Value() ? 1 : 0;
	}
	Napi::Value observer = OptField(opts, "observer");
	if (!observer.IsUndefined()) {
		if (!observer.IsBoolean())
			Throw(env, EINVAL, op, "observer must be a boolean",
			      ErrorKind::TypeError);
		o.observer = observer.As<Napi::Boolean>().Value();
	}
	Napi::Value stateless = OptField(opts, "statelessReplies");
	if (!stateless.IsUndefined()) {
		if (!stateless.IsBoolean())
			Throw(env, EINVAL, op, "statelessReplies must be a boolean",
			      ErrorKind::TypeError);
		o.setStateless = true;
		o.stateless = stateless.As<Napi::Boolean>().Value() ? 1 : 0;
	}
	Napi::Value settings = OptField(opts, "settings");
	if (!settings.IsUndefined()) {
		if (!settings.IsObject())
			Throw(env, EINVAL, op, "settings must be an object of name -> integer",
			      ErrorKind::TypeError);
		Napi::Object so = settings.As<Napi::Object>();
		Napi::Array names = so.GetPropertyNames();
		for (uint32_t i = 0; i < names.Length(); i++) {
			std::string name = names.Get(i).As<Napi::String>().Utf8Value();
			o.settings.emplace_back(name, GetU32(env, so.Get(name), op,
							   ("settings." + name).c_str()));
		}
	}
	Napi::Value rate = OptField(opts, "rejectRate");
	if (!rate.IsUndefined()) {
		o.setRejectRate = true;
		o.rejectRate = GetU32(env, rate, op, "rejectRate");
	}
	Napi::Value burst = OptField(opts, "rejectBurst");
	if (!burst.IsUndefined()) {
		o.setRejectBurst = true;
		o.rejectBurst = GetU32(env, burst, op, "rejectBurst");
	}

	Napi::Value sizes = OptField(opts, "maxEntries");
	if (!sizes.IsUndefined()) {
		if (!sizes.IsObject())
			Throw(env, EINVAL, op, "maxEntries must be an object of map name -> count",
			      ErrorKind::TypeError);
		Napi::Object so = sizes.As<Napi::Object>();
		Napi::Array names = so.GetPropertyNames();
		for (uint32_t i = 0; i < names.Length(); i++) {
			std::string name = names.Get(i).As<Napi::String>().Utf8Value();
			Napi::Value v = so.Get(name);
			double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
			if (!(d >= 1 && d <= 4294967295.0) || d != static_cast<double>(static_cast<uint32_t>(d)))
				Throw(env, EINVAL, op, "maxEntries." + name + " must be an integer in 1..4294967295",
				      ErrorKind::TypeError);
			o.maxEntries.emplace_back(name, static_cast<uint32_t>(d));
		}
	}

	state_ = State::Loading;
	auto *w = new LoadWorker(this, std::move(o));
	return w->Start();
}

namespace {

// The arguments of the XDP calls: (ifindex, mode, netnsPath?).
struct XdpTarget {
	uint32_t ifindex;
	std::string mode;
	uint32_t flags;
	std::string netns;
};

XdpTarget ParseXdpTarget(Napi::Env env, const Napi::CallbackInfo &info, const char *op)
{
	XdpTarget t{GetU32(env, info[0], op, "ifindex"), GetString(env, info[1], op, "mode"), 0, ""};
	t.flags = XdpFlags(env, t.mode, op);
	t.netns = GetOptString(env, info[2], op, "netnsPath");
	return t;
}

} // namespace

Napi::Value Dataplane::AttachXdp(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *op = "attachXdp";
	Ready(env, op);
	XdpTarget t = ParseXdpTarget(env, info, op);
	CheckOptions(env, info[3], op);
	Napi::Value expected = OptField(info[3], "expectedProgId");

	/* The kernel checks the expectation and attaches in one step, so a
	 * program attached by someone else in between is never replaced:
	 * EBUSY with UPDATE_IF_NOEXIST, EEXIST with REPLACE. */
	int oldFd = -1;
	if (!expected.IsUndefined()) {
		uint32_t id = GetU32(env, expected, op, "expectedProgId");
		if (id == 0)
			t.flags |= XDP_FLAGS_UPDATE_IF_NOEXIST;
		else if ((oldFd = bpf_prog_get_fd_by_id(id)) < 0)
			Throw(env, -oldFd, "bpf_prog_get_fd_by_id",
			      "expected program id " + std::to_string(id));
	}
	ScopedFd old(oldFd);
	bpf_xdp_attach_opts xo;
	ZeroOpts(&xo);
	if (oldFd >= 0) {
		xo.old_prog_fd = oldFd;
		t.flags |= XDP_FLAGS_REPLACE;
	}

	int err;
	{
		NetnsGuard guard;
		EnterNetns(env, guard, t.netns);
		err = bpf_xdp_attach(static_cast<int>(t.ifindex), loaded_->xdpFd, t.flags, &xo);
	}
	if (err) {
		std::string what = Where(t.ifindex, t.mode, t.netns);
		if (!expected.IsUndefined())
			what += ", expecting program " + std::to_string(GetU32(env, expected, op, "expectedProgId"));
		Throw(env, -err, "bpf_xdp_attach", what);
	}
	Record({"xdp", t.ifindex, t.mode, t.netns});
	return env.Undefined();
}


Napi::Value Dataplane::DetachXdp(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *op = "detachXdp";
	NotClosed(env, op);
	XdpTarget t = ParseXdpTarget(env, info, op);

	int err;
	{
		NetnsGuard guard;
		EnterNetns(env, guard, t.netns);
		err = bpf_xdp_detach(static_cast<int>(t.ifindex), t.flags, nullptr);
	}
	if (err)
		Throw(env, -err, "bpf_xdp_detach", Where(t.ifindex, t.mode, t.netns));
	Forget("xdp", t.ifindex, t.mode, t.netns);
	return env.Undefined();
}

namespace {

// The arguments every tc call takes: (ifindex, direction, netnsPath?), and
// the hook and filter they name (sluice's filter is handle 1, priority 1).
struct TcTarget {
	uint32_t ifindex;
	std::string dir;
	std::string netns;
	bpf_tc_hook hook;
	bpf_tc_opts opts;
};

// Fills *t in place: its libbpf options must keep their zeroed padding (see ZeroOpts).
void ParseTcTarget(Napi::Env env, const Napi::CallbackInfo &info, const char *op, TcTarget *t)
{
	t->ifindex = GetU32(env, info[0], op, "ifindex");
	t->dir = GetString(env, info[1], op, "direction");
	ZeroOpts(&t->hook);
	ZeroOpts(&t->opts);
	t->hook.ifindex = static_cast<int>(t->ifindex);
	t->hook.attach_point = TcPoint(env, t->dir, op);
	t->netns = GetOptString(env, info[2], op, "netnsPath");
	t->opts.handle = 1;
	t->opts.priority = 1;
}

} // namespace

Napi::Value Dataplane::AttachTc(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *op = "attachTc";
	Ready(env, op);
	TcTarget t;
	ParseTcTarget(env, info, op, &t);
	CheckOptions(env, info[3], op);
	Napi::Value replace = OptField(info[3], "replace");
	if (!replace.IsUndefined() && !replace.IsBoolean())
		Throw(env, EINVAL, op, "replace must be a boolean", ErrorKind::TypeError);
	t.opts.prog_fd = loaded_->tcFd;
	/* Without REPLACE libbpf asks for an exclusive create: EEXIST if any
	 * filter holds handle 1, priority 1. */
	bool replaceFilter = replace.IsUndefined() || replace.As<Napi::Boolean>().Value();
	t.opts.flags = replaceFilter ? BPF_TC_F_REPLACE : 0;

	int err;
	const char *call = "bpf_tc_hook_create";
	{
		NetnsGuard guard;
		EnterNetns(env, guard, t.netns);
		err = bpf_tc_hook_create(&t.hook);
		if (err == -EEXIST)
			err = 0;
		if (!err) {
			call = "bpf_tc_attach";
			err = bpf_tc_attach(&t.hook, &t.opts);
		}
	}
	if (err)
		Throw(env, -err, call, Where(t.ifindex, t.dir, t.netns));
	Record({"tc", t.ifindex, t.dir, t.netns});
	return env.Undefined();
}

Napi::Value Dataplane::DetachTc(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *op = "detachTc";
	NotClosed(env, op);
	TcTarget t;
	ParseTcTarget(env, info, op, &t);

	int err;
	{
		NetnsGuard guard;
		EnterNetns(env, guard, t.netns);
		err = bpf_tc_detach(&t.hook, &t.opts);
	}
	if (err)
		Throw(env, -err, "bpf_tc_detach", Where(t.ifindex, t.dir, t.netns));
	Forget("tc", t.ifindex, t.dir, t.netns);
	return env.Undefined();
}

Napi::Value Dataplane::DestroyTcHook(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *op = "destroyTcHook";
	NotClosed(env, op);
	TcTarget t;
	ParseTcTarget(env, info, op, &t);
	/* Both points together is how libbpf deletes the clsact qdisc, and
	 * with it the filters of both directions. */
	t.hook.attach_point = static_cast<enum bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);

	int err;
	{
		NetnsGuard guard;
		EnterNetns(env, guard, t.netns);
		err = bpf_tc_hook_destroy(&t.hook);
	}
	if (err)
		Throw(env, -err, "bpf_tc_hook_destroy", Where(t.ifindex, "clsact", t.netns));
	Forget("tc", t.ifindex, "", t.netns);
	return env.Undefined();
}

Napi::Value Dataplane::Programs(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	Ready(env, "programs");
	Napi::Object out = Napi::Object::New(env);
	std::vector<std::pair<std::string, int>> progs = {
		{"xdp", loaded_->xdpFd}, {"tc", loaded_->tcFd},
	};
	for (const auto &sp : loaded_->sockFds)
		progs.emplace_back(sp.first, sp.second);
	for (const auto &p : progs) {
		struct bpf_prog_info pi;
		if (int err = GetProgInfo(p.second, &pi, nullptr))
			Throw(env, err, "bpf_obj_get_info_by_fd", p.first + " program");
		Napi::Object o = Napi::Object::New(env);
		o.Set("id", pi.id);
		o.Set("name", ProgName(pi));
		out.Set(p.first, o);
	}
	return out;
}

Napi::Value XdpQuery(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *op = "xdpQuery";
	uint32_t ifindex = GetU32(env, info[0], op, "ifindex");
	std::string netns = GetOptString(env, info[1], op, "netnsPath");

	bpf_xdp_query_opts q;
	ZeroOpts(&q);
	int err;
	const char *call = "if_indextoname";
	{
		NetnsGuard guard;
		EnterNetns(env, guard, netns);
		/* bpf_xdp_query() picks the interface out of a dump of all
		 * links, so a missing one would read as "nothing attached". */
		char name[IF_NAMESIZE];
		if (!if_indextoname(ifindex, name)) {
			err = errno == ENXIO ? ENODEV : errno;
		} else {
			call = "bpf_xdp_query";
			err = -bpf_xdp_query(static_cast<int>(ifindex), 0, &q);
		}
	}
	if (err)
		Throw(env, err, call, Where(ifindex, "xdp", netns));
	Napi::Object o = Napi::Object::New(env);
	o.Set("attachMode", q.attach_mode);
	o.Set("progId", q.prog_id);
	o.Set("drvProgId", q.drv_prog_id);
	o.Set("skbProgId", q.skb_prog_id);
	o.Set("hwProgId", q.hw_prog_id);
	return o;
}

Napi::Value TcQuery(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	TcTarget t;
	ParseTcTarget(env, info, "tcQuery", &t);

	int err;
	{
		NetnsGuard guard;
		EnterNetns(env, guard, t.netns);
		err = bpf_tc_query(&t.hook, &t.opts);
	}
	/* No clsact qdisc is EINVAL, no filter at handle 1, priority 1 is
	 * ENOENT: either way nothing is attached there. */
	if (err == -EINVAL || err == -ENOENT)
		return Napi::Number::New(env, 0);
	if (err)
		Throw(env, -err, "bpf_tc_query", Where(t.ifindex, t.dir, t.netns));
	return Napi::Number::New(env, t.opts.prog_id);
}

Napi::Value Dataplane::Attachments(const Napi::CallbackInfo &info)
{
	NotClosed(info.Env(), "attachments");
	return AttachmentsArray(info.Env());
}

Napi::Value Dataplane::PinDir(const Napi::CallbackInfo &info)
{
	if (pinDir_.empty())
		return info.Env().Null();
	return Napi::String::New(info.Env(), pinDir_);
}

Napi::Value Dataplane::Unpin(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	Ready(env, "unpin");
	if (pinDir_.empty())
		return env.Undefined();
	for (auto &kv : loaded_->maps) {
		if (!bpf_map__is_pinned(kv.second.map))
			continue;
		int err = bpf_map__unpin(kv.second.map, nullptr);
		if (err && err != -ENOENT)
			Throw(env, -err, "bpf_map__unpin", pinDir_ + "/" + kv.first);
	}
	/* Another instance may still have pins of its own there. */
	if (rmdir(pinDir_.c_str()) && errno != ENOTEMPTY && errno != ENOENT)
		Throw(env, errno, "rmdir", pinDir_);
	return env.Undefined();
}

Napi::Value Dataplane::Close(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	/* Links are not detached: the dataplane keeps forwarding after the
	 * control plane exits. The caller gets the list of what stays. */
	if (state_ != State::Closed) {
		state_ = State::Closed;
		if (inflight_ == 0)
			loaded_.reset();
	}
	return AttachmentsArray(env);
}

// ---- argument helpers ----

Bytes GetBytes(Napi::Env env, const Napi::Value &v, const char *op,
	       const char *what)
{
	if (v.IsTypedArray()) {
		auto ta = v.As<Napi::TypedArray>();
		auto *base = static_cast<const uint8_t *>(ta.ArrayBuffer().Data());
		return {base + ta.ByteOffset(), ta.ByteLength()};
	}
	if (v.IsDataView()) {
		auto dv = v.As<Napi::DataView>();
		auto *base = static_cast<const uint8_t *>(dv.ArrayBuffer().Data());
		return {base + dv.ByteOffset(), dv.ByteLength()};
	}
	if (v.IsArrayBuffer()) {
		auto ab = v.As<Napi::ArrayBuffer>();
		return {static_cast<const uint8_t *>(ab.Data()), ab.ByteLength()};
	}
	Throw(env, EINVAL, op, std::string(what) + " must be a Buffer",
	      ErrorKind::TypeError);
}

uint32_t GetU32(Napi::Env env, const Napi::Value &v, const char *op,
		const char *what)
{
	if (v.IsNumber()) {
		double d = v.As<Napi::Number>().DoubleValue();
		if (d >= 0 && d <= 4294967295.0 && d == static_cast<double>(static_cast<uint32_t>(d)))
			return static_cast<uint32_t>(d);
	}
	Throw(env, EINVAL, op, std::string(what) + " must be an integer in [0, 2^32)",
	      ErrorKind::TypeError);
}

std::string GetString(Napi::Env env, const Napi::Value &v, const char *op,
		      const char *what)
{
	if (!v.IsString())
		Throw(env, EINVAL, op, std::string(what) + " must be a string",
		      ErrorKind::TypeError);
	return v.As<Napi::String>().Utf8Value();
}

std::string GetOptString(Napi::Env env, const Napi::Value &v, const char *op,
			 const char *what)
{
	if (v.IsUndefined() || v.IsNull())
		return {};
	return GetString(env, v, op, what);
}

Napi::Value OptField(const Napi::Value &opts, const char *name)
{
	if (!opts.IsObject())
		return opts.Env().Undefined();
	return opts.As<Napi::Object>().Get(name);
}

} // namespace sluice
