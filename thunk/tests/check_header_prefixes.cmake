cmake_minimum_required(VERSION 3.20)
# ctest driver: every name the public headers give a program outside a C++
# namespace (macros, typedefs, struct and enum tags, enumerators) starts
# with HSA_GMEM_ (tags with _HSA_GMEM_); the functions' hsaKmtGmem prefix
# is checked by check_exports.cmake.
# Arguments: -DHEADERS=<header>;<header>;...
set(checked 0)
foreach(header IN LISTS HEADERS)
  file(READ ${header} text)
  # Comments name other libraries' symbols; only code counts.
  string(REGEX REPLACE "/\\*([^*]|\\*+[^*/])*\\*+/" "" text "${text}")
  string(REGEX REPLACE "//[^\n]*" "" text "${text}")
  set(names "")
  string(REGEX MATCHALL "#[ \t]*define[ \t]+[A-Za-z_][A-Za-z0-9_]*" found "${text}")
  list(APPEND names ${found})
  string(REGEX MATCHALL "typedef[ \t]+(struct|enum)[ \t]+[A-Za-z_][A-Za-z0-9_]*" found "${text}")
  list(APPEND names ${found})
  string(REGEX MATCHALL "}[ \t]*[A-Za-z_][A-Za-z0-9_]*[ \t]*;" found "${text}")
  list(APPEND names ${found})
  string(REGEX MATCHALL "\n[ \t]+[A-Z_][A-Z0-9_]*[ \t]*=[ \t]*[0-9]" found "${text}")
  list(APPEND names ${found})
  foreach(entry IN LISTS names)
    string(REGEX REPLACE "^(#[ \t]*define|typedef[ \t]+(struct|enum)|})?[ \t\n]*([A-Za-z_][A-Za-z0-9_]*).*$"
           "\\3" name "${entry}")
    if(NOT name MATCHES "^_?HSA_GMEM_")
      message(FATAL_ERROR "${header}: ${name} lacks the HSA_GMEM_ prefix")
    endif()
    math(EXPR checked "${checked} + 1")
  endforeach()
endforeach()
if(checked LESS 40)
  message(FATAL_ERROR "found only ${checked} names in ${HEADERS}")
endif()
message(STATUS "${checked} names in the public headers, all HSA_GMEM_")
