# Shared build logic of the HIP samples, included by hip-samples/CMakeLists.txt
# and by each sample's own CMakeLists.txt (so a sample also builds alone:
# cmake -S hip-samples/prefetch_advise -B build).
#
# Each sample is split in two: host logic (sizing, checksums, the CPU
# reference model, the checkpoint reader...) in ordinary C++ libraries built
# by the host compiler and unit-tested without a GPU, and a .hip file with the
# kernels and the GPU driver code.
include_guard(GLOBAL)

set(GMEM_SAMPLES_ROOT ${CMAKE_CURRENT_LIST_DIR}/..)
set(CMAKE_CXX_STANDARD 17)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
option(GMEM_HIP_SAMPLES_HOST_ONLY "Build only the host-side sample libraries and tests" OFF)
option(GMEM_WERROR "Treat compiler warnings as errors" OFF)
include(GNUInstallDirs)

# Release unless told otherwise, when the samples are the project built.
if(PROJECT_IS_TOP_LEVEL AND NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE Release CACHE STRING "Build type" FORCE)
endif()

# Host-side libraries: no HIP headers, no GPU.
add_library(gmem_samples_common STATIC ${GMEM_SAMPLES_ROOT}/common/host_common.cpp)
target_include_directories(gmem_samples_common PUBLIC ${GMEM_SAMPLES_ROOT}/common)
target_compile_options(gmem_samples_common PUBLIC -Wall -Wextra)
find_package(Threads REQUIRED)
target_link_libraries(gmem_samples_common PUBLIC Threads::Threads)

# MemoryHints on the project's thunk (hsakmt-gmem), in the tree or installed.
if(NOT TARGET hsakmt-gmem)
  find_package(hsakmt-gmem CONFIG REQUIRED)
  add_library(hsakmt-gmem ALIAS hsakmt-gmem::hsakmt-gmem)
endif()
add_library(gmem_samples_hints STATIC ${GMEM_SAMPLES_ROOT}/common/memory_hints.cpp)
target_link_libraries(gmem_samples_hints PUBLIC gmem_samples_common hsakmt-gmem)

set(GMEM_HIP_SAMPLE_TARGETS "" CACHE INTERNAL "HIP sample executables")

if(NOT GMEM_HIP_SAMPLES_HOST_ONLY)
  # CMake's HIP language (enable_language(HIP)) is not used: CMake looks for
  # <ROCm root>/lib/cmake/hip-lang, which Debian's multiarch layout puts in
  # lib/x86_64-linux-gnu/cmake, so configuring fails there (README.md, Build).
  # hipcc compiles the .hip files through custom commands instead, and the
  # C++ toolchain links the objects against libamdhip64.
  find_program(GMEM_HIPCC hipcc HINTS ENV ROCM_PATH PATH_SUFFIXES bin PATHS /opt/rocm/bin)
  find_library(GMEM_AMDHIP64 amdhip64 HINTS ENV ROCM_PATH PATH_SUFFIXES lib PATHS /opt/rocm/lib)
  if(NOT GMEM_HIPCC OR NOT GMEM_AMDHIP64)
    message(FATAL_ERROR
      "HIP samples need hipcc and libamdhip64 (Debian: apt install hipcc libamdhip64-dev; "
      "ROCm: set ROCM_PATH). Configure with -DGMEM_BUILD_HIP_SAMPLES=OFF to skip them.")
  endif()

  # Default architectures: those of MI200, MI300 and RDNA3 that this hipcc
  # can build (a one-kernel probe per target, with its device libraries).
  if(NOT DEFINED CACHE{GMEM_HIP_ARCHS})
    set(wanted gfx90a gfx942 gfx1100)
    set(supported "")
    set(skipped "")
    set(probe ${CMAKE_BINARY_DIR}/gmem-hip-arch-probe.hip)
    file(WRITE ${probe} "#include <hip/hip_runtime.h>\n__global__ void probe(int* p) { *p = 1; }\n")
    foreach(arch IN LISTS wanted)
      execute_process(COMMAND ${GMEM_HIPCC} --offload-arch=${arch} --cuda-device-only -c ${probe}
                              -o ${CMAKE_BINARY_DIR}/gmem-hip-arch-probe-${arch}.o
                      RESULT_VARIABLE probe_result OUTPUT_QUIET ERROR_VARIABLE probe_error)
      if(probe_result EQUAL 0)
        list(APPEND supported ${arch})
      else()
        string(REGEX MATCH "error: [^\n]*" reason "${probe_error}")
        string(REPLACE ";" "," reason "${reason}")
        list(APPEND skipped "${arch} (${reason})")
      endif()
    endforeach()
    if(supported STREQUAL "")
      message(FATAL_ERROR "hipcc (${GMEM_HIPCC}) builds none of ${wanted}: ${skipped}")
    endif()
    foreach(line IN LISTS skipped)
      message(STATUS "HIP samples: skipping ${line}")
    endforeach()
    set(GMEM_HIP_ARCHS "${supported}" CACHE STRING
        "GPU architectures for the HIP samples (default: gfx90a, gfx942, gfx1100 as supported)")
  endif()
  if(GMEM_HIP_ARCHS STREQUAL "")
    message(FATAL_ERROR "GMEM_HIP_ARCHS is empty: give at least one architecture, e.g. gfx90a")
  endif()
  message(STATUS "HIP samples: architectures ${GMEM_HIP_ARCHS}")

  set(GMEM_HIP_FLAGS -std=c++17 -O2 -g0 -Wall -Wextra)
  if(GMEM_WERROR)
    list(APPEND GMEM_HIP_FLAGS -Werror)
  endif()
  foreach(arch IN LISTS GMEM_HIP_ARCHS)
    list(APPEND GMEM_HIP_FLAGS --offload-arch=${arch})
  endforeach()
endif()

# gmem_add_hip_sample(<name> <source.hip> [host libraries...]): the sample's
# executable, in <build>/hip-samples/bin and installed to bin/.
function(gmem_add_hip_sample name source)
  if(GMEM_HIP_SAMPLES_HOST_ONLY)
    return()
  endif()
  get_filename_component(src ${source} ABSOLUTE)
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${name}.hip.o)
  get_filename_component(sample_dir ${src} DIRECTORY)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${GMEM_HIPCC} ${GMEM_HIP_FLAGS}
            -I${GMEM_SAMPLES_ROOT}/common -I${sample_dir}
            -MD -MF ${obj}.d -c ${src} -o ${obj}
    DEPENDS ${src}
    DEPFILE ${obj}.d
    COMMENT "hipcc ${name} for ${GMEM_HIP_ARCHS}"
    VERBATIM)
  add_executable(${name} ${obj})
  set_target_properties(${name} PROPERTIES LINKER_LANGUAGE CXX
                        RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/hip-samples/bin)
  target_link_libraries(${name} PRIVATE gmem_samples_common ${ARGN} ${GMEM_AMDHIP64})
  install(TARGETS ${name} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  set(GMEM_HIP_SAMPLE_TARGETS ${GMEM_HIP_SAMPLE_TARGETS} ${name} CACHE INTERNAL "HIP sample executables")
endfunction()
