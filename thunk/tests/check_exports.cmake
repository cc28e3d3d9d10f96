cmake_minimum_required(VERSION 3.20)
# ctest driver: every symbol libhsakmt-gmem defines for programs is a
# function the public header declares, at version node HSAKMT_GMEM_0, and
# every function the header declares is exported, under the one prefix
# hsaKmtGmem.
# Arguments: -DLIBRARY=<.so> -DHEADER=<hsakmt_hmadvise.h>
find_program(NM nm REQUIRED)
execute_process(COMMAND ${NM} -D --defined-only ${LIBRARY}
  OUTPUT_VARIABLE symbols RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "nm failed on ${LIBRARY}")
endif()
file(READ ${HEADER} header)
# "HSA_GMEM_API <type> <name>(": the return type, then the name.
string(REGEX MATCHALL "HSA_GMEM_API [A-Za-z_][A-Za-z0-9_ ]*[ *]+[A-Za-z_][A-Za-z0-9_]*\\("
       declarations "${header}")
set(declared "")
foreach(declaration IN LISTS declarations)
  string(REGEX REPLACE ".*[ *]([A-Za-z_][A-Za-z0-9_]*)\\($" "\\1" name "${declaration}")
  if(NOT name MATCHES "^hsaKmtGmem[A-Z]")
    message(FATAL_ERROR "declared without the hsaKmtGmem prefix: ${name}")
  endif()
  list(APPEND declared ${name})
endforeach()
list(LENGTH declared declared_count)
if(declared_count LESS 10)
  message(FATAL_ERROR "found only ${declared_count} declarations in ${HEADER}")
endif()

string(REPLACE "\n" ";" lines "${symbols}")
set(exported "")
foreach(line IN LISTS lines)
  if(line MATCHES "^[0-9a-f]+ ([A-Za-z]) ([^@ ]+)(@@?([A-Za-z0-9_]+))?$")
    set(kind ${CMAKE_MATCH_1})
    set(name ${CMAKE_MATCH_2})
    set(node ${CMAKE_MATCH_4})
    if(kind STREQUAL "A" AND name STREQUAL "HSAKMT_GMEM_0")
      continue()  # the version node itself
    endif()
    if(NOT name IN_LIST declared)
      message(FATAL_ERROR "exported but not in the public header: ${line}")
    endif()
    if(NOT node STREQUAL "HSAKMT_GMEM_0")
      message(FATAL_ERROR "exported without the HSAKMT_GMEM_0 version: ${line}")
    endif()
    list(APPEND exported ${name})
  endif()
endforeach()
foreach(name IN LISTS declared)
  if(NOT name IN_LIST exported)
    message(FATAL_ERROR "declared in the header but not exported: ${name}")
  endif()
endforeach()
message(STATUS "${declared_count} functions exported at HSAKMT_GMEM_0, nothing else")
