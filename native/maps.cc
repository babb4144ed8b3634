// SPDX-License-Identifier: Apache-2.0
// Map access and Maglev table swaps.
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <numeric>

#include "dataplane.h"

#include "sluice_shared.h"

namespace sluice {

namespace {

constexpr const char *kMaglevOuter = "maglev_tables";

std::string Name(const Napi::Value &v)
{
	return v.As<Napi::String>().Utf8Value();
}

void CheckSize(Napi::Env env, const char *op, const std::string &map,
	       const char *what, size_t got, size_t want)
{
	if (got != want)
		Throw(env, EINVAL, op, map + ": " + what + " is " + std::to_string(got) +
			  " bytes, map wants " + std::to_string(want));
}

// keys (and values) of a batch: whole multiples of the map's sizes.
size_t CheckBatch(Napi::Env env, const char *op, const std::string &map,
		  const MapEntry &m, const Bytes &keys, const Bytes *values)
{
	if (keys.size % m.keySize)
		Throw(env, EINVAL, op, map + ": keys are " + std::to_string(keys.size) +
			  " bytes, not a multiple of the key size " + std::to_string(m.keySize));
	size_t count = keys.size / m.keySize;
	if (values && values->size != count * m.valueBytes)
		Throw(env, EINVAL, op, map + ": values are " + std::to_string(values->size) +
			  " bytes, map wants " + std::to_string(count * m.valueBytes) +
			  " for " + std::to_string(count) + " keys");
	return count;
}

Napi::Buffer<uint8_t> Copy(Napi::Env env, const uint8_t *data, size_t size)
{
	return Napi::Buffer<uint8_t>::Copy(env, data, size);
}

void CheckSummable(Napi::Env env, const char *op, const std::string &map,
		   const MapEntry &m)
{
	if (!m.perCpu || m.valueSize % 8)
		Throw(env, EINVAL, op, map + ": not a per-CPU map of __u64 values");
}

// Reads a whole inner Maglev table by id. 0 or a positive errno.
int ReadInner(uint32_t id, std::vector<uint32_t> &table, const char **call)
{
	int fd = bpf_map_get_fd_by_id(id);
	if (fd < 0) {
		*call = "bpf_map_get_fd_by_id";
		return -fd;
	}
	struct bpf_map_info info;
	uint32_t len = sizeof(info);
	std::memset(&info, 0, sizeof(info));
	int err = bpf_obj_get_info_by_fd(fd, &info, &len);
	if (err) {
		close(fd);
		*call = "bpf_obj_get_info_by_fd";
		return -err;
	}
	MapShape m;
	m.fd = fd;
	m.type = info.type;
	m.keySize = info.key_size;
	m.valueSize = m.valueBytes = info.value_size;
	m.maxEntries = info.max_entries;
	std::vector<uint8_t> keys, values;
	size_t count = 0;
	err = DumpMap(m, keys, values, count, call);
	close(fd);
	if (err)
		return err;
	table.assign(m.maxEntries, 0);
	for (size_t i = 0; i < count; i++) {
		uint32_t k, v;
		std::memcpy(&k, keys.data() + i * 4, 4);
		std::memcpy(&v, values.data() + i * 4, 4);
		if (k < table.size())
			table[k] = v;
	}
	return 0;
}

// Builds a new inner table in full, then swaps it into the outer map in one
// update: a packet sees the old table or the new one, never a mix.
class MaglevWorker : public DpWorker {
public:
	MaglevWorker(Dataplane *dp, int outerFd, uint32_t svcId,
		     std::vector<uint32_t> table)
		: DpWorker(dp, "sluice:setMaglevTable"), outerFd_(outerFd),
		  svcId_(svcId), table_(std::move(table)) {}

private:
	void Run() override
	{
		auto opts = ZeroedOpts<bpf_map_create_opts>();
		opts.map_flags = BPF_F_INNER_MAP;
		uint32_t n = static_cast<uint32_t>(table_.size());
		int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "maglev_inner", 4, 4, n, &opts);
		if (fd < 0)
			return Fail(fd, "bpf_map_create", Detail());

		std::vector<uint32_t> keys(n);
		std::iota(keys.begin(), keys.end(), 0u);
		MapShape m;
		m.fd = fd;
		m.type = BPF_MAP_TYPE_ARRAY;
		m.keySize = m.valueSize = m.valueBytes = 4;
		m.maxEntries = n;
		const char *call = "";
		int err = UpdateBatch(m, reinterpret_cast<const uint8_t *>(keys.data()),
				      reinterpret_cast<const uint8_t *>(table_.data()),
				      n, BPF_ANY, &call);
		if (err) {
			close(fd);
			return Fail(err, call, Detail());
		}
		err = bpf_map_update_elem(outerFd_, &svcId_, &fd, BPF_ANY);
		/* The outer map holds its own reference now. */
		close(fd);
		if (err)
			return Fail(err, "bpf_map_update_elem", Detail());
	}

	std::string Detail() const
	{
		return std::string(kMaglevOuter) + "[" + std::to_string(svcId_) +
		       "], " + std::to_string(table_.size()) + " slots";
	}

	int outerFd_;
	uint32_t svcId_;
	std::vector<uint32_t> table_;
};

} // namespace

Napi::Value Dataplane::MapInfo(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const MapEntry &m = Map(env, "mapInfo", info[0]);
	Napi::Object o = Napi::Object::New(env);
	o.Set("type", m.type);
	o.Set("keySize", m.keySize);
	o.Set("valueSize", m.valueSize);
	o.Set("maxEntries", m.maxEntries);
	o.Set("perCpu", m.perCpu);
	o.Set("id", m.id);
	return o;
}

Napi::Value Dataplane::MapLookup(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *op = "mapLookup";
	const MapEntry &m = Map(env, op, info[0]);
	Bytes key = GetBytes(env, info[1], op, "key");
	CheckSize(env, op, Name(info[0]), "key", key.size, m.keySize);

	std::vector<uint8_t> val(m.valueBytes);
	int err = bpf_map_lookup_elem(m.fd, key.data, val.data());
	if (err == -ENOENT)
		return env.Null();
	if (err)
		Throw(env, -err, "bpf_map_lookup_elem", Name(info[0]));
	return Copy(env, val.data(), val.size());
}

Napi::Value Dataplane::MapUpdate(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *op = "mapUpdate";
	const MapEntry &m = Map(env, op, info[0]);
	Bytes key = GetBytes(env, info[1], op, "key");
	Bytes val = GetBytes(env, info[2], op, "value");
	uint32_t flags = info[3].IsUndefined() ? uint32_t(BPF_ANY) : GetU32(env, info[3], op, "flags");
	CheckSize(env, op, Name(info[0]), "key", key.size, m.keySize);
	CheckSize(env, op, Name(info[0]), "value", val.size, m.valueBytes);

	int err = bpf_map_update_elem(m.fd, key.data, val.data, flags);
	if (err)
		Throw(env, -err, "bpf_map_update_elem", Name(info[0]));
	return env.Undefined();
}

Napi::Value Dataplane::MapDelete(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *op = "mapDelete";
	const MapEntry &m = Map(env, op, info[0]);
	Bytes key = GetBytes(env, info[1], op, "key");
	CheckSize(env, op, Name(info[0]), "key", key.size, m.keySize);

	int err = bpf_map_delete_elem(m.fd, key.data);
	if (err == -ENOENT)
		return Napi::Boolean::New(env, false);
	if (err)
		Throw(env, -err, "bpf_map_delete_elem", Name(info[0]));
	return Napi::Boolean::New(env, true);
}

Napi::Value Dataplane::MapDump(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const MapEntry &m = Map(env, "mapDump", info[0]);
	std::vector<uint8_t> keys, values;
	size_t count = 0;
	const char *call = "";
	if (int err = DumpMap(m, keys, values, count, &call))
		Throw(env, err, call, Name(info[0]));
	Napi::Object o = Napi::Object::New(env);
	o.Set("keys", Copy(env, keys.data(), keys.size()));
	o.Set("values", Copy(env, values.data(), values.size()));
	o.Set("count", Napi::Number::New(env, static_cast<double>(count)));
	return o;
}

Napi::Value Dataplane::MapUpdateBatch(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *op = "mapUpdateBatch";
	const MapEntry &m = Map(env, op, info[0]);
	Bytes keys = GetBytes(env, info[1], op, "keys");
	Bytes values = GetBytes(env, info[2], op, "values");
	size_t count = CheckBatch(env, op, Name(info[0]), m, keys, &values);
	const char *call = "";
	if (int err = UpdateBatch(m, keys.data, values.data, count, BPF_ANY, &call))
		Throw(env, err, call, Name(info[0]));
	return Napi::Number::New(env, static_cast<double>(count));
}

Napi::Value Dataplane::MapDeleteBatch(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *op = "mapDeleteBatch";
	const MapEntry &m = Map(env, op, info[0]);
	Bytes keys = GetBytes(env, info[1], op, "keys");
	size_t count = CheckBatch(env, op, Name(info[0]), m, keys, nullptr);
	size_t deleted = 0;
	const char *call = "";
	if (int err = DeleteBatch(m, keys.data, count, &deleted, &call))
		Throw(env, err, call, Name(info[0]));
	return Napi::Number::New(env, static_cast<double>(deleted));
}

Napi::Value Dataplane::MapClear(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const MapEntry &m = Map(env, "mapClear", info[0]);
	std::vector<uint8_t> keys;
	size_t count = 0, deleted = 0;
	const char *call = "";
	int err = MapKeys(m, keys, count, &call);
	if (!err)
		err = DeleteBatch(m, keys.data(), count, &deleted, &call);
	if (err)
		Throw(env, err, call, Name(info[0]));
	return Napi::Number::New(env, static_cast<double>(deleted));
}

Napi::Value Dataplane::PerCpuSum(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *op = "perCpuSum";
	const MapEntry &m = Map(env, op, info[0]);
	Bytes key = GetBytes(env, info[1], op, "key");
	CheckSize(env, op, Name(info[0]), "key", key.size, m.keySize);
	CheckSummable(env, op, Name(info[0]), m);

	std::vector<uint8_t> val(m.valueBytes);
	int err = bpf_map_lookup_elem(m.fd, key.data, val.data());
	if (err == -ENOENT)
		return env.Null();
	if (err)
		Throw(env, -err, "bpf_map_lookup_elem", Name(info[0]));
	Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, m.valueSize);
	SumPerCpu(m, val.data(), out.Data());
	return out;
}

Napi::Value Dataplane::PerCpuSumAll(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *op = "perCpuSumAll";
	const MapEntry &m = Map(env, op, info[0]);
	CheckSummable(env, op, Name(info[0]), m);
	if (m.type != BPF_MAP_TYPE_PERCPU_ARRAY)
		Throw(env, EINVAL, op, Name(info[0]) + ": not a PERCPU_ARRAY");

	std::vector<uint8_t> out;
	const char *call = "";
	if (int err = SumAllPerCpu(m, out, &call))
		Throw(env, err, call, Name(info[0]));
	return Copy(env, out.data(), out.size());
}

Napi::Value Dataplane::SetMaglevTable(const Napi::CallbackInfo &info)
{
	return RejectOnThrow(info.Env(), [&] { return StartSetMaglevTable(info); });
}

Napi::Value Dataplane::StartSetMaglevTable(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *op = "setMaglevTable";
	const MapEntry &outer = Map(env, op, Napi::String::New(env, kMaglevOuter));
	uint32_t svcId = GetU32(env, info[0], op, "svcId");
	if (!info[1].IsTypedArray() ||
	    info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
		Throw(env, EINVAL, op, "table must be a Uint32Array", ErrorKind::TypeError);
	auto ta = info[1].As<Napi::Uint32Array>();
	size_t n = ta.ElementLength();
	if (n < 1 || n > SLUICE_MAGLEV_MAX)
		Throw(env, EINVAL, op, "table has " + std::to_string(n) +
			  " slots, want 1.." + std::to_string(SLUICE_MAGLEV_MAX),
		      ErrorKind::RangeError);
	std::vector<uint32_t> table(ta.Data(), ta.Data() + n);

	auto *w = new MaglevWorker(this, outer.fd, svcId, std::move(table));
	return w->Start();
}

Napi::Value Dataplane::GetMaglevTable(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *op = "getMaglevTable";
	const MapEntry &outer = Map(env, op, Napi::String::New(env, kMaglevOuter));
	uint32_t svcId = GetU32(env, info[0], op, "svcId");
	uint32_t id;
	int err = bpf_map_lookup_elem(outer.fd, &svcId, &id);
	if (err == -ENOENT)
		return env.Null();
	if (err)
		Throw(env, -err, "bpf_map_lookup_elem", std::string(kMaglevOuter) +
			  "[" + std::to_string(svcId) + "]");

	std::vector<uint32_t> table;
	const char *call = "";
	if ((err = ReadInner(id, table, &call)))
		Throw(env, err, call, "inner map id " + std::to_string(id));
	auto out = Napi::Uint32Array::New(env, table.size());
	std::memcpy(out.Data(), table.data(), table.size() * 4);
	return out;
}

Napi::Value Dataplane::DeleteMaglevTable(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *op = "deleteMaglevTable";
	const MapEntry &outer = Map(env, op, Napi::String::New(env, kMaglevOuter));
	uint32_t svcId = GetU32(env, info[0], op, "svcId");
	int err = bpf_map_delete_elem(outer.fd, &svcId);
	if (err == -ENOENT)
		return Napi::Boolean::New(env, false);
	if (err)
		Throw(env, -err, "bpf_map_delete_elem", std::string(kMaglevOuter) +
			  "[" + std::to_string(svcId) + "]");
	return Napi::Boolean::New(env, true);
}

} // namespace sluice
