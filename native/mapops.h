// SPDX-License-Identifier: Apache-2.0
// mapops.h: whole-map operations on a map fd, in plain C++ (no JS), so that
// workers can use them off the JS thread. Each returns 0 or a positive errno
// and names the failing libbpf call in *call.
#ifndef SLUICE_NATIVE_MAPOPS_H
#define SLUICE_NATIVE_MAPOPS_H

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace sluice {

// Zero a libbpf options struct in place, padding included (libbpf refuses
// non-zero bytes after the last field it knows), and set .sz. In place, not
// returned by value: a struct of 16 bytes or less is returned in registers,
// and its padding bytes come back undefined.
template <typename T> void ZeroOpts(T *o)
{
	std::memset(o, 0, sizeof(*o));
	o->sz = sizeof(*o);
}

struct MapShape {
	int fd = -1;
	uint32_t type = 0;
	uint32_t keySize = 0;
	uint32_t valueSize = 0;
	uint32_t maxEntries = 0;
	bool perCpu = false;
	// Bytes of one value as user space sees it: per-CPU maps hold
	// round_up(valueSize, 8) for every possible CPU.
	size_t valueBytes = 0;
};

/* Whether maps of this type are hash tables (counted, not sized). */
bool IsHash(uint32_t type);
bool IsPerCpu(uint32_t type);
bool IsMapOfMaps(uint32_t type);
// The errors a batch command gives where the map type lacks it.
bool BatchUnsupported(int err);

// Every entry: keys and values concatenated. Maps of maps list only the
// occupied slots, with the inner map's id as the value.
int DumpMap(const MapShape &m, std::vector<uint8_t> &keys,
	    std::vector<uint8_t> &values, size_t &count, const char **call);

// Keys only, for deleting everything.
int MapKeys(const MapShape &m, std::vector<uint8_t> &keys, size_t &count,
	    const char **call);

// Bytes of the kernel's batch cursor (in_batch/out_batch): a bucket index
// (__u32) for hash maps, a key for the others.
size_t BatchCursorSize(const MapShape &m);

// One step of a batch walk, for paging through a map: up to *count entries
// from cursor `in` (null: the start) into keys and values, the cursor of the
// rest into `out` (BatchCursorSize bytes), and *done once the walk has read
// the last entry. A hash map is read in whole buckets, so *count may come
// back smaller than asked; ENOSPC (nothing read) means the first bucket
// alone holds more than *count entries. Not for maps of maps (the kernel's
// batch stops at their first empty slot).
int LookupBatchStep(const MapShape &m, const uint8_t *in, uint8_t *out,
		    uint8_t *keys, uint8_t *values, uint32_t *count,
		    bool *done, const char **call);

// How many entries a hash map holds now, by a batch walk that copies each
// bucket into reused buffers and keeps nothing: the kernel keeps no count
// that user space can read. The walk stops after `budget` entries (0: no
// limit); the count is then estimated from the buckets read, out of the
// table's round_up_pow_of_two(max_entries), and *estimated is set. An entry
// added or deleted during the walk may or may not be counted. EINVAL for a
// map that is not a hash.
int CountEntries(const MapShape &m, size_t budget, size_t *count,
		 bool *estimated, const char **call);

int UpdateBatch(const MapShape &m, const uint8_t *keys, const uint8_t *values,
		size_t count, uint64_t flags, const char **call);

// Missing keys are skipped; *deleted counts the rest.
int DeleteBatch(const MapShape &m, const uint8_t *keys, size_t count,
		size_t *deleted, const char **call);

// PERCPU_ARRAY of all-__u64 values: maxEntries x valueSize bytes, each slot
// summed over the CPUs.
int SumAllPerCpu(const MapShape &m, std::vector<uint8_t> &out,
		 const char **call);

// Element-wise sum of one per-CPU value (valueBytes) into valueSize bytes.
void SumPerCpu(const MapShape &m, const uint8_t *percpu, uint8_t *out);

} // namespace sluice

#endif
