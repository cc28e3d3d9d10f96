# ctest helper: runs SAMPLE on a host without a usable GPU and requires the
# documented refusal: exit code 3, a "cannot run" message and a SKIP result
# line. On machines with /dev/kfd it prints a skip notice that ctest's
# SKIP_REGULAR_EXPRESSION turns into a skipped test.
if(EXISTS /dev/kfd)
  message("skipping: /dev/kfd exists, this host may have a GPU")
  return()
endif()
execute_process(COMMAND ${SAMPLE} RESULT_VARIABLE exit_code
                OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 50)
message("exit code: ${exit_code}\nstdout: ${out}\nstderr: ${err}")
if(NOT exit_code STREQUAL "3")
  message(FATAL_ERROR "expected exit code 3 (cannot run), got '${exit_code}'")
endif()
if(NOT err MATCHES "cannot run: no AMD GPU is visible")
  message(FATAL_ERROR "expected a 'cannot run: no AMD GPU is visible' message on stderr")
endif()
if(NOT out MATCHES "RESULT sample=[a-z_]+ status=SKIP reason=cannot_run")
  message(FATAL_ERROR "expected a SKIP result line on stdout")
endif()
