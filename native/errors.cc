// SPDX-License-Identifier: Apache-2.0
#include "errors.h"

#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace sluice {

namespace {

// The kernel's internal ENOTSUPP leaks out of some bpf() commands; libc has
// no name for it.
constexpr int kENOTSUPP = 524;

thread_local std::string *tl_capture = nullptr;
int stderr_level = -1; // highest libbpf_print_level that goes to stderr

int PrintFn(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (tl_capture && level == LIBBPF_WARN) {
		va_list aq;
		va_copy(aq, ap);
		char buf[1024];
		int n = vsnprintf(buf, sizeof(buf), fmt, aq);
		va_end(aq);
		if (n > 0)
			tl_capture->append(buf);
	}
	if (static_cast<int>(level) <= stderr_level)
		return vfprintf(stderr, fmt, ap);
	return 0;
}

std::string StrError(int err)
{
	if (err == kENOTSUPP)
		return "Operation not supported";
	char buf[256];
	if (libbpf_strerror(err, buf, sizeof(buf)) == 0)
		return buf;
	return std::strerror(err);
}

} // namespace

std::string ErrnoName(int err)
{
	static const char *const libbpf_names[] = {
		"LIBBPF_ERRNO__LIBELF", "LIBBPF_ERRNO__FORMAT",
		"LIBBPF_ERRNO__KVERSION", "LIBBPF_ERRNO__ENDIAN",
		"LIBBPF_ERRNO__INTERNAL", "LIBBPF_ERRNO__RELOC",
		"LIBBPF_ERRNO__LOAD", "LIBBPF_ERRNO__VERIFY",
		"LIBBPF_ERRNO__PROG2BIG", "LIBBPF_ERRNO__KVER",
		"LIBBPF_ERRNO__PROGTYPE", "LIBBPF_ERRNO__WRNGPID",
		"LIBBPF_ERRNO__INVSEQ", "LIBBPF_ERRNO__NLPARSE",
	};
	constexpr int n = sizeof(libbpf_names) / sizeof(libbpf_names[0]);

	if (err == kENOTSUPP)
		return "ENOTSUPP";
	if (err >= __LIBBPF_ERRNO__START && err < __LIBBPF_ERRNO__START + n)
		return libbpf_names[err - __LIBBPF_ERRNO__START];
	if (const char *name = strerrorname_np(err))
		return name;
	return "E" + std::to_string(err);
}

Napi::Error MakeError(Napi::Env env, const Failure &f, ErrorKind kind)
{
	int err = f.err < 0 ? -f.err : f.err;
	std::string msg = f.syscall + ": " + StrError(err);
	if (!f.detail.empty())
		msg += " (" + f.detail + ")";

	Napi::Error e;
	switch (kind) {
	case ErrorKind::TypeError:
		e = Napi::TypeError::New(env, msg);
		break;
	case ErrorKind::RangeError:
		e = Napi::RangeError::New(env, msg);
		break;
	default:
		e = Napi::Error::New(env, msg);
	}
	e.Set("code", f.code ? std::string(f.code) : ErrnoName(err));
	e.Set("errno", Napi::Number::New(env, err));
	e.Set("syscall", f.syscall);
	if (f.hasVerifierLog)
		e.Set("verifierLog", f.verifierLog);
	if (!f.libbpfLog.empty())
		e.Set("libbpfLog", f.libbpfLog);
	return e;
}

void Throw(Napi::Env env, int err, const std::string &syscall,
	   const std::string &detail, ErrorKind kind)
{
	Failure f;
	f.err = err;
	f.syscall = syscall;
	f.detail = detail;
	throw MakeError(env, f, kind);
}

void Throw(Napi::Env env, const Failure &f)
{
	throw MakeError(env, f);
}

void InstallLibbpfPrint()
{
	const char *v = std::getenv("SLUICE_LIBBPF_DEBUG");
	if (v && *v)
		stderr_level = std::strcmp(v, "debug") == 0 ? LIBBPF_DEBUG
							    : LIBBPF_INFO;
	libbpf_set_print(PrintFn);
}

LibbpfCapture::LibbpfCapture() : prev_(tl_capture)
{
	tl_capture = &text_;
}

LibbpfCapture::~LibbpfCapture()
{
	tl_capture = prev_;
}

std::string LibbpfCapture::FirstLine() const
{
	std::string line = text_.substr(0, text_.find('\n'));
	const std::string prefix = "libbpf: ";
	if (line.compare(0, prefix.size(), prefix) == 0)
		line.erase(0, prefix.size());
	return line;
}

} // namespace sluice
