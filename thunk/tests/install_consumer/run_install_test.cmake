# ctest driver: install the build tree into a scratch prefix, then build
# and run the consumer against it. Arguments: -DBUILD_DIR -DSOURCE_DIR -DWORK_DIR
file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "failed (${result}): ${ARGN}\n${out}")
  endif()
endfunction()
run("${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${prefix}")
set(ENV{PKG_CONFIG_PATH} "${prefix}/lib/pkgconfig")
run("${CMAKE_COMMAND}" -S "${SOURCE_DIR}" -B "${WORK_DIR}/build"
    "-DCMAKE_PREFIX_PATH=${prefix}" "-DCMAKE_C_FLAGS=-Wall -Wextra -Werror -std=c11 -pedantic"
    "-DCMAKE_CXX_FLAGS=-Wall -Wextra -Werror"
    "-DCMAKE_BUILD_RPATH=${prefix}/lib")
run("${CMAKE_COMMAND}" --build "${WORK_DIR}/build")
foreach(program consumer_c consumer_cpp consumer_pkgconfig)
  set(ENV{LD_LIBRARY_PATH} "${prefix}/lib")
  run("${WORK_DIR}/build/${program}")
endforeach()
message(STATUS "installed package consumed by CMake and pkg-config")
