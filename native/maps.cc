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

// An ARRAY map of __u32 values: the region [start, start + count).
static const MapEntry &U32Array(Napi::Env env, const char *op, const Napi::Value &name,
			 const MapEntry &m)
{
	if (m.type != BPF_MAP_TYPE_ARRAY || m.keySize != 4 || m.valueSize != 4)
		Throw(env, EINVAL, op, Name(name) + ": not an ARRAY of __u32");
	return m;
}

static void CheckRegion(Napi::Env env, const char *op, const std::string &map,
		 const MapEntry &m, uint64_t start, uint64_t count)
{
	if (count == 0 || start + count > m.maxEntries)
		Throw(env, EINVAL, op, map + ": slots [" + std::to_string(start) + ", " +
			  std::to_string(start + count) + ") are not within [0, " +
			  std::to_string(m.maxEntries) + ")", ErrorKind::RangeError);
}

Napi::Value Dataplane::ArrayWrite(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *op = "arrayWrite";
	const MapEntry &m = U32Array(env, op, info[0], Map(env, op, info[0]));
	uint32_t start = GetU32(env, info[1], op, "start");
	if (!info[2].IsTypedArray() ||
	    info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
		Throw(env, EINVAL, op, "values must be a Uint32Array", ErrorKind::TypeError);
	auto ta = info[2].As<Napi::Uint32Array>();
	size_t n = ta.ElementLength();
	CheckRegion(env, op, Name(info[0]), m, start, n);
	std::vector<uint32_t> keys(n);
	std::iota(keys.begin(), keys.end(), start);
	const char *call = "";
	if (int err = UpdateBatch(m, reinterpret_cast<const uint8_t *>(keys.data()),
				  reinterpret_cast<const uint8_t *>(ta.Data()), n, BPF_ANY, &call))
		Throw(env, err, call, Name(info[0]));
	return env.Undefined();
}

Napi::Value Dataplane::ArrayRead(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *op = "arrayRead";
	const MapEntry &m = U32Array(env, op, info[0], Map(env, op, info[0]));
	uint32_t start = GetU32(env, info[1], op, "start");
	uint32_t count = GetU32(env, info[2], op, "count");
	CheckRegion(env, op, Name(info[0]), m, start, count);
	auto out = Napi::Uint32Array::New(env, count);
	std::vector<uint32_t> keys(count);
	/* The batch continues after the key given as in_batch. */
	uint32_t prev = start - 1, got = count;
	auto opts = ZeroedOpts<bpf_map_batch_opts>();
	int err = bpf_map_lookup_batch(m.fd, start ? &prev : nullptr, &prev,
				       keys.data(), out.Data(), &got, &opts);
	if ((err == 0 || err == -ENOENT) && got == count)
		return out;
	/* Fall back to one lookup per slot. */
	for (uint32_t i = 0; i < count; i++) {
		uint32_t k = start + i;
		if ((err = bpf_map_lookup_elem(m.fd, &k, out.Data() + i)))
			Throw(env, -err, "bpf_map_lookup_elem", Name(info[0]));
	}
	return out;
}

} // namespace sluice
