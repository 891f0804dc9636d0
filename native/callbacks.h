// Per-call state and the process-wide C callbacks that dispatch to it.
//
// stable-diffusion.cpp keeps one progress, one preview and one log callback for
// the whole process. We register our trampolines once and route each event to
// the CallState of the thread that raised it (thread-local), so two contexts
// generating in two threads never see each other's events.
#pragma once

#include <pybind11/pybind11.h>

#include <atomic>
#include <deque>
#include <mutex>
#include <string>

#include "stable-diffusion.h"

namespace py = pybind11;

namespace sdrest {

// Everything one native call needs while it runs. Created and destroyed with the
// GIL held (it owns Python objects); read by the trampolines on the same thread.
struct CallState {
    py::object progress;  // callable(step, steps, seconds_per_step, phase) or None
    py::object preview;   // callable(step, frames: list[ndarray], is_noisy) or None
    sd_ctx_t* ctx = nullptr;           // what a cancel stops (NULL: cannot be stopped)
    std::atomic<bool> cancelled{false};
    bool check_signals = false;        // the caller is the main thread: honour Ctrl-C
    std::string phase;                 // sampling, decoding, upscaling, loading, converting
    std::deque<std::string> errors;    // the last error lines sd.cpp logged during the call
    py::object pending_error;          // an exception raised in a callback, re-raised after

    CallState(const char* initial_phase, py::object progress_cb, py::object preview_cb);
    ~CallState();
    CallState(const CallState&)            = delete;
    CallState& operator=(const CallState&) = delete;

    // Ask the running generation to stop; callable from any thread, no GIL needed.
    void request_cancel();
    // Remember the Python exception currently set (or the given one) and cancel.
    void fail(py::error_already_set& e);
    // "sd.cpp said: <last error lines>" for exceptions.
    std::string error_text(const std::string& what) const;
    // Raise the stashed callback exception, if any (GIL held).
    void reraise_pending();
};

// Makes `state` the current call of this thread for the object's lifetime.
class ActiveCall {
public:
    explicit ActiveCall(CallState* state);
    ~ActiveCall();

private:
    CallState* previous_;
};

// Enables the preview trampoline with the given settings while alive.
class PreviewScope {
public:
    PreviewScope(bool wanted, preview_t mode, int interval, bool denoised, bool noisy);
    ~PreviewScope();

private:
    bool wanted_;
};

// Registers the trampolines with sd.cpp; called once at import.
void install_callbacks();
// Lowest level (SD_LOG_*) forwarded to Python logging.
void set_log_threshold(int level);
int log_threshold();

}  // namespace sdrest
