// SPDX-License-Identifier: Apache-2.0
// Map access and Maglev table swaps.
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <numeric>
#include <vector>

#include "dataplane.h"
#include "inspect.h"

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

// Counts the entries of hash maps off the JS thread: a full conntrack
// table takes milliseconds to walk (see CountEntries).
class CountWorker : public DpWorker {
public:
	CountWorker(Dataplane *dp, std::vector<std::pair<std::string, MapShape>> maps,
		    size_t budget)
		: DpWorker(dp, "sluice:mapCount"), maps_(std::move(maps)), budget_(budget) {}

private:
	void Run() override
	{
		for (const auto &m : maps_) {
			size_t n = 0;
			bool estimated = false;
			const char *call = "";
			if (int err = CountEntries(m.second, budget_, &n, &estimated, &call))
				return Fail(err, call, m.first);
			counts_.push_back(n);
			estimated_.push_back(estimated);
		}
	}

	Napi::Value Finish(Napi::Env env) override
	{
		Napi::Array out = Napi::Array::New(env, counts_.size());
		for (size_t i = 0; i < counts_.size(); i++) {
			Napi::Object o = Napi::Object::New(env);
			o.Set("count", Napi::Number::New(env, static_cast<double>(counts_[i])));
			o.Set("estimated", Napi::Boolean::New(env, estimated_[i]));
			out.Set(i, o);
		}
		return out;
	}

	std::vector<std::pair<std::string, MapShape>> maps_;
	size_t budget_;
	std::vector<size_t> counts_;
	std::vector<bool> estimated_;
};

} // namespace

Napi::Value Dataplane::MapCount(const Napi::CallbackInfo &info)
{
	return RejectOnThrow(info.Env(), [&] { return StartMapCount(info); });
}

Napi::Value Dataplane::StartMapCount(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *op = "mapCount";
	Ready(env, op);
	if (!info[0].IsArray())
		Throw(env, EINVAL, op, "names must be an array of map names", ErrorKind::TypeError);
	Napi::Array names = info[0].As<Napi::Array>();
	std::vector<std::pair<std::string, MapShape>> maps;
	for (uint32_t i = 0; i < names.Length(); i++) {
		const MapEntry &m = Map(env, op, names.Get(i));
		if (!IsHash(m.type))
			Throw(env, EINVAL, op, Name(names.Get(i)) + ": not a hash map (an array holds all its entries)");
		maps.emplace_back(Name(names.Get(i)), static_cast<const MapShape &>(m));
	}
	Napi::Value budgetV = OptField(info[1], "budget");
	size_t budget = budgetV.IsUndefined() ? 0 : GetU32(env, budgetV, op, "budget");
	auto *w = new CountWorker(this, std::move(maps), budget);
	return w->Start();
}

Napi::Value Dataplane::MapInfo(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const MapEntry &m = Map(env, "mapInfo", info[0]);
	return MapInfoObject(env, m, Name(info[0]));
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

Napi::Value Dataplane::MapLookupBatch(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *op = "mapLookupBatch";
	const MapEntry &m = Map(env, op, info[0]);
	std::string name = Name(info[0]);
	if (IsMapOfMaps(m.type))
		Throw(env, EINVAL, op, name + ": a map of maps cannot be read in batches");
	size_t cursorSize = BatchCursorSize(m);
	Bytes in{nullptr, 0};
	if (!info[1].IsNull() && !info[1].IsUndefined()) {
		in = GetBytes(env, info[1], op, "cursor");
		CheckSize(env, op, name, "cursor", in.size, cursorSize);
	}
	uint32_t max = GetU32(env, info[2], op, "max");
	if (max == 0)
		Throw(env, EINVAL, op, name + ": max is 0, must be at least 1");
	/* No batch holds more than the map does: that bounds the buffers. */
	uint32_t count = std::min(max, std::max(m.maxEntries, 1u));

	std::vector<uint8_t> keys(size_t(count) * m.keySize);
	std::vector<uint8_t> values(size_t(count) * m.valueBytes);
	std::vector<uint8_t> out(cursorSize);
	bool done = false;
	const char *call = "";
	if (int err = LookupBatchStep(m, in.data, out.data(), keys.data(), values.data(),
				      &count, &done, &call))
		Throw(env, err, call, name);
	Napi::Object o = Napi::Object::New(env);
	o.Set("keys", Copy(env, keys.data(), size_t(count) * m.keySize));
	o.Set("values", Copy(env, values.data(), size_t(count) * m.valueBytes));
	o.Set("count", Napi::Number::New(env, count));
	o.Set("next", done ? env.Null() : Napi::Value(Copy(env, out.data(), out.size())));
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

// An mmapable ARRAY whose memory is a plain array of __u32 slots: elements
// of value_size a multiple of 8 (an mmapable array's element stride), each
// holding value_size / 4 slots.
static const MapEntry &SlotArray(Napi::Env env, const char *op, const Napi::Value &name,
				 const MapEntry &m)
{
	if (m.type != BPF_MAP_TYPE_ARRAY || !(m.mapFlags & BPF_F_MMAPABLE) || m.valueSize % 8)
		Throw(env, EINVAL, op, Name(name) + ": not an mmapable ARRAY of __u32 slots");
	return m;
}

static uint64_t SlotCount(const MapEntry &m)
{
	return uint64_t(m.maxEntries) * (m.valueSize / 4);
}

static void CheckRegion(Napi::Env env, const char *op, const std::string &map,
			const MapEntry &m, uint64_t start, uint64_t count)
{
	if (count == 0 || start + count > SlotCount(m))
		Throw(env, EINVAL, op, map + ": slots [" + std::to_string(start) + ", " +
			  std::to_string(start + count) + ") are not within [0, " +
			  std::to_string(SlotCount(m)) + ")", ErrorKind::RangeError);
}

/* Slots [lo, hi) of an array, mapped: at(slot) is the slot's address. */
struct MappedSlots {
	uint8_t *pages;
	uint64_t offset; /* of pages in the map, in bytes */
	uint8_t *at(uint64_t slot) const { return pages + (slot * 4 - offset); }
};

/*
 * Maps just the pages that hold slots [lo, hi), calls fn(MappedSlots) and
 * unmaps them: a copy in or out is one memcpy instead of a per-element
 * update in the kernel (about 0.2 us an element), and no page stays mapped,
 * so the map does not count in the process's resident memory. 0 or an errno.
 */
template <typename Fn>
static int WithSlotsMapped(const MapEntry &m, uint64_t lo, uint64_t hi, bool write, Fn fn)
{
	static const long page = sysconf(_SC_PAGESIZE);
	uint64_t off = (lo * 4) & ~uint64_t(page - 1);
	size_t len = size_t(((hi * 4 + page - 1) & ~uint64_t(page - 1)) - off);
	void *p = mmap(nullptr, len, write ? PROT_READ | PROT_WRITE : PROT_READ,
		       MAP_SHARED, m.fd, off_t(off));
	if (p == MAP_FAILED)
		return errno;
	fn(MappedSlots{static_cast<uint8_t *>(p), off});
	munmap(p, len);
	return 0;
}

/* Copies slots [start, start + count) in or out of the array. 0 or an errno. */
static int CopyMapped(const MapEntry &m, uint32_t start, uint32_t count,
		      void *buf, bool write)
{
	return WithSlotsMapped(m, start, uint64_t(start) + count, write, [&](MappedSlots s) {
		if (write)
			std::memcpy(s.at(start), buf, size_t(count) * 4);
		else
			std::memcpy(buf, s.at(start), size_t(count) * 4);
	});
}

/*
 * The one way to write the slot array: regions (Maglev tables), one or
 * many. When they lie close together, as fresh regions do, one mapping
 * spans them all, instead of a mapping, its page faults and an unmapping (a
 * TLB shootdown on every CPU the process runs on) per table. Regions far
 * apart are copied one by one. 0 or an errno.
 */
struct Region {
	uint32_t start;
	uint32_t count;
	uint32_t *values;
};

static int CopyRegionsMapped(const MapEntry &m, const std::vector<Region> &regions)
{
	uint64_t lo = UINT64_MAX, hi = 0, total = 0;
	for (const Region &r : regions) {
		lo = std::min<uint64_t>(lo, r.start);
		hi = std::max<uint64_t>(hi, uint64_t(r.start) + r.count);
		total += r.count;
	}
	/* Spanning more than twice the data, plus a megabyte, is not worth it. */
	if ((hi - lo) * 4 > total * 8 + (1u << 20)) {
		for (const Region &r : regions)
			if (int err = CopyMapped(m, r.start, r.count, r.values, true))
				return err;
		return 0;
	}
	return WithSlotsMapped(m, lo, hi, true, [&](MappedSlots s) {
		for (const Region &r : regions)
			std::memcpy(s.at(r.start), r.values, size_t(r.count) * 4);
	});
}

Napi::Value Dataplane::ArrayWriteRegions(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *op = "arrayWriteRegions";
	const MapEntry &m = SlotArray(env, op, info[0], Map(env, op, info[0]));
	if (!info[1].IsTypedArray() ||
	    info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
		Throw(env, EINVAL, op, "starts must be a Uint32Array", ErrorKind::TypeError);
	if (!info[2].IsArray())
		Throw(env, EINVAL, op, "tables must be an array of Uint32Array", ErrorKind::TypeError);
	auto starts = info[1].As<Napi::Uint32Array>();
	auto tables = info[2].As<Napi::Array>();
	if (tables.Length() != starts.ElementLength())
		Throw(env, EINVAL, op, "starts and tables differ in length", ErrorKind::RangeError);
	std::vector<Region> regions;
	regions.reserve(tables.Length());
	for (uint32_t i = 0; i < tables.Length(); i++) {
		Napi::Value t = tables[i];
		if (!t.IsTypedArray() || t.As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
			Throw(env, EINVAL, op, "tables[" + std::to_string(i) + "] must be a Uint32Array",
			      ErrorKind::TypeError);
		auto ta = t.As<Napi::Uint32Array>();
		CheckRegion(env, op, Name(info[0]), m, starts[i], ta.ElementLength());
		regions.push_back({starts[i], uint32_t(ta.ElementLength()), ta.Data()});
	}
	if (regions.empty())
		return env.Undefined();
	if (int err = CopyRegionsMapped(m, regions))
		Throw(env, err, "mmap", Name(info[0]));
	return env.Undefined();
}

Napi::Value Dataplane::ArrayRead(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	const char *op = "arrayRead";
	const MapEntry &m = SlotArray(env, op, info[0], Map(env, op, info[0]));
	uint32_t start = GetU32(env, info[1], op, "start");
	uint32_t count = GetU32(env, info[2], op, "count");
	CheckRegion(env, op, Name(info[0]), m, start, count);
	auto out = Napi::Uint32Array::New(env, count);
	if (int err = CopyMapped(m, start, count, out.Data(), false))
		Throw(env, err, "mmap", Name(info[0]));
	return out;
}

} // namespace sluice
