#include "context.h"

#include <pybind11/numpy.h>

#include "images.h"
#include "params.h"

namespace sdrest {

namespace {

py::object g_native_error;
py::object g_cancelled;

// Locks `m` with the GIL released, so a waiting thread does not stall Python.
std::unique_lock<std::mutex> lock_without_gil(std::mutex& m) {
    std::unique_lock<std::mutex> lock(m, std::defer_lock);
    if (!lock.try_lock()) {
        py::gil_scoped_release release;
        lock.lock();
    }
    return lock;
}

preview_t preview_mode(py::dict options) {
    if (!options.contains("mode")) {
        return PREVIEW_PROJ;
    }
    long mode = options["mode"].cast<long>();
    if (mode < 0 || mode >= PREVIEW_COUNT) {
        throw py::value_error("preview mode: invalid value " + std::to_string(mode));
    }
    return static_cast<preview_t>(mode);
}

template <class T>
T option(py::dict options, const char* key, T fallback) {
    return options.contains(key) ? options[key].cast<T>() : fallback;
}

}  // namespace

void raise_native_error(const std::string& message) {
    PyErr_SetString(g_native_error.ptr(), message.c_str());
    throw py::error_already_set();
}

void raise_cancelled(const std::string& message) {
    PyErr_SetString(g_cancelled.ptr(), message.c_str());
    throw py::error_already_set();
}

void register_exceptions(py::module_& m) {
    g_native_error = py::reinterpret_steal<py::object>(
        PyErr_NewExceptionWithDoc("sdrest._native.NativeError",
                                  "stable-diffusion.cpp reported a failure; the message carries the error lines it logged.",
                                  PyExc_RuntimeError, nullptr));
    g_cancelled = py::reinterpret_steal<py::object>(
        PyErr_NewExceptionWithDoc("sdrest._native.Cancelled", "A native call stopped because it was cancelled.",
                                  PyExc_Exception, nullptr));
    m.attr("NativeError") = g_native_error;
    m.attr("Cancelled")   = g_cancelled;
}

// ---- Context ------------------------------------------------------------------

// Publishes the call in flight, so cancel() from another thread can reach it.
struct Context::InflightGuard {
    Context& owner;
    InflightGuard(Context& c, CallState* state) : owner(c) {
        std::lock_guard<std::mutex> guard(owner.inflight_mutex_);
        owner.inflight_ = state;
    }
    ~InflightGuard() {
        std::lock_guard<std::mutex> guard(owner.inflight_mutex_);
        owner.inflight_ = nullptr;
    }
};

Context::Context(py::dict params, py::object progress) {
    sd_ctx_params_t p;
    sd_ctx_params_init(&p);
    Keepalive keep;
    ctx_params_from_dict(params, p, keep);
    CallState state("loading", std::move(progress), py::none());
    {
        ActiveCall active(&state);
        py::gil_scoped_release release;
        ctx_ = new_sd_ctx(&p);
    }
    state.reraise_pending();
    if (ctx_ == nullptr) {
        raise_native_error(state.error_text("could not create the stable-diffusion context"));
    }
}

Context::~Context() {
    if (ctx_ != nullptr) {
        sd_ctx_t* ctx = ctx_;
        ctx_          = nullptr;
        free_sd_ctx(ctx);
    }
}

// Holds busy_ for one call and records the owning thread, so that a call
// re-entered from its own callbacks is refused instead of deadlocking.
class Context::Busy {
public:
    explicit Busy(Context& c) : owner_(c.busy_owner_) {
        if (owner_.load() == std::this_thread::get_id()) {
            throw py::value_error("the context is busy with a call on this thread (re-entered from its own callback)");
        }
        lock_ = lock_without_gil(c.busy_);
        owner_.store(std::this_thread::get_id());
    }
    ~Busy() { owner_.store(std::thread::id()); }

private:
    std::atomic<std::thread::id>& owner_;
    std::unique_lock<std::mutex> lock_;
};

sd_ctx_t* Context::require_open() const {
    if (ctx_ == nullptr) {
        throw py::value_error("the context is closed");
    }
    return ctx_;
}

template <class Fn>
py::list Context::run_generation(const char* what, py::object progress, py::object preview, py::dict preview_options, Fn&& fn) {
    Busy busy(*this);
    sd_ctx_t* ctx     = require_open();
    bool want_preview = !preview.is_none();
    preview_t mode = preview_mode(preview_options);
    int interval   = option<int>(preview_options, "interval", 1);
    bool denoised  = option<bool>(preview_options, "denoised", true);
    bool noisy     = option<bool>(preview_options, "noisy", false);
    CallState state("sampling", std::move(progress), std::move(preview));
    state.ctx = ctx;
    ImageResult result;
    {
        InflightGuard inflight(*this, &state);
        PreviewScope scope(want_preview, mode, interval, denoised, noisy);
        ActiveCall active(&state);
        py::gil_scoped_release release;
        result = fn(ctx);
    }
    state.reraise_pending();
    if (state.cancelled.load()) {
        raise_cancelled(std::string(what) + " was cancelled");
    }
    if (result.images == nullptr) {
        raise_native_error(state.error_text(std::string(what) + " failed"));
    }
    return result.to_list();
}

py::list Context::generate_image(py::dict params, py::object progress, py::object preview, py::dict preview_options) {
    sd_img_gen_params_t p;
    sd_img_gen_params_init(&p);
    Keepalive keep;
    img_gen_params_from_dict(params, p, keep);
    return run_generation("image generation", std::move(progress), std::move(preview), preview_options, [&](sd_ctx_t* ctx) {
        ImageResult r;
        r.images = ::generate_image(ctx, &p);
        r.count  = p.batch_count;
        return r;
    });
}

py::list Context::generate_video(py::dict params, py::object progress, py::object preview, py::dict preview_options) {
    sd_vid_gen_params_t p;
    sd_vid_gen_params_init(&p);
    Keepalive keep;
    vid_gen_params_from_dict(params, p, keep);
    return run_generation("video generation", std::move(progress), std::move(preview), preview_options, [&](sd_ctx_t* ctx) {
        ImageResult r;
        int frames = 0;
        r.images   = ::generate_video(ctx, &p, &frames);
        r.count    = frames;
        return r;
    });
}

void Context::cancel(int mode) {
    if (mode < SD_CANCEL_ALL || mode > SD_CANCEL_RESET) {
        throw py::value_error("cancel mode: invalid value " + std::to_string(mode));
    }
    std::lock_guard<std::mutex> guard(inflight_mutex_);
    if (inflight_ == nullptr) {
        return;
    }
    if (mode == SD_CANCEL_ALL) {
        inflight_->request_cancel();
    } else {
        sd_cancel_generation(inflight_->ctx, static_cast<sd_cancel_mode_t>(mode));
    }
}

void Context::close() {
    cancel(SD_CANCEL_ALL);
    Busy busy(*this);
    if (ctx_ != nullptr) {
        sd_ctx_t* ctx = ctx_;
        ctx_          = nullptr;
        py::gil_scoped_release release;
        free_sd_ctx(ctx);
    }
}

int Context::default_sample_method() {
    Busy busy(*this);
    return sd_get_default_sample_method(require_open());
}

int Context::default_scheduler(int sample_method) {
    if (sample_method < 0 || sample_method > SAMPLE_METHOD_COUNT) {
        throw py::value_error("sample_method: invalid value " + std::to_string(sample_method));
    }
    Busy busy(*this);
    return sd_get_default_scheduler(require_open(), static_cast<sample_method_t>(sample_method));
}

bool Context::supports_image_generation() {
    Busy busy(*this);
    return sd_ctx_supports_image_generation(require_open());
}

bool Context::supports_video_generation() {
    Busy busy(*this);
    return sd_ctx_supports_video_generation(require_open());
}

// ---- Upscaler -----------------------------------------------------------------

Upscaler::Upscaler(const std::string& path, bool offload_params_to_cpu, bool direct, int n_threads, int tile_size) {
    CallState state("loading", py::none(), py::none());
    {
        ActiveCall active(&state);
        py::gil_scoped_release release;
        ctx_ = new_upscaler_ctx(path.c_str(), offload_params_to_cpu, direct, n_threads, tile_size);
    }
    if (ctx_ == nullptr) {
        raise_native_error(state.error_text("could not load the upscaler '" + path + "'"));
    }
}

Upscaler::~Upscaler() {
    if (ctx_ != nullptr) {
        free_upscaler_ctx(ctx_);
        ctx_ = nullptr;
    }
}

py::array Upscaler::upscale(py::handle image, uint32_t factor, py::object progress) {
    auto busy = lock_without_gil(busy_);
    if (ctx_ == nullptr) {
        throw py::value_error("the upscaler is closed");
    }
    Keepalive keep;
    sd_image_t input = keep.image(image, "image");
    if (input.channel != 3) {
        throw py::value_error("image: the upscaler takes RGB (H x W x 3), got " + std::to_string(input.channel) + " channels");
    }
    CallState state("upscaling", std::move(progress), py::none());
    sd_image_t out{0, 0, 0, nullptr};
    {
        ActiveCall active(&state);
        py::gil_scoped_release release;
        out = ::upscale(ctx_, input, factor);
    }
    ImageResult owned;
    if (out.data != nullptr) {
        owned.images  = static_cast<sd_image_t*>(std::malloc(sizeof(sd_image_t)));
        owned.images[0] = out;
        owned.count   = 1;
    }
    state.reraise_pending();
    if (out.data == nullptr) {
        raise_native_error(state.error_text("upscaling failed"));
    }
    return image_to_array(out);
}

int Upscaler::factor() {
    if (ctx_ == nullptr) {
        throw py::value_error("the upscaler is closed");
    }
    return get_upscale_factor(ctx_);
}

void Upscaler::close() {
    auto busy = lock_without_gil(busy_);
    if (ctx_ != nullptr) {
        upscaler_ctx_t* ctx = ctx_;
        ctx_                = nullptr;
        py::gil_scoped_release release;
        free_upscaler_ctx(ctx);
    }
}

}  // namespace sdrest
