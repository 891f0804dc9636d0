// Images across the boundary: C-contiguous uint8 numpy arrays, H x W x C.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <deque>
#include <string>
#include <vector>

#include "stable-diffusion.h"

namespace py = pybind11;

namespace sdrest {

using ImageArray = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;

// A copy of an sd.cpp image as an (H, W, C) uint8 array.
py::array image_to_array(const sd_image_t& image);

// Owns every buffer and string a C parameter struct points into, for one call.
// Lives (and dies) with the GIL held; the C call runs while it is alive.
class Keepalive {
public:
    // NULL for None, else a pointer into an owned copy of the string.
    const char* str(py::handle value, const char* field);
    // An sd_image_t viewing an owned, contiguous copy of `value` (H x W x C or H x W).
    // An empty image for None.
    sd_image_t image(py::handle value, const char* field);
    // A stable array of images for a list (or None: nullptr, count 0).
    sd_image_t* images(py::handle value, const char* field, int* count);
    template <class T>
    std::vector<T>& vector() {
        if constexpr (std::is_same_v<T, int>) {
            return ints_.emplace_back();
        } else if constexpr (std::is_same_v<T, float>) {
            return floats_.emplace_back();
        } else if constexpr (std::is_same_v<T, sd_lora_t>) {
            return loras_.emplace_back();
        } else if constexpr (std::is_same_v<T, sd_embedding_t>) {
            return embeddings_.emplace_back();
        } else {
            return image_lists_.emplace_back();
        }
    }

private:
    std::deque<std::string> strings_;
    std::deque<ImageArray> arrays_;
    std::deque<std::vector<sd_image_t>> image_lists_;
    std::deque<std::vector<int>> ints_;
    std::deque<std::vector<float>> floats_;
    std::deque<std::vector<sd_lora_t>> loras_;
    std::deque<std::vector<sd_embedding_t>> embeddings_;
};

// Frees an sd.cpp result array (and each image's data) when it goes out of scope.
struct ImageResult {
    sd_image_t* images = nullptr;
    int count          = 0;
    ImageResult()                              = default;
    ImageResult(const ImageResult&)            = delete;
    ImageResult& operator=(const ImageResult&) = delete;
    ImageResult(ImageResult&& other) noexcept : images(other.images), count(other.count) {
        other.images = nullptr;
        other.count  = 0;
    }
    ImageResult& operator=(ImageResult&& other) noexcept {
        std::swap(images, other.images);
        std::swap(count, other.count);
        return *this;
    }
    ~ImageResult();
    // The images as arrays; empty slots (data == NULL) are skipped.
    py::list to_list() const;
};

}  // namespace sdrest
