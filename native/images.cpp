#include "images.h"

#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace sdrest {

py::array image_to_array(const sd_image_t& image) {
    const py::ssize_t h = image.height, w = image.width, c = image.channel;
    py::array_t<uint8_t> out({h, w, c});
    if (h * w * c > 0) {
        std::memcpy(out.mutable_data(), image.data, static_cast<size_t>(h * w * c));
    }
    return out;
}

const char* Keepalive::str(py::handle value, const char* field) {
    if (value.is_none()) {
        return nullptr;
    }
    if (!py::isinstance<py::str>(value) && !py::isinstance<py::bytes>(value)) {
        throw py::type_error(std::string(field) + ": expected a string or None, got " +
                             py::str(py::type::of(value).attr("__name__")).cast<std::string>());
    }
    if (py::isinstance<py::str>(value)) {
        strings_.push_back(py::reinterpret_borrow<py::str>(value).cast<std::string>());
    } else {
        strings_.push_back(py::reinterpret_borrow<py::bytes>(value).cast<std::string>());
    }
    if (strings_.back().find('\0') != std::string::npos) {
        throw py::value_error(std::string(field) + ": embedded NUL character");
    }
    return strings_.back().c_str();
}

sd_image_t Keepalive::image(py::handle value, const char* field) {
    sd_image_t image{0, 0, 0, nullptr};
    if (value.is_none()) {
        return image;
    }
    auto source = py::array::ensure(value);
    if (!source || !py::isinstance<py::array_t<uint8_t>>(source)) {
        throw py::type_error(std::string(field) + ": expected a uint8 image array (H x W x C)");
    }
    ImageArray contiguous = ImageArray::ensure(source);  // C order; may share the caller's memory
    // Always an owned copy: sd.cpp takes non-const pointers and must not touch caller data.
    ImageArray arr(contiguous.request());
    if (arr.ndim() != 2 && arr.ndim() != 3) {
        throw py::value_error(std::string(field) + ": expected H x W or H x W x C, got " +
                              std::to_string(arr.ndim()) + " dimensions");
    }
    const py::ssize_t c = arr.ndim() == 3 ? arr.shape(2) : 1;
    if (c != 1 && c != 3 && c != 4) {
        throw py::value_error(std::string(field) + ": expected 1, 3 or 4 channels, got " + std::to_string(c));
    }
    if (arr.shape(0) <= 0 || arr.shape(1) <= 0) {
        throw py::value_error(std::string(field) + ": empty image");
    }
    arrays_.push_back(arr);
    image.height  = static_cast<uint32_t>(arr.shape(0));
    image.width   = static_cast<uint32_t>(arr.shape(1));
    image.channel = static_cast<uint32_t>(c);
    image.data    = arrays_.back().mutable_data();
    return image;
}

sd_image_t* Keepalive::images(py::handle value, const char* field, int* count) {
    *count = 0;
    if (value.is_none()) {
        return nullptr;
    }
    auto& list = image_lists_.emplace_back();
    for (py::handle item : value) {
        list.push_back(image(item, field));
    }
    *count = static_cast<int>(list.size());
    return list.empty() ? nullptr : list.data();
}

ImageResult::~ImageResult() {
    if (images == nullptr) {
        return;
    }
    for (int i = 0; i < count; i++) {
        std::free(images[i].data);
    }
    std::free(images);
}

py::list ImageResult::to_list() const {
    py::list out;
    for (int i = 0; images != nullptr && i < count; i++) {
        if (images[i].data != nullptr) {
            out.append(image_to_array(images[i]));
        }
    }
    return out;
}

}  // namespace sdrest
