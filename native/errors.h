// SPDX-License-Identifier: Apache-2.0
// errors.h: the one place where a failed call becomes a JS Error.
#ifndef SLUICE_NATIVE_ERRORS_H
#define SLUICE_NATIVE_ERRORS_H

#include <napi.h>

#include <string>

namespace sluice {

// Codes that are not errnos. Both carry errno EBADF.
constexpr const char *kCodeClosed = "ECLOSED";         // after close()
constexpr const char *kCodeNotLoaded = "ENOTLOADED";   // before load() resolved

// A failure in plain C++, so that it can be recorded on a worker thread and
// turned into a JS value later, on the JS thread.
struct Failure {
	int err = 0;              // positive errno, or libbpf's own 4000+ codes
	std::string syscall;      // the failing libbpf/libc call or addon operation
	std::string detail;       // what it was applied to
	const char *code = nullptr; // overrides the errno name (kCodeClosed...)
	bool hasVerifierLog = false;
	std::string verifierLog;
	std::string libbpfLog;    // libbpf's warnings during the call, if any

	bool failed() const { return err != 0; }
};

enum class ErrorKind { Error, TypeError, RangeError };

// "<syscall>: <strerror> (<detail>)" with code, errno, syscall and, for
// load failures, verifierLog.
Napi::Error MakeError(Napi::Env env, const Failure &f,
		      ErrorKind kind = ErrorKind::Error);

[[noreturn]] void Throw(Napi::Env env, int err, const std::string &syscall,
			const std::string &detail = {},
			ErrorKind kind = ErrorKind::Error);
[[noreturn]] void Throw(Napi::Env env, const Failure &f);

// Symbolic name of an errno ("ENOENT"), including ENOTSUPP and libbpf's codes.
std::string ErrnoName(int err);

// libbpf's print callback: silent unless SLUICE_LIBBPF_DEBUG is set
// (any value: warnings and info; "debug": everything).
void InstallLibbpfPrint();

// While alive, libbpf warnings printed on this thread are collected.
class LibbpfCapture {
public:
	LibbpfCapture();
	~LibbpfCapture();
	LibbpfCapture(const LibbpfCapture &) = delete;
	LibbpfCapture &operator=(const LibbpfCapture &) = delete;

	const std::string &text() const { return text_; }
	// The first warning line, without the "libbpf: " prefix.
	std::string FirstLine() const;

private:
	std::string text_;
	std::string *prev_;
};

} // namespace sluice

#endif
