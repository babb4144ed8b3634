// SPDX-License-Identifier: Apache-2.0
#include "mapops.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace sluice {

namespace {

constexpr uint32_t kChunk = 4096;

bpf_map_batch_opts BatchOpts(uint64_t elem_flags = 0)
{
	bpf_map_batch_opts o;
	ZeroOpts(&o);
	o.elem_flags = elem_flags;
	return o;
}

// get_next_key + lookup; ENOENT on lookup means an empty slot (maps of
// maps) or an entry deleted meanwhile, either way not listed.
int DumpByKeys(const MapShape &m, std::vector<uint8_t> &keys,
	       std::vector<uint8_t> *values, size_t &count, const char **call)
{
	std::vector<uint8_t> cur(m.keySize), next(m.keySize), val(m.valueBytes);
	bool first = true;

	count = 0;
	keys.clear();
	if (values)
		values->clear();
	for (;;) {
		int err = bpf_map_get_next_key(m.fd, first ? nullptr : cur.data(),
					       next.data());
		if (err == -ENOENT)
			break;
		if (err) {
			*call = "bpf_map_get_next_key";
			return -err;
		}
		first = false;
		cur.swap(next);
		if (values || IsMapOfMaps(m.type)) {
			err = bpf_map_lookup_elem(m.fd, cur.data(), val.data());
			if (err == -ENOENT)
				continue;
			if (err) {
				*call = "bpf_map_lookup_elem";
				return -err;
			}
			if (values)
				values->insert(values->end(), val.begin(), val.end());
		}
		keys.insert(keys.end(), cur.begin(), cur.end());
		count++;
	}
	return 0;
}

// Batch lookup; returns -1 (not an errno) when the map type has no batch
// support and nothing was read yet, so that the caller falls back.
int DumpBatch(const MapShape &m, std::vector<uint8_t> &keys,
	      std::vector<uint8_t> &values, size_t &count, const char **call)
{
	std::vector<uint8_t> in(BatchCursorSize(m));
	std::vector<uint8_t> out(in.size());
	uint32_t chunk = std::min(std::max(m.maxEntries, 1u), kChunk);
	bool first = true;
	bool done = false;

	count = 0;
	while (!done) {
		uint32_t n = chunk;
		keys.resize((count + n) * m.keySize);
		values.resize((count + n) * m.valueBytes);
		int err = LookupBatchStep(m, first ? nullptr : in.data(), out.data(),
					  keys.data() + count * m.keySize,
					  values.data() + count * m.valueBytes,
					  &n, &done, call);
		if (err) {
			if (first && count == 0 && BatchUnsupported(err))
				return -1;
			/* A hash bucket holds more entries than fit. */
			if (err == ENOSPC) {
				chunk *= 2;
				continue;
			}
			return err;
		}
		count += n;
		in.swap(out);
		first = false;
	}
	keys.resize(count * m.keySize);
	values.resize(count * m.valueBytes);
	return 0;
}

} // namespace

bool IsHash(uint32_t type)
{
	switch (type) {
	case BPF_MAP_TYPE_HASH:
	case BPF_MAP_TYPE_PERCPU_HASH:
	case BPF_MAP_TYPE_LRU_HASH:
	case BPF_MAP_TYPE_LRU_PERCPU_HASH:
		return true;
	default:
		return false;
	}
}

bool IsPerCpu(uint32_t type)
{
	switch (type) {
	case BPF_MAP_TYPE_PERCPU_HASH:
	case BPF_MAP_TYPE_PERCPU_ARRAY:
	case BPF_MAP_TYPE_LRU_PERCPU_HASH:
	case BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE:
		return true;
	default:
		return false;
	}
}

bool IsMapOfMaps(uint32_t type)
{
	return type == BPF_MAP_TYPE_ARRAY_OF_MAPS ||
	       type == BPF_MAP_TYPE_HASH_OF_MAPS;
}

bool BatchUnsupported(int err)
{
	return err == EINVAL || err == EOPNOTSUPP || err == 524 /* ENOTSUPP */;
}

int DumpMap(const MapShape &m, std::vector<uint8_t> &keys,
	    std::vector<uint8_t> &values, size_t &count, const char **call)
{
	/* The kernel's batch lookup of a map of maps stops at the first empty
	 * slot, so those are walked key by key. */
	if (!IsMapOfMaps(m.type)) {
		int err = DumpBatch(m, keys, values, count, call);
		if (err >= 0)
			return err;
	}
	return DumpByKeys(m, keys, &values, count, call);
}

int MapKeys(const MapShape &m, std::vector<uint8_t> &keys, size_t &count,
	    const char **call)
{
	if (IsMapOfMaps(m.type))
		return DumpByKeys(m, keys, nullptr, count, call);
	std::vector<uint8_t> values;
	return DumpMap(m, keys, values, count, call);
}

size_t BatchCursorSize(const MapShape &m)
{
	switch (m.type) {
	case BPF_MAP_TYPE_HASH:
	case BPF_MAP_TYPE_PERCPU_HASH:
	case BPF_MAP_TYPE_LRU_HASH:
	case BPF_MAP_TYPE_LRU_PERCPU_HASH:
	case BPF_MAP_TYPE_HASH_OF_MAPS:
		return sizeof(uint32_t);
	default:
		return m.keySize;
	}
}

int LookupBatchStep(const MapShape &m, const uint8_t *in, uint8_t *out,
		    uint8_t *keys, uint8_t *values, uint32_t *count,
		    bool *done, const char **call)
{
	bpf_map_batch_opts opts = BatchOpts();

	*done = false;
	/* ENOENT is the end of the walk: *count holds what this last step
	 * read (0 for a cursor past the last bucket: the kernel zeroes the
	 * count before it checks the cursor). */
	int err = bpf_map_lookup_batch(m.fd, const_cast<uint8_t *>(in), out,
				       keys, values, count, &opts);
	if (err == -ENOENT) {
		*done = true;
		return 0;
	}
	if (err) {
		*count = 0;
		*call = "bpf_map_lookup_batch";
		return -err;
	}
	return 0;
}

int CountEntries(const MapShape &m, size_t budget, size_t *count,
		 bool *estimated, const char **call)
{
	if (!IsHash(m.type)) {
		*call = "count";
		return EINVAL;
	}
	/* Chunks of 8,192 entries: the buffers stay under a megabyte. */
	uint32_t chunk = std::min(std::max(m.maxEntries, 1u), 2 * kChunk);
	if (budget)
		chunk = static_cast<uint32_t>(std::min<size_t>(chunk, budget));
	std::vector<uint8_t> in(BatchCursorSize(m)), out(in.size());
	std::vector<uint8_t> keys(size_t(chunk) * m.keySize);
	std::vector<uint8_t> values(size_t(chunk) * m.valueBytes);
	bool first = true;
	bool done = false;
	uint32_t bucket = 0;

	*count = 0;
	*estimated = false;
	while (!done) {
		if (budget && *count >= budget) {
			/* The kernel's htab has round_up_pow_of_two(max_entries)
			 * buckets, and its hash spreads keys evenly over them: the
			 * first `bucket` of them hold about that share. */
			uint64_t buckets = 1;
			while (buckets < m.maxEntries)
				buckets <<= 1;
			*count = static_cast<size_t>(double(*count) * double(buckets) / double(bucket) + 0.5);
			*estimated = true;
			return 0;
		}
		uint32_t n = chunk;
		int err = LookupBatchStep(m, first ? nullptr : in.data(), out.data(),
					  keys.data(), values.data(), &n, &done, call);
		if (err == ENOSPC) {
			/* One bucket holds more than a chunk: grow and retry it. */
			chunk *= 2;
			keys.resize(size_t(chunk) * m.keySize);
			values.resize(size_t(chunk) * m.valueBytes);
			continue;
		}
		if (err)
			return err;
		*count += n;
		/* A hash map's cursor is the index of the next bucket. */
		std::memcpy(&bucket, out.data(), sizeof(bucket));
		in.swap(out);
		first = false;
	}
	return 0;
}

int UpdateBatch(const MapShape &m, const uint8_t *keys, const uint8_t *values,
		size_t count, uint64_t flags, const char **call)
{
	size_t done = 0;

	while (done < count) {
		bpf_map_batch_opts opts = BatchOpts(flags);
		uint32_t n = static_cast<uint32_t>(std::min<size_t>(count - done, UINT32_MAX));
		int err = bpf_map_update_batch(m.fd, keys + done * m.keySize,
					       values + done * m.valueBytes, &n,
					       &opts);
		if (!err) {
			done += n;
			continue;
		}
		if (n == 0 && BatchUnsupported(-err))
			break;
		*call = "bpf_map_update_batch";
		return -err;
	}
	for (; done < count; done++) {
		int err = bpf_map_update_elem(m.fd, keys + done * m.keySize,
					      values + done * m.valueBytes, flags);
		if (err) {
			*call = "bpf_map_update_elem";
			return -err;
		}
	}
	return 0;
}

int DeleteBatch(const MapShape &m, const uint8_t *keys, size_t count,
		size_t *deleted, const char **call)
{
	size_t i = 0;

	*deleted = 0;
	while (i < count) {
		bpf_map_batch_opts opts = BatchOpts();
		uint32_t n = static_cast<uint32_t>(std::min<size_t>(count - i, UINT32_MAX));
		int err = bpf_map_delete_batch(m.fd, keys + i * m.keySize, &n, &opts);
		if (!err) {
			*deleted += n;
			i += n;
			continue;
		}
		/* The kernel stops at the first missing key; n counts the
		 * ones deleted before it. */
		if (err == -ENOENT) {
			*deleted += n;
			i += n + 1;
			continue;
		}
		if (n == 0 && BatchUnsupported(-err))
			break;
		*call = "bpf_map_delete_batch";
		return -err;
	}
	for (; i < count; i++) {
		int err = bpf_map_delete_elem(m.fd, keys + i * m.keySize);
		if (err == -ENOENT)
			continue;
		if (err) {
			*call = "bpf_map_delete_elem";
			return -err;
		}
		(*deleted)++;
	}
	return 0;
}

void SumPerCpu(const MapShape &m, const uint8_t *percpu, uint8_t *out)
{
	size_t stride = (m.valueSize + 7) & ~size_t(7);
	size_t ncpus = m.valueBytes / stride;
	size_t words = m.valueSize / 8;

	for (size_t w = 0; w < words; w++) {
		uint64_t sum = 0;
		for (size_t c = 0; c < ncpus; c++) {
			uint64_t v;
			std::memcpy(&v, percpu + c * stride + w * 8, 8);
			sum += v;
		}
		std::memcpy(out + w * 8, &sum, 8);
	}
}

int SumAllPerCpu(const MapShape &m, std::vector<uint8_t> &out,
		 const char **call)
{
	uint32_t chunk = std::min(std::max(m.maxEntries, 1u), kChunk);
	std::vector<uint8_t> keys(size_t(chunk) * m.keySize);
	std::vector<uint8_t> values(size_t(chunk) * m.valueBytes);
	uint32_t in = 0, next = 0;
	bool first = true;

	out.assign(size_t(m.maxEntries) * m.valueSize, 0);
	/* In chunks: the whole per-CPU array at once can be large
	 * (entries x value x CPUs). */
	for (;;) {
		bpf_map_batch_opts opts = BatchOpts();
		uint32_t n = chunk;
		int err = bpf_map_lookup_batch(m.fd, first ? nullptr : &in, &next,
					       keys.data(), values.data(), &n, &opts);
		if (err && err != -ENOENT) {
			if (first && BatchUnsupported(-err))
				break;
			*call = "bpf_map_lookup_batch";
			return -err;
		}
		for (uint32_t i = 0; i < n; i++) {
			uint32_t key;
			std::memcpy(&key, keys.data() + i * m.keySize, 4);
			if (key < m.maxEntries)
				SumPerCpu(m, values.data() + i * m.valueBytes,
					  out.data() + size_t(key) * m.valueSize);
		}
		if (err == -ENOENT)
			return 0;
		in = next;
		first = false;
	}
	for (uint32_t key = 0; key < m.maxEntries; key++) {
		int err = bpf_map_lookup_elem(m.fd, &key, values.data());
		if (err) {
			*call = "bpf_map_lookup_elem";
			return -err;
		}
		SumPerCpu(m, values.data(), out.data() + size_t(key) * m.valueSize);
	}
	return 0;
}

} // namespace sluice
