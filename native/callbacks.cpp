#include "callbacks.h"

#include <pybind11/numpy.h>

#include "images.h"

namespace sdrest {

namespace {

thread_local CallState* current_call = nullptr;
std::atomic<int> g_log_threshold{SD_LOG_INFO};
unsigned long g_main_thread = 0;
std::mutex g_preview_mutex;
int g_preview_users = 0;
constexpr size_t kMaxErrorLines = 8;

bool python_alive() {
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsInitialized() && !Py_IsFinalizing();
#else
    return Py_IsInitialized() && !_Py_IsFinalizing();
#endif
}

// Which phase a log line starts, for progress events that carry none.
const char* phase_for_log_line(const char* text) {
    const char* body = strstr(text, " - ");
    body             = body ? body + 3 : text;
    if (strncmp(body, "decoding ", 9) == 0) {
        return "decoding";
    }
    if (strncmp(body, "hires fix: upscaling", 20) == 0) {
        return "upscaling";
    }
    if (strncmp(body, "hires fix: ", 11) == 0 && strstr(body, " steps,") != nullptr) {
        return "sampling";
    }
    if (strncmp(body, "generating image: ", 18) == 0 || strncmp(body, "sampling using", 14) == 0) {
        return "sampling";
    }
    return nullptr;
}

void forward_log(sd_log_level_t level, const char* text) {
    static const int py_levels[] = {10, 20, 30, 40};  // DEBUG INFO WARNING ERROR
    int lv                       = (int)level;
    if (lv < 0 || lv > 3) {
        lv = 1;
    }
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r')) {
        n--;
    }
    py::gil_scoped_acquire gil;
    try {
        static py::object* logger = nullptr;
        if (logger == nullptr) {
            // Leaked on purpose: it lives until the process ends.
            logger = new py::object(py::module_::import("logging").attr("getLogger")("sdrest.native"));
        }
        logger->attr("log")(py_levels[lv], "%s", py::str(text, n));
    } catch (py::error_already_set& e) {
        e.discard_as_unraisable("sdrest.native log callback");
    }
}

void on_log(sd_log_level_t level, const char* text, void*) {
    if (text == nullptr) {
        return;
    }
    CallState* state = current_call;
    if (state != nullptr) {
        if (level == SD_LOG_ERROR) {
            std::string line(text);
            while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) {
                line.pop_back();
            }
            state->errors.push_back(std::move(line));
            if (state->errors.size() > kMaxErrorLines) {
                state->errors.pop_front();
            }
        }
        if (const char* phase = phase_for_log_line(text)) {
            state->phase = phase;
        }
    }
    if ((int)level >= g_log_threshold.load(std::memory_order_relaxed) && python_alive()) {
        forward_log(level, text);
    }
}

void on_progress(int step, int steps, float time, void*) {
    CallState* state = current_call;
    if (state == nullptr || !python_alive()) {
        return;
    }
    py::gil_scoped_acquire gil;
    if (state->pending_error) {
        state->request_cancel();
        return;
    }
    try {
        if (state->check_signals && PyErr_CheckSignals() != 0) {
            throw py::error_already_set();
        }
        if (state->progress) {
            state->progress(step, steps, time, state->phase);
        }
    } catch (py::error_already_set& e) {
        state->fail(e);
    }
    if (state->cancelled.load()) {
        // A request that landed before sd.cpp reset its flag for this call.
        state->request_cancel();
    }
}

void on_preview(int step, int frame_count, sd_image_t* frames, bool is_noisy, void*) {
    CallState* state = current_call;
    if (state == nullptr || !python_alive()) {
        return;
    }
    py::gil_scoped_acquire gil;
    if (!state->preview || state->pending_error) {
        return;
    }
    try {
        py::list images;
        for (int i = 0; i < frame_count; i++) {
            if (frames[i].data != nullptr) {
                images.append(image_to_array(frames[i]));
            }
        }
        state->preview(step, images, is_noisy);
    } catch (py::error_already_set& e) {
        state->fail(e);
    }
}

}  // namespace

CallState::CallState(const char* initial_phase, py::object progress_cb, py::object preview_cb)
    : progress(progress_cb.is_none() ? py::object() : std::move(progress_cb)),
      preview(preview_cb.is_none() ? py::object() : std::move(preview_cb)),
      phase(initial_phase) {
    check_signals = PyThread_get_thread_ident() == g_main_thread;
}

CallState::~CallState() = default;

void CallState::request_cancel() {
    cancelled.store(true);
    if (ctx != nullptr) {
        sd_cancel_generation(ctx, SD_CANCEL_ALL);
    }
}

void CallState::fail(py::error_already_set& e) {
    if (!pending_error) {
        pending_error = py::reinterpret_borrow<py::object>(e.value());
    }
    request_cancel();
}

std::string CallState::error_text(const std::string& what) const {
    std::string text = what;
    if (!errors.empty()) {
        text += "; sd.cpp said:";
        for (const auto& line : errors) {
            text += "\n  " + line;
        }
    } else {
        text += " (sd.cpp logged no error; see the sdrest.native logger for its output)";
    }
    return text;
}

void CallState::reraise_pending() {
    if (pending_error) {
        py::object err = std::move(pending_error);
        PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(err.ptr())), err.ptr());
        throw py::error_already_set();
    }
}

ActiveCall::ActiveCall(CallState* state) : previous_(current_call) { current_call = state; }
ActiveCall::~ActiveCall() { current_call = previous_; }

PreviewScope::PreviewScope(bool wanted, preview_t mode, int interval, bool denoised, bool noisy)
    : wanted_(wanted) {
    if (!wanted_) {
        return;
    }
    std::lock_guard<std::mutex> lock(g_preview_mutex);
    g_preview_users++;
    sd_set_preview_callback(on_preview, mode, interval, denoised, noisy, nullptr);
}

PreviewScope::~PreviewScope() {
    if (!wanted_) {
        return;
    }
    std::lock_guard<std::mutex> lock(g_preview_mutex);
    if (--g_preview_users == 0) {
        sd_set_preview_callback(on_preview, PREVIEW_NONE, 1, true, false, nullptr);
    }
}

void install_callbacks() {
    g_main_thread = py::module_::import("threading").attr("main_thread")().attr("ident").cast<unsigned long>();
    sd_set_log_callback(on_log, nullptr);
    sd_set_progress_callback(on_progress, nullptr);
    sd_set_preview_callback(on_preview, PREVIEW_NONE, 1, true, false, nullptr);
}

void set_log_threshold(int level) { g_log_threshold.store(level); }
int log_threshold() { return g_log_threshold.load(); }

}  // namespace sdrest
