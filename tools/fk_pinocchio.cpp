// Pinocchio's forward kinematics in a C++ loop, for tools/bench_fk.py: forwardKinematics +
// updateFramePlacement per configuration, the pose of one frame copied out as a row-major 4x4.
//
//   fk_pinocchio MODEL.txt Q.bin ROWS OUT.bin ITERS
//
// MODEL.txt: the pinocchio::Model Python's Pinocchio built from the URDF, written by the bench
// (the `pin` wheel ships no urdfdom headers, so the URDF is not parsed here): "nq njoints", one
// line per joint "kind parent ax ay az R00..R22 p0 p1 p2" (kind: R, RU (revolute, unbounded),
// P; the axis a unit vector, the placement in the parent joint's frame), then the frame's line
// "parent R00..R22 p0 p1 p2".  Q.bin: ROWS configurations of nq doubles (Pinocchio's q layout).
// OUT.bin: ROWS x 16 doubles.  Prints "batched_ns single_ns": per configuration over the whole
// batch, and per call over ITERS calls cycling over the first 1024 rows (best of 3 each).
//
// Built by the bench (g++ -O3, the wheel's headers and libpinocchio_default; not -march=native:
// Eigen's alignment must match the library's build) when a C++ compiler and Eigen's headers
// (`pip install cmeel-eigen`) are present.
#include <pinocchio/algorithm/frames.hpp>
#include <pinocchio/algorithm/kinematics.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace pin = pinocchio;

static bool read_placement(FILE *f, pin::SE3 &M) {
  double v[12];
  for (double &x : v)
    if (std::fscanf(f, "%lf", &x) != 1) return false;
  Eigen::Matrix3d R;
  R << v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8];
  M = pin::SE3(R, Eigen::Vector3d(v[9], v[10], v[11]));
  return true;
}

static pin::JointModel joint_model(const char *kind, const Eigen::Vector3d &a) {
  const bool x = a.isApprox(Eigen::Vector3d::UnitX(), 0), y = a.isApprox(Eigen::Vector3d::UnitY(), 0),
             z = a.isApprox(Eigen::Vector3d::UnitZ(), 0);
  if (!std::strcmp(kind, "R")) {
    if (x) return pin::JointModelRX();
    if (y) return pin::JointModelRY();
    if (z) return pin::JointModelRZ();
    return pin::JointModelRevoluteUnaligned(a);
  }
  if (!std::strcmp(kind, "RU")) {
    if (x) return pin::JointModelRUBX();
    if (y) return pin::JointModelRUBY();
    if (z) return pin::JointModelRUBZ();
    return pin::JointModelRevoluteUnboundedUnaligned(a);
  }
  if (x) return pin::JointModelPX();
  if (y) return pin::JointModelPY();
  if (z) return pin::JointModelPZ();
  return pin::JointModelPrismaticUnaligned(a);
}

int main(int argc, char **argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s MODEL.txt Q.bin ROWS OUT.bin ITERS\n", argv[0]);
    return 2;
  }
  pin::Model model;
  FILE *f = std::fopen(argv[1], "r");
  int nq = 0, nj = 0;
  if (!f || std::fscanf(f, "%d %d", &nq, &nj) != 2) return 3;
  for (int j = 1; j <= nj; j++) {
    char kind[8];
    int parent;
    double a[3];
    pin::SE3 M;
    if (std::fscanf(f, "%7s %d %lf %lf %lf", kind, &parent, a, a + 1, a + 2) != 5 || !read_placement(f, M)) return 3;
    const auto id = model.addJoint(parent, joint_model(kind, Eigen::Vector3d(a[0], a[1], a[2])), M, "j" + std::to_string(j));
    model.addJointFrame(id);
  }
  int parent;
  pin::SE3 M;
  if (std::fscanf(f, "%d", &parent) != 1 || !read_placement(f, M)) return 3;
  std::fclose(f);
  const auto fid = model.addFrame(pin::Frame("ee", parent, M, pin::OP_FRAME));
  if (model.nq != nq) return 4;
  pin::Data data(model);
  const long rows = std::atol(argv[3]), iters = std::atol(argv[5]);
  std::vector<double> Q(rows * nq), out(rows * 16);
  f = std::fopen(argv[2], "rb");
  if (!f || std::fread(Q.data(), sizeof(double), Q.size(), f) != Q.size()) return 5;
  std::fclose(f);
  using clock = std::chrono::steady_clock;
  auto one = [&](long r) {
    Eigen::Map<const Eigen::VectorXd> q(Q.data() + r * nq, nq);
    pin::forwardKinematics(model, data, q);
    pin::updateFramePlacement(model, data, fid);
    const pin::SE3 &T = data.oMf[fid];
    for (int i = 0; i < 3; i++) {
      for (int j = 0; j < 3; j++) out[r * 16 + 4 * i + j] = T.rotation()(i, j);
      out[r * 16 + 4 * i + 3] = T.translation()(i);
    }
    out[r * 16 + 12] = out[r * 16 + 13] = out[r * 16 + 14] = 0.0;
    out[r * 16 + 15] = 1.0;
  };
  double best_batch = 1e30, best_single = 1e30;
  for (int rep = 0; rep < 3; rep++) {
    auto t0 = clock::now();
    for (long r = 0; r < rows; r++) one(r);
    best_batch = std::min(best_batch, std::chrono::duration<double, std::nano>(clock::now() - t0).count() / rows);
    const long m = std::min(rows, 1024L);
    t0 = clock::now();
    for (long i = 0; i < iters; i++) one(i % m);
    best_single = std::min(best_single, std::chrono::duration<double, std::nano>(clock::now() - t0).count() / iters);
  }
  f = std::fopen(argv[4], "wb");
  if (!f) return 6;
  std::fwrite(out.data(), sizeof(double), out.size(), f);
  std::fclose(f);
  std::printf("%.3f %.3f\n", best_batch, best_single);
  return 0;
}
