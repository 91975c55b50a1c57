// Feature cloud (sensor_msgs/PointCloud2 from siftrain_node) -> std::vector<cv::KeyPoint> +
// cv::Mat(N, 128, CV_8U). See docs/cpp_consumer.md for how it was (and was not) checked.
//
// Layout (siftrain_ros/ros/feature_cloud.py, docs/design-notes): one point per keypoint,
// x, y, size, angle, response FLOAT32; octave, class_id INT32; descriptor UINT8 x 128;
// point_step 156 when packed. Fields are located by name, so another field order or padding
// works; the iterators step by point_step (the row stride), never by a hard-coded 156.

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <sensor_msgs/msg/point_cloud2.hpp>
#include <sensor_msgs/point_cloud2_iterator.hpp>

namespace siftrain
{

constexpr int kDescriptorSize = 128;

inline uint32_t datatype_size(uint8_t datatype)
{
  using sensor_msgs::msg::PointField;
  switch (datatype) {
    case PointField::INT8: case PointField::UINT8: return 1;
    case PointField::INT16: case PointField::UINT16: return 2;
    case PointField::FLOAT64: return 8;
    default: return 4;  // INT32, UINT32, FLOAT32
  }
}

// Throws std::runtime_error when a field is missing or has the wrong datatype/count: a
// consumer should log it (throttled) and skip the message, as siftrain_vo does.
inline void check_field(const sensor_msgs::msg::PointCloud2 & cloud, const std::string & name,
                        uint8_t datatype, uint32_t count)
{
  for (const auto & field : cloud.fields) {
    if (field.name != name) {continue;}
    if (field.datatype != datatype || field.count != count) {
      throw std::runtime_error("feature cloud: field '" + name + "' has the wrong type/count");
    }
    if (field.offset + count * datatype_size(datatype) > cloud.point_step) {
      throw std::runtime_error("feature cloud: point_step too small for field '" + name + "'");
    }
    return;
  }
  throw std::runtime_error("feature cloud: field '" + name + "' is missing");
}

// keypoints: N cv::KeyPoint (pt, size, angle [deg, 0..360), response, packed octave,
// class_id). descriptors: N x 128 CV_8U, OpenCV SIFT scaling (convert with
// descriptors.convertTo(f, CV_32F) for cv::BFMatcher(cv::NORM_L2) / FLANN).
inline void features_from_cloud(const sensor_msgs::msg::PointCloud2 & cloud,
                                std::vector<cv::KeyPoint> & keypoints, cv::Mat & descriptors)
{
  using sensor_msgs::msg::PointField;
  for (const char * name : {"x", "y", "size", "angle", "response"}) {
    check_field(cloud, name, PointField::FLOAT32, 1);
  }
  check_field(cloud, "octave", PointField::INT32, 1);
  check_field(cloud, "descriptor", PointField::UINT8, kDescriptorSize);
  bool has_class_id = false;
  for (const auto & field : cloud.fields) {has_class_id |= field.name == "class_id";}
  if (cloud.is_bigendian) {
    throw std::runtime_error("feature cloud: big-endian data is not handled here");
  }
  const size_t n = static_cast<size_t>(cloud.width) * cloud.height;
  if (cloud.data.size() < static_cast<size_t>(cloud.row_step) * cloud.height ||
    cloud.row_step < cloud.width * cloud.point_step)
  {
    throw std::runtime_error("feature cloud: data shorter than row_step * height");
  }

  keypoints.clear();
  keypoints.reserve(n);
  descriptors.create(static_cast<int>(n), kDescriptorSize, CV_8U);
  if (n == 0) {return;}

  // Every iterator advances by point_step: the stride of one point in `data`.
  sensor_msgs::PointCloud2ConstIterator<float> x(cloud, "x"), y(cloud, "y");
  sensor_msgs::PointCloud2ConstIterator<float> size(cloud, "size"), angle(cloud, "angle");
  sensor_msgs::PointCloud2ConstIterator<float> response(cloud, "response");
  sensor_msgs::PointCloud2ConstIterator<int32_t> octave(cloud, "octave");
  sensor_msgs::PointCloud2ConstIterator<uint8_t> descriptor(cloud, "descriptor");
  for (size_t i = 0; i < n; ++i, ++x, ++y, ++size, ++angle, ++response, ++octave, ++descriptor) {
    keypoints.emplace_back(cv::Point2f(*x, *y), *size, *angle, *response, *octave, -1);
    // The iterator points at descriptor[0] of point i; the 128 bytes are contiguous.
    std::memcpy(descriptors.ptr<uint8_t>(static_cast<int>(i)), &descriptor[0], kDescriptorSize);
  }
  if (has_class_id) {
    sensor_msgs::PointCloud2ConstIterator<int32_t> class_id(cloud, "class_id");
    for (size_t i = 0; i < n; ++i, ++class_id) {keypoints[i].class_id = *class_id;}
  }
}

}  // namespace siftrain

#ifdef SIFTRAIN_FEATURE_CLOUD_SELFTEST
// Self-test: build a 3-point cloud the way siftrain_node does (PointCloud2Modifier with the
// same fields), parse it back and compare. Build: see docs/cpp_consumer.md.
#include <cstdio>

int main()
{
  using sensor_msgs::msg::PointField;
  sensor_msgs::msg::PointCloud2 cloud;
  sensor_msgs::PointCloud2Modifier modifier(cloud);
  modifier.setPointCloud2Fields(
    8, "x", 1, PointField::FLOAT32, "y", 1, PointField::FLOAT32, "size", 1, PointField::FLOAT32,
    "angle", 1, PointField::FLOAT32, "response", 1, PointField::FLOAT32,
    "octave", 1, PointField::INT32, "class_id", 1, PointField::INT32,
    "descriptor", siftrain::kDescriptorSize, PointField::UINT8);
  modifier.resize(3);
  if (cloud.point_step != 156) {std::printf("point_step %u\n", cloud.point_step); return 1;}
  for (uint32_t i = 0; i < 3; ++i) {
    uint8_t * p = &cloud.data[i * cloud.point_step];
    const float values[5] = {10.0f + i, 20.0f + i, 3.0f, 90.0f * i, 0.01f};
    std::memcpy(p, values, sizeof(values));
    const int32_t ints[2] = {static_cast<int32_t>(1 + (2 << 8)), static_cast<int32_t>(i)};
    std::memcpy(p + 20, ints, sizeof(ints));
    for (int d = 0; d < siftrain::kDescriptorSize; ++d) {p[28 + d] = static_cast<uint8_t>(d + i);}
  }
  std::vector<cv::KeyPoint> keypoints;
  cv::Mat descriptors;
  siftrain::features_from_cloud(cloud, keypoints, descriptors);
  bool ok = keypoints.size() == 3 && descriptors.rows == 3 && descriptors.cols == 128;
  for (int i = 0; ok && i < 3; ++i) {
    ok = keypoints[i].pt.x == 10.0f + i && keypoints[i].angle == 90.0f * i &&
      keypoints[i].octave == 1 + (2 << 8) && keypoints[i].class_id == i &&
      descriptors.ptr<uint8_t>(i)[127] == static_cast<uint8_t>(127 + i);
  }
  cloud.fields.pop_back();  // no descriptor field: must throw
  try {siftrain::features_from_cloud(cloud, keypoints, descriptors); ok = false;} catch (
    const std::runtime_error &) {}
  std::printf(ok ? "feature cloud self-test: OK\n" : "feature cloud self-test: FAILED\n");
  return ok ? 0 : 1;
}
#endif
