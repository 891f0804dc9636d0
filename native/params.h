// The C parameter structs <-> Python dicts. Field names are the C names; the
// defaults come from sd.cpp's own *_params_init functions.
#pragma once

#include <pybind11/pybind11.h>

#include "images.h"
#include "stable-diffusion.h"

namespace py = pybind11;

namespace sdrest {

py::dict ctx_params_to_dict(const sd_ctx_params_t& p);
py::dict img_gen_params_to_dict(const sd_img_gen_params_t& p);
py::dict vid_gen_params_to_dict(const sd_vid_gen_params_t& p);

// Fill `p` (already initialised with defaults) from `d`. Unknown keys raise
// TypeError naming them; strings and images are owned by `keep`.
void ctx_params_from_dict(py::handle d, sd_ctx_params_t& p, Keepalive& keep);
void img_gen_params_from_dict(py::handle d, sd_img_gen_params_t& p, Keepalive& keep);
void vid_gen_params_from_dict(py::handle d, sd_vid_gen_params_t& p, Keepalive& keep);

// Defaults, straight from the C init functions.
py::dict default_ctx_params();
py::dict default_img_gen_params();
py::dict default_vid_gen_params();

}  // namespace sdrest
