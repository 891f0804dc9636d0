#include "params.h"

#include <pybind11/stl.h>

#include <functional>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

namespace sdrest {

namespace {

// ---- scalar conversion -----------------------------------------------------

std::string type_name(py::handle v) { return py::str(py::type::of(v).attr("__name__")).cast<std::string>(); }

[[noreturn]] void bad_type(const std::string& field, const char* want, py::handle v) {
    throw py::type_error(field + ": expected " + want + ", got " + type_name(v));
}

template <class T>
T as_number(py::handle v, const std::string& field) {
    if constexpr (std::is_same_v<T, bool>) {
        if (!py::isinstance<py::bool_>(v)) {
            bad_type(field, "bool", v);
        }
        return v.cast<bool>();
    } else if constexpr (std::is_floating_point_v<T>) {
        if (py::isinstance<py::bool_>(v) || !(py::isinstance<py::float_>(v) || py::isinstance<py::int_>(v) ||
                                              py::hasattr(v, "__float__"))) {
            bad_type(field, "a number", v);
        }
        return static_cast<T>(py::float_(py::reinterpret_borrow<py::object>(v)).cast<double>());
    } else {
        if (py::isinstance<py::bool_>(v) || !py::hasattr(v, "__index__")) {
            bad_type(field, "an integer", v);
        }
        py::int_ i = py::reinterpret_steal<py::int_>(PyNumber_Index(v.ptr()));
        if (!i) {
            throw py::error_already_set();
        }
        long long x = i.cast<long long>();
        bool in_range;
        if constexpr (std::is_unsigned_v<T>) {
            in_range = x >= 0 && static_cast<unsigned long long>(x) <= std::numeric_limits<T>::max();
        } else {
            in_range = x >= static_cast<long long>(std::numeric_limits<T>::min()) &&
                       x <= static_cast<long long>(std::numeric_limits<T>::max());
        }
        if (!in_range) {
            throw py::value_error(field + ": out of range: " + std::to_string(x));
        }
        return static_cast<T>(x);
    }
}

// Enums accept our native enum members or plain ints in range [0, count].
template <class E>
E as_enum(py::handle v, const std::string& field, int count) {
    long long x;
    if (py::hasattr(v, "value") && !py::isinstance<py::int_>(v)) {
        x = as_number<long long>(v.attr("value"), field);
    } else {
        x = as_number<long long>(v, field);
    }
    if (x < 0 || x > count) {
        throw py::value_error(field + ": invalid value " + std::to_string(x));
    }
    return static_cast<E>(x);
}

// ---- field tables ------------------------------------------------------------

template <class S>
struct Field {
    const char* name;
    std::function<void(S&, py::handle, Keepalive&, const std::string&)> set;
    std::function<py::object(const S&)> get;
};

template <class S>
void fill(const std::vector<Field<S>>& fields, py::handle d, S& s, Keepalive& keep, const std::string& where) {
    if (!py::isinstance<py::dict>(d)) {
        bad_type(where.empty() ? std::string("parameters") : where, "a dict", d);
    }
    for (auto item : py::reinterpret_borrow<py::dict>(d)) {
        std::string key = py::str(item.first).cast<std::string>();
        const Field<S>* found = nullptr;
        for (const auto& f : fields) {
            if (key == f.name) {
                found = &f;
                break;
            }
        }
        std::string path = where.empty() ? key : where + "." + key;
        if (found == nullptr) {
            throw py::type_error("unknown parameter '" + path + "'");
        }
        found->set(s, item.second, keep, path);
    }
}

template <class S>
py::dict dump(const std::vector<Field<S>>& fields, const S& s) {
    py::dict d;
    for (const auto& f : fields) {
        d[f.name] = f.get(s);
    }
    return d;
}

#define NUM(S, name) \
    Field<S>{#name, [](S& s, py::handle v, Keepalive&, const std::string& f) { s.name = as_number<decltype(s.name)>(v, f); }, \
             [](const S& s) -> py::object { return py::cast(s.name); }}
#define ENUM(S, name, count) \
    Field<S>{#name, [](S& s, py::handle v, Keepalive&, const std::string& f) { s.name = as_enum<decltype(s.name)>(v, f, count); }, \
             [](const S& s) -> py::object { return py::cast((int)s.name); }}
#define STR(S, name) \
    Field<S>{#name, [](S& s, py::handle v, Keepalive& k, const std::string& f) { s.name = k.str(v, f.c_str()); }, \
             [](const S& s) -> py::object { return s.name ? py::object(py::str(s.name)) : py::object(py::none()); }}
#define IMAGE(S, name) \
    Field<S>{#name, [](S& s, py::handle v, Keepalive& k, const std::string& f) { s.name = k.image(v, f.c_str()); }, \
             [](const S&) -> py::object { return py::none(); }}
#define NESTED(S, name, table) \
    Field<S>{#name, [](S& s, py::handle v, Keepalive& k, const std::string& f) { fill(table(), v, s.name, k, f); }, \
             [](const S& s) -> py::object { return dump(table(), s.name); }}

const std::vector<Field<sd_tiling_params_t>>& tiling_fields() {
    using S = sd_tiling_params_t;
    static const std::vector<Field<S>> f = {NUM(S, enabled), NUM(S, tile_size_x), NUM(S, tile_size_y),
                                            NUM(S, target_overlap), NUM(S, rel_size_x), NUM(S, rel_size_y)};
    return f;
}

const std::vector<Field<sd_slg_params_t>>& slg_fields() {
    using S = sd_slg_params_t;
    static const std::vector<Field<S>> f = {
        Field<S>{"layers",
                 [](S& s, py::handle v, Keepalive& k, const std::string& path) {
                     auto& layers = k.vector<int>();
                     for (py::handle x : v) {
                         layers.push_back(as_number<int>(x, path));
                     }
                     s.layers      = layers.empty() ? nullptr : layers.data();
                     s.layer_count = layers.size();
                 },
                 [](const S& s) -> py::object {
                     return py::cast(std::vector<int>(s.layers, s.layers + (s.layers ? s.layer_count : 0)));
                 }},
        NUM(S, layer_start), NUM(S, layer_end), NUM(S, scale)};
    return f;
}

const std::vector<Field<sd_guidance_params_t>>& guidance_fields() {
    using S = sd_guidance_params_t;
    static const std::vector<Field<S>> f = {NUM(S, txt_cfg), NUM(S, img_cfg), NUM(S, distilled_guidance),
                                            NESTED(S, slg, slg_fields)};
    return f;
}

const std::vector<Field<sd_sample_params_t>>& sample_fields() {
    using S = sd_sample_params_t;
    static const std::vector<Field<S>> f = {
        NESTED(S, guidance, guidance_fields),
        ENUM(S, scheduler, SCHEDULER_COUNT),
        ENUM(S, sample_method, SAMPLE_METHOD_COUNT),
        NUM(S, sample_steps),
        NUM(S, eta),
        NUM(S, shifted_timestep),
        Field<S>{"custom_sigmas",
                 [](S& s, py::handle v, Keepalive& k, const std::string& path) {
                     auto& sigmas = k.vector<float>();
                     if (!v.is_none()) {
                         for (py::handle x : v) {
                             sigmas.push_back(as_number<float>(x, path));
                         }
                     }
                     s.custom_sigmas       = sigmas.empty() ? nullptr : sigmas.data();
                     s.custom_sigmas_count = static_cast<int>(sigmas.size());
                 },
                 [](const S& s) -> py::object {
                     return py::cast(std::vector<float>(s.custom_sigmas, s.custom_sigmas + (s.custom_sigmas ? s.custom_sigmas_count : 0)));
                 }},
        NUM(S, flow_shift)};
    return f;
}

const std::vector<Field<sd_pm_params_t>>& pm_fields() {
    using S = sd_pm_params_t;
    static const std::vector<Field<S>> f = {
        Field<S>{"id_images",
                 [](S& s, py::handle v, Keepalive& k, const std::string& path) {
                     s.id_images = k.images(v, path.c_str(), &s.id_images_count);
                 },
                 [](const S&) -> py::object { return py::list(); }},
        STR(S, id_embed_path), NUM(S, style_strength)};
    return f;
}

const std::vector<Field<sd_cache_params_t>>& cache_fields() {
    using S = sd_cache_params_t;
    static const std::vector<Field<S>> f = {
        ENUM(S, mode, SD_CACHE_SPECTRUM), NUM(S, reuse_threshold), NUM(S, start_percent), NUM(S, end_percent),
        NUM(S, error_decay_rate), NUM(S, use_relative_threshold), NUM(S, reset_error_on_compute),
        NUM(S, Fn_compute_blocks), NUM(S, Bn_compute_blocks), NUM(S, residual_diff_threshold),
        NUM(S, max_warmup_steps), NUM(S, max_cached_steps), NUM(S, max_continuous_cached_steps),
        NUM(S, taylorseer_n_derivatives), NUM(S, taylorseer_skip_interval), STR(S, scm_mask),
        NUM(S, scm_policy_dynamic), NUM(S, spectrum_w), NUM(S, spectrum_m), NUM(S, spectrum_lam),
        NUM(S, spectrum_window_size), NUM(S, spectrum_flex_window), NUM(S, spectrum_warmup_steps),
        NUM(S, spectrum_stop_percent)};
    return f;
}

const std::vector<Field<sd_hires_params_t>>& hires_fields() {
    using S = sd_hires_params_t;
    static const std::vector<Field<S>> f = {
        NUM(S, enabled), ENUM(S, upscaler, SD_HIRES_UPSCALER_COUNT), STR(S, model_path), NUM(S, scale),
        NUM(S, target_width), NUM(S, target_height), NUM(S, steps), NUM(S, denoising_strength),
        NUM(S, upscale_tile_size)};
    return f;
}

template <class S>
Field<S> loras_field() {
    return Field<S>{"loras",
                    [](S& s, py::handle v, Keepalive& k, const std::string& path) {
                        auto& loras = k.vector<sd_lora_t>();
                        if (!v.is_none()) {
                            for (py::handle item : v) {
                                if (!py::isinstance<py::dict>(item)) {
                                    bad_type(path, "a list of dicts {path, multiplier, is_high_noise}", item);
                                }
                                sd_lora_t lora{false, 1.0f, nullptr};
                                for (auto kv : py::reinterpret_borrow<py::dict>(item)) {
                                    std::string key = py::str(kv.first).cast<std::string>();
                                    if (key == "path") {
                                        lora.path = k.str(kv.second, (path + ".path").c_str());
                                    } else if (key == "multiplier") {
                                        lora.multiplier = as_number<float>(kv.second, path + ".multiplier");
                                    } else if (key == "is_high_noise") {
                                        lora.is_high_noise = as_number<bool>(kv.second, path + ".is_high_noise");
                                    } else {
                                        throw py::type_error("unknown parameter '" + path + "." + key + "'");
                                    }
                                }
                                if (lora.path == nullptr) {
                                    throw py::value_error(path + ": every LoRA needs a path");
                                }
                                loras.push_back(lora);
                            }
                        }
                        s.loras      = loras.empty() ? nullptr : loras.data();
                        s.lora_count = static_cast<uint32_t>(loras.size());
                    },
                    [](const S&) -> py::object { return py::list(); }};
}

const std::vector<Field<sd_ctx_params_t>>& ctx_fields() {
    using S = sd_ctx_params_t;
    static const std::vector<Field<S>> f = {
        STR(S, model_path), STR(S, clip_l_path), STR(S, clip_g_path), STR(S, clip_vision_path),
        STR(S, t5xxl_path), STR(S, llm_path), STR(S, llm_vision_path), STR(S, diffusion_model_path),
        STR(S, high_noise_diffusion_model_path), STR(S, vae_path), STR(S, taesd_path),
        STR(S, control_net_path),
        Field<S>{"embeddings",
                 [](S& s, py::handle v, Keepalive& k, const std::string& path) {
                     auto& list = k.vector<sd_embedding_t>();
                     if (!v.is_none()) {
                         for (py::handle item : v) {
                             if (!py::isinstance<py::dict>(item)) {
                                 bad_type(path, "a list of dicts {name, path}", item);
                             }
                             auto d = py::reinterpret_borrow<py::dict>(item);
                             for (auto kv : d) {
                                 std::string key = py::str(kv.first).cast<std::string>();
                                 if (key != "name" && key != "path") {
                                     throw py::type_error("unknown parameter '" + path + "." + key + "'");
                                 }
                             }
                             if (!d.contains("name") || !d.contains("path")) {
                                 throw py::value_error(path + ": every embedding needs a name and a path");
                             }
                             list.push_back({k.str(d["name"], (path + ".name").c_str()), k.str(d["path"], (path + ".path").c_str())});
                         }
                     }
                     s.embeddings      = list.empty() ? nullptr : list.data();
                     s.embedding_count = static_cast<uint32_t>(list.size());
                 },
                 [](const S&) -> py::object { return py::list(); }},
        STR(S, photo_maker_path), STR(S, tensor_type_rules), NUM(S, vae_decode_only),
        NUM(S, free_params_immediately), NUM(S, n_threads), ENUM(S, wtype, SD_TYPE_COUNT),
        ENUM(S, rng_type, RNG_TYPE_COUNT), ENUM(S, sampler_rng_type, RNG_TYPE_COUNT),
        ENUM(S, prediction, PREDICTION_COUNT), ENUM(S, lora_apply_mode, LORA_APPLY_MODE_COUNT),
        NUM(S, offload_params_to_cpu), NUM(S, enable_mmap), NUM(S, keep_clip_on_cpu),
        NUM(S, keep_control_net_on_cpu), NUM(S, keep_vae_on_cpu), NUM(S, flash_attn),
        NUM(S, diffusion_flash_attn), NUM(S, tae_preview_only), NUM(S, diffusion_conv_direct),
        NUM(S, vae_conv_direct), NUM(S, circular_x), NUM(S, circular_y), NUM(S, force_sdxl_vae_conv_scale),
        NUM(S, chroma_use_dit_mask), NUM(S, chroma_use_t5_mask), NUM(S, chroma_t5_mask_pad),
        NUM(S, qwen_image_zero_cond_t), NUM(S, max_vram)};
    return f;
}

const std::vector<Field<sd_img_gen_params_t>>& img_fields() {
    using S = sd_img_gen_params_t;
    static const std::vector<Field<S>> f = {
        loras_field<S>(), STR(S, prompt), STR(S, negative_prompt), NUM(S, clip_skip), IMAGE(S, init_image),
        Field<S>{"ref_images",
                 [](S& s, py::handle v, Keepalive& k, const std::string& path) {
                     s.ref_images = k.images(v, path.c_str(), &s.ref_images_count);
                 },
                 [](const S&) -> py::object { return py::list(); }},
        NUM(S, auto_resize_ref_image), NUM(S, increase_ref_index), IMAGE(S, mask_image), NUM(S, width),
        NUM(S, height), NESTED(S, sample_params, sample_fields), NUM(S, strength), NUM(S, seed),
        NUM(S, batch_count), IMAGE(S, control_image), NUM(S, control_strength), NESTED(S, pm_params, pm_fields),
        NESTED(S, vae_tiling_params, tiling_fields), NESTED(S, cache, cache_fields), NESTED(S, hires, hires_fields)};
    return f;
}

const std::vector<Field<sd_vid_gen_params_t>>& vid_fields() {
    using S = sd_vid_gen_params_t;
    static const std::vector<Field<S>> f = {
        loras_field<S>(), STR(S, prompt), STR(S, negative_prompt), NUM(S, clip_skip), IMAGE(S, init_image),
        IMAGE(S, end_image),
        Field<S>{"control_frames",
                 [](S& s, py::handle v, Keepalive& k, const std::string& path) {
                     s.control_frames = k.images(v, path.c_str(), &s.control_frames_size);
                 },
                 [](const S&) -> py::object { return py::list(); }},
        NUM(S, width), NUM(S, height), NESTED(S, sample_params, sample_fields),
        NESTED(S, high_noise_sample_params, sample_fields), NUM(S, moe_boundary), NUM(S, strength), NUM(S, seed),
        NUM(S, video_frames), NUM(S, vace_strength), NESTED(S, vae_tiling_params, tiling_fields),
        NESTED(S, cache, cache_fields)};
    return f;
}

}  // namespace

py::dict ctx_params_to_dict(const sd_ctx_params_t& p) { return dump(ctx_fields(), p); }
py::dict img_gen_params_to_dict(const sd_img_gen_params_t& p) { return dump(img_fields(), p); }
py::dict vid_gen_params_to_dict(const sd_vid_gen_params_t& p) { return dump(vid_fields(), p); }

void ctx_params_from_dict(py::handle d, sd_ctx_params_t& p, Keepalive& keep) { fill(ctx_fields(), d, p, keep, ""); }
void img_gen_params_from_dict(py::handle d, sd_img_gen_params_t& p, Keepalive& keep) { fill(img_fields(), d, p, keep, ""); }
void vid_gen_params_from_dict(py::handle d, sd_vid_gen_params_t& p, Keepalive& keep) { fill(vid_fields(), d, p, keep, ""); }

py::dict default_ctx_params() {
    sd_ctx_params_t p;
    sd_ctx_params_init(&p);
    return ctx_params_to_dict(p);
}

py::dict default_img_gen_params() {
    sd_img_gen_params_t p;
    sd_img_gen_params_init(&p);
    return img_gen_params_to_dict(p);
}

py::dict default_vid_gen_params() {
    sd_vid_gen_params_t p;
    sd_vid_gen_params_init(&p);
    return vid_gen_params_to_dict(p);
}

}  // namespace sdrest
