// sdrest._native: a thin, honest binding of stable-diffusion.cpp's C API.
//
// It converts types, releases the GIL around native work, dispatches the
// process-wide callbacks to the calling thread, and turns a NULL into an
// exception. Policy (defaults, validation, files) lives in Python.
#include <pybind11/native_enum.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "callbacks.h"
#include "context.h"
#include "images.h"
#include "oracle.h"
#include "params.h"
#include "ggml-backend.h"
#include "stable-diffusion.h"

namespace py = pybind11;
using namespace sdrest;

namespace {

// Names of an enum, from the C library's own name function, index = value.
template <class E>
py::list enum_names(const char* (*name_of)(E), int count) {
    py::list out;
    for (int i = 0; i < count; i++) {
        const char* name = name_of(static_cast<E>(i));
        out.append(name ? py::object(py::str(name)) : py::object(py::none()));
    }
    return out;
}

// Value for a name via the C library's parser; -1 when it does not know it.
template <class E>
int enum_value(E (*from_str)(const char*), const std::string& name, int count) {
    int v = static_cast<int>(from_str(name.c_str()));
    return (v >= 0 && v < count) ? v : -1;
}

// sd_type names: ggml's names, None for removed slots.
py::list type_names() {
    py::list out;
    for (int i = 0; i < SD_TYPE_COUNT; i++) {
        const char* name = sd_type_name(static_cast<sd_type_t>(i));
        bool known       = name != nullptr && std::string(name) != "NONE" && std::string(name).rfind("DEPRECATED", 0) != 0;
        out.append(known ? py::object(py::str(name)) : py::object(py::none()));
    }
    return out;
}

// The ggml backends compiled in (CPU, CUDA, Vulkan, Metal ...), by the registry's own names.
py::list backend_names() {
    py::list out;
    for (size_t i = 0; i < ggml_backend_reg_count(); i++) {
        out.append(py::str(ggml_backend_reg_name(ggml_backend_reg_get(i))));
    }
    return out;
}

// The devices those backends see: name, description, backend, kind, memory in bytes.
py::list backend_devices() {
    py::list out;
    for (size_t i = 0; i < ggml_backend_dev_count(); i++) {
        ggml_backend_dev_t dev = ggml_backend_dev_get(i);
        size_t free = 0, total = 0;
        ggml_backend_dev_memory(dev, &free, &total);
        const char* kind = "accel";
        switch (ggml_backend_dev_type(dev)) {
            case GGML_BACKEND_DEVICE_TYPE_CPU: kind = "cpu"; break;
            case GGML_BACKEND_DEVICE_TYPE_GPU: kind = "gpu"; break;
            case GGML_BACKEND_DEVICE_TYPE_IGPU: kind = "igpu"; break;
            default: break;
        }
        py::dict d;
        d["name"]         = ggml_backend_dev_name(dev);
        d["description"]  = ggml_backend_dev_description(dev);
        d["backend"]      = ggml_backend_reg_name(ggml_backend_dev_backend_reg(dev));
        d["type"]         = kind;
        d["memory_free"]  = free;
        d["memory_total"] = total;
        out.append(d);
    }
    return out;
}

#ifndef SDREST_SDCPP_STAMP
#define SDREST_SDCPP_STAMP ""
#endif

py::array canny(py::handle image, float high_threshold, float low_threshold, float weak, float strong, bool inverse) {
    Keepalive keep;
    sd_image_t img = keep.image(image, "image");
    bool ok;
    {
        py::gil_scoped_release release;
        ok = preprocess_canny(img, high_threshold, low_threshold, weak, strong, inverse);
    }
    if (!ok) {
        raise_native_error("preprocess_canny failed");
    }
    return image_to_array(img);
}

void convert_model(const std::string& input, py::object vae, const std::string& output, int type, py::object rules,
                   bool convert_name, py::object progress) {
    if (type < 0 || type > SD_TYPE_COUNT) {
        throw py::value_error("output_type: invalid value " + std::to_string(type));
    }
    Keepalive keep;
    const char* vae_path = keep.str(vae, "vae");
    // sd.cpp's convert() builds a std::string from the rules: never hand it NULL.
    const char* rules_c = rules.is_none() ? "" : keep.str(rules, "tensor_type_rules");
    CallState state("converting", std::move(progress), py::none());
    bool ok;
    {
        ActiveCall active(&state);
        py::gil_scoped_release release;
        ok = ::convert(input.c_str(), vae_path, output.c_str(), static_cast<sd_type_t>(type), rules_c, convert_name);
    }
    state.reraise_pending();
    if (!ok) {
        raise_native_error(state.error_text("converting '" + input + "' to '" + output + "' failed"));
    }
}

std::string take_c_string(char* s) {
    std::string out = s ? s : "";
    std::free(s);
    return out;
}

}  // namespace

PYBIND11_MODULE(_native, m, py::mod_gil_not_used()) {
    m.doc() = "Thin binding of stable-diffusion.cpp (private; use the sdrest package).";
    register_exceptions(m);
    install_callbacks();

    py::native_enum<sd_cancel_mode_t>(m, "CancelMode", "enum.IntEnum", "How sd_cancel_generation stops a generation.")
        .value("ALL", SD_CANCEL_ALL)
        .value("NEW_LATENTS", SD_CANCEL_NEW_LATENTS)
        .value("RESET", SD_CANCEL_RESET)
        .finalize();
    py::native_enum<sd_cache_mode_t>(m, "CacheMode", "enum.IntEnum", "Step cache modes (sd_cache_mode_t).")
        .value("DISABLED", SD_CACHE_DISABLED)
        .value("EASYCACHE", SD_CACHE_EASYCACHE)
        .value("UCACHE", SD_CACHE_UCACHE)
        .value("DBCACHE", SD_CACHE_DBCACHE)
        .value("TAYLORSEER", SD_CACHE_TAYLORSEER)
        .value("CACHE_DIT", SD_CACHE_CACHE_DIT)
        .value("SPECTRUM", SD_CACHE_SPECTRUM)
        .finalize();
    py::native_enum<sd_log_level_t>(m, "LogLevel", "enum.IntEnum", "sd.cpp log levels.")
        .value("DEBUG", SD_LOG_DEBUG)
        .value("INFO", SD_LOG_INFO)
        .value("WARN", SD_LOG_WARN)
        .value("ERROR", SD_LOG_ERROR)
        .finalize();

    // Enum names, straight from the C name functions (index = C value).
    m.def("sample_method_names", [] { return enum_names(sd_sample_method_name, SAMPLE_METHOD_COUNT); },
          "sd.cpp's sampler names, indexed by sample_method_t.");
    m.def("scheduler_names", [] { return enum_names(sd_scheduler_name, SCHEDULER_COUNT); },
          "sd.cpp's scheduler names, indexed by scheduler_t.");
    m.def("rng_type_names", [] { return enum_names(sd_rng_type_name, RNG_TYPE_COUNT); },
          "sd.cpp's RNG names, indexed by rng_type_t.");
    m.def("prediction_names", [] { return enum_names(sd_prediction_name, PREDICTION_COUNT); },
          "sd.cpp's prediction type names, indexed by prediction_t.");
    m.def("preview_names", [] { return enum_names(sd_preview_name, PREVIEW_COUNT); },
          "sd.cpp's preview mode names, indexed by preview_t.");
    m.def("lora_apply_mode_names", [] { return enum_names(sd_lora_apply_mode_name, LORA_APPLY_MODE_COUNT); },
          "sd.cpp's LoRA apply mode names, indexed by lora_apply_mode_t.");
    m.def("hires_upscaler_names", [] { return enum_names(sd_hires_upscaler_name, SD_HIRES_UPSCALER_COUNT); },
          "sd.cpp's hires upscaler names, indexed by sd_hires_upscaler_t.");
    m.def("type_names", &type_names, "ggml type names, indexed by sd_type_t (None for removed types).");
    m.def("sample_method_from_name", [](const std::string& s) { return enum_value(str_to_sample_method, s, SAMPLE_METHOD_COUNT); }, py::arg("name"),
          "sd.cpp's parse of a sampler name; -1 if unknown.");
    m.def("scheduler_from_name", [](const std::string& s) { return enum_value(str_to_scheduler, s, SCHEDULER_COUNT); }, py::arg("name"),
          "sd.cpp's parse of a scheduler name; -1 if unknown.");
    m.def("type_from_name", [](const std::string& s) { return enum_value(str_to_sd_type, s, SD_TYPE_COUNT); }, py::arg("name"),
          "sd.cpp's parse of a weight type name; -1 if unknown.");
    m.attr("SAMPLE_METHOD_COUNT") = (int)SAMPLE_METHOD_COUNT;
    m.attr("SCHEDULER_COUNT")     = (int)SCHEDULER_COUNT;
    m.attr("SD_TYPE_COUNT")       = (int)SD_TYPE_COUNT;
    m.attr("RNG_TYPE_COUNT")      = (int)RNG_TYPE_COUNT;
    m.attr("PREDICTION_COUNT")    = (int)PREDICTION_COUNT;

    // Defaults from the C init functions.
    m.def("default_ctx_params", &default_ctx_params, "sd_ctx_params_init() as a dict.");
    m.def("default_img_gen_params", &default_img_gen_params, "sd_img_gen_params_init() as a dict.");
    m.def("default_vid_gen_params", &default_vid_gen_params, "sd_vid_gen_params_init() as a dict.");
    m.def("ctx_params_to_str", [](py::dict d) {
        sd_ctx_params_t p;
        sd_ctx_params_init(&p);
        Keepalive keep;
        ctx_params_from_dict(d, p, keep);
        return take_c_string(sd_ctx_params_to_str(&p));
    }, py::arg("params"), "sd.cpp's own text rendering of context parameters.");
    m.def("img_gen_params_to_str", [](py::dict d) {
        sd_img_gen_params_t p;
        sd_img_gen_params_init(&p);
        Keepalive keep;
        img_gen_params_from_dict(d, p, keep);
        return take_c_string(sd_img_gen_params_to_str(&p));
    }, py::arg("params"), "sd.cpp's own text rendering of image generation parameters.");

    // System.
    m.def("system_info", [] { return std::string(sd_get_system_info()); }, "sd.cpp's system/backend info line.");
    m.def("num_physical_cores", &sd_get_num_physical_cores, "sd.cpp's count of physical cores.");
    m.def("version", [] { return std::string(sd_version()); }, "sd.cpp's version string.");
    m.def("commit", [] { return std::string(sd_commit()); }, "sd.cpp's commit string.");
    m.def("set_log_threshold", &set_log_threshold, py::arg("level"),
          "Lowest sd.cpp log level (LogLevel) forwarded to the 'sdrest.native' logger.");
    m.def("log_threshold", &log_threshold, "The current forwarding threshold.");

    py::class_<Context>(m, "Context", "An sd_ctx_t: loaded models ready to generate.")
        .def(py::init<py::dict, py::object>(), py::arg("params"), py::arg("progress") = py::none(),
             "Create a context from sd_ctx_params_t fields (missing ones keep sd.cpp's defaults).")
        .def("generate_image", &Context::generate_image, py::arg("params"), py::arg("progress") = py::none(),
             py::arg("preview") = py::none(), py::arg("preview_options") = py::dict(),
             "Run generate_image; returns the images as (H, W, C) uint8 arrays.")
        .def("generate_video", &Context::generate_video, py::arg("params"), py::arg("progress") = py::none(),
             py::arg("preview") = py::none(), py::arg("preview_options") = py::dict(),
             "Run generate_video; returns the frames as (H, W, C) uint8 arrays.")
        .def("cancel", &Context::cancel, py::arg("mode") = (int)SD_CANCEL_ALL,
             "Stop the generation in flight (any thread, any moment; a no-op when idle).")
        .def("close", &Context::close, "Cancel what runs, wait for it, free the context. Idempotent.")
        .def_property_readonly("closed", &Context::closed)
        .def("default_sample_method", &Context::default_sample_method, "sd.cpp's default sampler for this model.")
        .def("default_scheduler", &Context::default_scheduler, py::arg("sample_method"),
             "sd.cpp's default scheduler for this model and sampler.")
        .def("supports_image_generation", &Context::supports_image_generation)
        .def("supports_video_generation", &Context::supports_video_generation);

    py::class_<Upscaler>(m, "Upscaler", "An upscaler_ctx_t (ESRGAN).")
        .def(py::init<const std::string&, bool, bool, int, int>(), py::arg("path"), py::arg("offload_params_to_cpu"),
             py::arg("direct"), py::arg("n_threads"), py::arg("tile_size"))
        .def("upscale", &Upscaler::upscale, py::arg("image"), py::arg("factor"), py::arg("progress") = py::none(),
             "Upscale an (H, W, 3) uint8 array.")
        .def_property_readonly("factor", &Upscaler::factor)
        .def("close", &Upscaler::close, "Free the upscaler. Idempotent.")
        .def_property_readonly("closed", &Upscaler::closed);

    m.def("convert", &convert_model, py::arg("input_path"), py::arg("vae_path"), py::arg("output_path"),
          py::arg("output_type"), py::arg("tensor_type_rules"), py::arg("convert_name"), py::arg("progress") = py::none(),
          "sd.cpp's convert(): write a GGUF of the model in the given weight type.");
    m.def("preprocess_canny", &canny, py::arg("image"), py::arg("high_threshold"), py::arg("low_threshold"),
          py::arg("weak"), py::arg("strong"), py::arg("inverse"),
          "sd.cpp's Canny edge preprocessor; returns a new array.");
    m.def("detect_model_version", &detect_model_version, py::arg("path"), py::arg("prefix") = "",
          "Test oracle: the model version sd.cpp's loader detects in a file (None if none).");
    m.def("backend_names", &backend_names, "The ggml backends compiled in (CPU, CUDA, Vulkan ...).");
    m.def("backend_devices", &backend_devices,
          "The devices ggml sees: dicts of name, description, backend, type, memory_free, memory_total.");
    m.def("sdcpp_stamp", [] { return std::string(SDREST_SDCPP_STAMP); },
          "The fetch stamp of the pinned source built in (pin, sdist sha256, patches digest); empty for another checkout.");
    m.def("model_version_names", &model_version_names, "sd.cpp's model_version_to_str table.");
}
