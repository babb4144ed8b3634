// SPDX-License-Identifier: Apache-2.0
// Programs by id and maps by pin: identity, shape and accounted memory.
#include "inspect.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace sluice {

namespace {

/*
 * Reads "key:\t<decimal>" from /proc/self/fdinfo/<fd>. 0 with *found
 * telling whether the line is there, or a positive errno if the file
 * cannot be read. fdinfo is where the kernel reports what bpf_map_info
 * lacks (memlock) and which kind of object an fd is (map_type).
 */
int FdinfoField(int fd, const char *key, uint64_t *val, bool *found)
{
	std::string path = "/proc/self/fdinfo/" + std::to_string(fd);
	FILE *f = std::fopen(path.c_str(), "re");
	if (!f)
		return errno;
	size_t klen = std::strlen(key);
	char line[256];
	*found = false;
	while (std::fgets(line, sizeof(line), f)) {
		if (std::strncmp(line, key, klen) || line[klen] != ':')
			continue;
		*val = std::strtoull(line + klen + 1, nullptr, 10);
		*found = true;
		break;
	}
	std::fclose(f);
	return 0;
}

std::string Hex(const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	std::string s;
	for (size_t i = 0; i < n; i++) {
		s += digits[p[i] >> 4];
		s += digits[p[i] & 15];
	}
	return s;
}

} // namespace

ScopedFd::~ScopedFd()
{
	if (fd_ >= 0)
		close(fd_);
}

int GetProgInfo(int fd, struct bpf_prog_info *info, std::vector<uint32_t> *mapIds)
{
	uint32_t len = sizeof(*info);
	std::memset(info, 0, sizeof(*info));
	if (int err = bpf_obj_get_info_by_fd(fd, info, &len))
		return -err;
	if (!mapIds)
		return 0;
	mapIds->clear();
	uint32_t n = info->nr_map_ids;
	if (!n)
		return 0;
	/* The kernel fills at most nr_map_ids ids and then reports the
	 * program's count, which bpf_prog_bind_map() may have raised since
	 * the first call. */
	mapIds->assign(n, 0);
	std::memset(info, 0, sizeof(*info));
	info->nr_map_ids = n;
	info->map_ids = reinterpret_cast<uintptr_t>(mapIds->data());
	len = sizeof(*info);
	if (int err = bpf_obj_get_info_by_fd(fd, info, &len))
		return -err;
	mapIds->resize(std::min(n, info->nr_map_ids));
	return 0;
}

std::string ProgName(const struct bpf_prog_info &info)
{
	return std::string(info.name, strnlen(info.name, sizeof(info.name)));
}

Napi::Object MapInfoObject(Napi::Env env, const MapEntry &m, const std::string &what)
{
	uint64_t memlock = 0;
	bool found;
	/* Not every kernel prints memlock; then the map is reported at 0. */
	if (int err = FdinfoField(m.fd, "memlock", &memlock, &found))
		Throw(env, err, "open", "/proc/self/fdinfo of map " + what);
	Napi::Object o = Napi::Object::New(env);
	o.Set("type", m.type);
	o.Set("keySize", m.keySize);
	o.Set("valueSize", m.valueSize);
	o.Set("maxEntries", m.maxEntries);
	o.Set("perCpu", m.perCpu);
	o.Set("id", m.id);
	o.Set("memlock", Napi::Number::New(env, static_cast<double>(memlock)));
	return o;
}

Napi::Value ProgInfo(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	uint32_t id = GetU32(env, info[0], "progInfo", "id");
	std::string what = "program id " + std::to_string(id);
	int fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		Throw(env, -fd, "bpf_prog_get_fd_by_id", what);
	ScopedFd owned(fd);

	struct bpf_prog_info pi;
	std::vector<uint32_t> mapIds;
	if (int err = GetProgInfo(fd, &pi, &mapIds))
		Throw(env, err, "bpf_obj_get_info_by_fd", what);
	Napi::Array maps = Napi::Array::New(env, mapIds.size());
	for (size_t i = 0; i < mapIds.size(); i++)
		maps.Set(i, mapIds[i]);
	Napi::Object o = Napi::Object::New(env);
	o.Set("id", pi.id);
	o.Set("name", ProgName(pi));
	o.Set("type", pi.type);
	o.Set("tag", Hex(pi.tag, sizeof(pi.tag)));
	o.Set("mapIds", maps);
	return o;
}

Napi::Value PinnedMapInfo(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	std::string path = GetString(env, info[0], "pinnedMapInfo", "path");
	int fd = bpf_obj_get(path.c_str());
	if (fd < 0)
		Throw(env, -fd, "bpf_obj_get", path);
	ScopedFd owned(fd);

	/* A pin can hold a program or a link as well, and the kernel would
	 * fill bpf_map_info with that object's info. Only maps have a
	 * map_type in fdinfo. */
	uint64_t type;
	bool isMap;
	if (int err = FdinfoField(fd, "map_type", &type, &isMap))
		Throw(env, err, "open", "/proc/self/fdinfo of " + path);
	if (!isMap)
		Throw(env, EINVAL, "bpf_obj_get", path + " is not a map");

	struct bpf_map_info mi;
	uint32_t len = sizeof(mi);
	std::memset(&mi, 0, sizeof(mi));
	if (int err = bpf_obj_get_info_by_fd(fd, &mi, &len))
		Throw(env, -err, "bpf_obj_get_info_by_fd", path);
	MapEntry m;
	m.fd = fd;
	m.type = mi.type;
	m.keySize = mi.key_size;
	m.valueSize = mi.value_size;
	m.maxEntries = mi.max_entries;
	m.perCpu = IsPerCpu(mi.type);
	m.id = mi.id;
	return MapInfoObject(env, m, path);
}

} // namespace sluice
