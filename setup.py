"""Builds the CPU fallback's C++ kernels (``cpu._w4``) as a torch extension at install time.

Everything else about the package is in pyproject.toml.  torch must already be installed
(``make install`` installs the pins first, then this package with ``--no-build-isolation``).
"""
from setuptools import setup
from torch.utils.cpp_extension import BuildExtension, CppExtension

setup(
    ext_modules=[CppExtension(
        "cpu._w4", ["cpu/csrc/bindings.cpp", "cpu/csrc/w4_kernels.cpp", "cpu/csrc/w4_vnni.cpp",
                     "cpu/csrc/w4_amx.cpp"],
        # the headers: setuptools rebuilds an object only when a file named here or its source changed
        depends=["cpu/csrc/w4_kernels.h", "cpu/csrc/w4_tiled.h"],
        # -O3 for the loops; no -march: the SIMD paths carry their own target attributes and are
        # chosen from the CPU's flags at run time, so the build runs on any x86-64 or Arm CPU.
        # -fopenmp: at::parallel_for is compiled into this extension, and without OpenMP it runs serially.
        # -ffp-contract=off: the scaled epilogue must round each float product and sum on its own, as
        # golden.linear.scaled_linear defines; GCC would fuse them into FMAs where the target has them (Arm).
        extra_compile_args=["-O3", "-std=c++17", "-fopenmp", "-ffp-contract=off"],
        extra_link_args=["-fopenmp"],
    )],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=False)},
)
