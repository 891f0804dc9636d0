// sd.cpp's own model version detection, exposed as a test oracle.
#pragma once

#include <pybind11/pybind11.h>

#include <string>

namespace py = pybind11;

namespace sdrest {

// sd.cpp's name for the version its loader detects in `path` (None if none).
// `prefix` is what sd.cpp puts before tensor names: "" for model_path,
// "model.diffusion_model." for diffusion_model_path.
py::object detect_model_version(const std::string& path, const std::string& prefix);
// Every entry of sd.cpp's model_version_to_str table, in enum order.
py::list model_version_names();

}  // namespace sdrest
