// Test oracle for model detection: what sd.cpp's own loader concludes about a file.
#include "oracle.h"

#include "model.h"

extern const char* model_version_to_str[];

namespace sdrest {

py::object detect_model_version(const std::string& path, const std::string& prefix) {
    std::string name;
    bool ok = false;
    {
        py::gil_scoped_release release;
        ModelLoader loader;
        ok = loader.init_from_file(path, prefix);
        if (ok) {
            SDVersion version = loader.get_sd_version();
            if (version != VERSION_COUNT) {
                name = model_version_to_str[version];
            }
        }
    }
    if (!ok) {
        throw py::value_error("sd.cpp could not read '" + path + "'");
    }
    if (name.empty()) {
        return py::none();
    }
    return py::str(name);
}

py::list model_version_names() {
    py::list out;
    for (int i = 0; i < VERSION_COUNT; i++) {
        out.append(py::str(model_version_to_str[i]));
    }
    return out;
}

}  // namespace sdrest
