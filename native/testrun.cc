// SPDX-License-Identifier: Apache-2.0
// BPF_PROG_TEST_RUN: packets through the loaded programs without a device.
#include <bpf/bpf.h>
#include <linux/bpf.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "dataplane.h"
#include "netns.h"

namespace sluice {

namespace {

// Room for programs that grow the packet (encapsulation).
constexpr size_t kOutSlack = 256;

/* With a ctx, the kernel wants data == 0 (no metadata before the packet)
 * and data_end == the packet's length. */
struct xdp_md XdpCtx(size_t len, uint32_t ifindex)
{
	struct xdp_md ctx;
	std::memset(&ctx, 0, sizeof(ctx));
	ctx.data = 0;
	ctx.data_end = static_cast<uint32_t>(len);
	ctx.ingress_ifindex = ifindex;
	return ctx;
}

double NowNs()
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

class LiveWorker : public DpWorker {
public:
	LiveWorker(Dataplane *dp, int progFd, std::vector<uint8_t> data,
		   uint32_t repeat, uint32_t batchSize, uint32_t ifindex,
		   std::string netns)
		: DpWorker(dp, "sluice:testRunLive"), progFd_(progFd),
		  data_(std::move(data)), repeat_(repeat), batchSize_(batchSize),
		  ifindex_(ifindex), netns_(std::move(netns)) {}

private:
	void Run() override
	{
		/* The kernel resolves ingress_ifindex in the calling thread's
		 * namespace: enter it on this pool thread, for this call only. */
		NetnsGuard guard;
		if (int e = guard.Enter(netns_)) {
			Fail(-e, guard.syscall(), netns_);
			return;
		}
		struct xdp_md ctx = XdpCtx(data_.size(), ifindex_);
		bpf_test_run_opts o;
	ZeroOpts(&o);
		o.data_in = data_.data();
		o.data_size_in = static_cast<uint32_t>(data_.size());
		o.ctx_in = &ctx;
		o.ctx_size_in = sizeof(ctx);
		o.repeat = static_cast<int>(repeat_);
		o.batch_size = batchSize_;
		o.flags = BPF_F_TEST_XDP_LIVE_FRAMES;
		/* The kernel's duration is meaningless in live mode. */
		double start = NowNs();
		int err = bpf_prog_test_run_opts(progFd_, &o);
		wallNs_ = NowNs() - start;
		if (err)
			Fail(err, "bpf_prog_test_run_opts",
			     "xdp live frames, ifindex " + std::to_string(ifindex_) +
				     (netns_.empty() ? "" : " in " + netns_));
	}

	Napi::Value Finish(Napi::Env env) override
	{
		Napi::Object o = Napi::Object::New(env);
		o.Set("wallNs", Napi::Number::New(env, wallNs_));
		return o;
	}

	int progFd_;
	std::vector<uint8_t> data_;
	uint32_t repeat_, batchSize_, ifindex_;
	std::string netns_;
	double wallNs_ = 0;
};

} // namespace

Napi::Value Dataplane::TestRun(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *op = "testRun";
	Ready(env, op);
	std::string prog = GetString(env, info[0], op, "prog");
	if (prog != "xdp" && prog != "tc" && prog != "lookup")
		Throw(env, EINVAL, op,
		      "prog must be 'xdp', 'tc' or 'lookup', not '" + prog + "'",
		      ErrorKind::TypeError);
	if (prog == "lookup" && loaded_->lookupFd < 0)
		Throw(env, ENOENT, op, "the loaded object has no sluice_lookup program");
	Bytes data = GetBytes(env, info[1], op, "data");
	Napi::Value repeatV = OptField(info[2], "repeat");
	Napi::Value ifindexV = OptField(info[2], "ingressIfindex");
	uint32_t repeat = repeatV.IsUndefined() ? 1 : GetU32(env, repeatV, op, "repeat");
	uint32_t ifindex = ifindexV.IsUndefined() ? 0 : GetU32(env, ifindexV, op, "ingressIfindex");
	Napi::Value netnsV = OptField(info[2], "netnsPath");
	std::string netns = netnsV.IsUndefined() ? "" : GetString(env, netnsV, op, "netnsPath");

	std::vector<uint8_t> out(data.size + kOutSlack);
	bpf_test_run_opts o;
	ZeroOpts(&o);
	o.data_in = data.data;
	o.data_size_in = static_cast<uint32_t>(data.size);
	o.data_out = out.data();
	o.data_size_out = static_cast<uint32_t>(out.size());
	o.repeat = static_cast<int>(repeat);

	struct xdp_md xctx;
	struct __sk_buff sctx;
	if (ifindex && prog != "tc") {
		xctx = XdpCtx(data.size, ifindex);
		o.ctx_in = &xctx;
		o.ctx_size_in = sizeof(xctx);
	} else if (ifindex) {
		std::memset(&sctx, 0, sizeof(sctx));
		sctx.ifindex = ifindex;
		/* Arrived there, as at clsact ingress (the kernel takes it
		 * as skb_iif): the programs tell ingress from egress by it. */
		sctx.ingress_ifindex = ifindex;
		o.ctx_in = &sctx;
		o.ctx_size_in = sizeof(sctx);
	}

	int fd = prog == "xdp" ? loaded_->xdpFd
		 : prog == "tc" ? loaded_->tcFd : loaded_->lookupFd;
	int err;
	{
		/* The kernel resolves ingress_ifindex, and the FIB the programs
		 * ask, in the calling thread's namespace. */
		NetnsGuard guard;
		if (int e = guard.Enter(netns))
			Throw(env, -e, guard.syscall(), netns);
		err = bpf_prog_test_run_opts(fd, &o);
	}
	if (err)
		Throw(env, -err, "bpf_prog_test_run_opts",
		      prog + ", " + std::to_string(data.size) + " bytes");

	Napi::Object r = Napi::Object::New(env);
	r.Set("retval", o.retval);
	r.Set("data", Napi::Buffer<uint8_t>::Copy(env, out.data(), o.data_size_out));
	r.Set("durationNs", o.duration);
	return r;
}

Napi::Value Dataplane::TestRunLive(const Napi::CallbackInfo &info)
{
	return RejectOnThrow(info.Env(), [&] { return StartTestRunLive(info); });
}

Napi::Value Dataplane::StartTestRunLive(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *op = "testRunLive";
	Ready(env, op);
	Bytes data = GetBytes(env, info[0], op, "data");
	uint32_t repeat = GetU32(env, OptField(info[1], "repeat"), op, "repeat");
	Napi::Value batchV = OptField(info[1], "batchSize");
	uint32_t batch = batchV.IsUndefined() ? 0 : GetU32(env, batchV, op, "batchSize");
	uint32_t ifindex = GetU32(env, OptField(info[1], "ingressIfindex"), op,
				  "ingressIfindex");
	std::string netns = GetOptString(env, OptField(info[1], "netnsPath"), op, "netnsPath");
	std::vector<uint8_t> copy(data.data, data.data + data.size);

	auto *w = new LiveWorker(this, loaded_->xdpFd, std::move(copy), repeat,
				 batch, ifindex, std::move(netns));
	return w->Start();
}

} // namespace sluice
