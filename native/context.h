// Owned native contexts: a diffusion context and an upscaler.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "callbacks.h"
#include "stable-diffusion.h"

namespace py = pybind11;

namespace sdrest {

// One sd_ctx_t. Calls on one context are serialized (a second thread waits);
// close() cancels a generation in flight, waits for it, then frees.
class Context {
public:
    Context(py::dict params, py::object progress);
    ~Context();

    py::list generate_image(py::dict params, py::object progress, py::object preview, py::dict preview_options);
    py::list generate_video(py::dict params, py::object progress, py::object preview, py::dict preview_options);
    void cancel(int mode);
    void close();
    bool closed() const { return ctx_ == nullptr; }
    int default_sample_method();
    int default_scheduler(int sample_method);
    bool supports_image_generation();
    bool supports_video_generation();

private:
    sd_ctx_t* ctx_ = nullptr;
    std::mutex busy_;              // held for the whole of a native call
    std::atomic<std::thread::id> busy_owner_{};  // the thread holding busy_
    std::mutex inflight_mutex_;    // guards inflight_
    CallState* inflight_ = nullptr;
    struct InflightGuard;

    sd_ctx_t* require_open() const;
    class Busy;
    template <class Fn>
    py::list run_generation(const char* what, py::object progress, py::object preview, py::dict preview_options, Fn&& fn);
};

// One upscaler_ctx_t (ESRGAN).
class Upscaler {
public:
    Upscaler(const std::string& path, bool offload_params_to_cpu, bool direct, int n_threads, int tile_size);
    ~Upscaler();

    py::array upscale(py::handle image, uint32_t factor, py::object progress);
    int factor();
    void close();
    bool closed() const { return ctx_ == nullptr; }

private:
    upscaler_ctx_t* ctx_ = nullptr;
    std::mutex busy_;
};

// Raised for a NULL from the C API; message includes the error lines sd.cpp logged.
[[noreturn]] void raise_native_error(const std::string& message);
// Raised when a generation stops on request.
[[noreturn]] void raise_cancelled(const std::string& message);

void register_exceptions(py::module_& m);

}  // namespace sdrest
